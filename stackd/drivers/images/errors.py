"""Errors of the image store, all under ``PermanentDriverError`` (a bad archive or a missing image
does not get better by retrying).

Callers may catch ``ImageNotFoundError`` to tell "import or build it first" apart from a damaged
or malformed image. This module only defines classes; it must not import anything else of the
image package.
"""

from __future__ import annotations

from stackd.errors import PermanentDriverError


class ImageError(PermanentDriverError):
    """Bad image content: a digest that does not match, a malformed manifest, config or layer."""


class ImageNotFoundError(PermanentDriverError):
    """No image of that name (or id) is in the store."""


class ArchiveError(ImageError):
    """An image archive (OCI layout or ``docker save``) that cannot be imported."""
