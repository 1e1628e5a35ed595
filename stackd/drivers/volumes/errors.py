"""Errors of the volumes driver.

``VolumeError`` (permanent): a name that is not a safe volume name, a volume that does not exist,
a copy that failed. ``VolumeInUseError`` (transient): the volume is still mounted somewhere;
removing it works once the containers using it are gone. This module only defines classes.
"""

from __future__ import annotations

from stackd.errors import PermanentDriverError, TransientDriverError


class VolumeError(PermanentDriverError):
    """A volume cannot be made, filled or removed as asked."""


class VolumeNotFoundError(VolumeError):
    """No volume of that name exists."""


class VolumeInUseError(TransientDriverError):
    """The volume is mounted (by a container or anything else) and cannot be removed now."""
