"""Errors of the network driver and the one place foreign failures are classified.

``IpamError`` says that addresses cannot be handed out as asked (pool exhausted, a requested
address taken or outside its subnet): retrying will not help until something changes. ``classify``
turns an errno (from netlink, a syscall or a command's message) into ``TransientDriverError`` or
``PermanentDriverError``; callers raise the result ``from`` the foreign exception. This module only
defines classes and that table; it must not import anything else of the network package.
"""

from __future__ import annotations

import errno

from stackd.errors import DriverError, PermanentDriverError, TransientDriverError


class IpamError(PermanentDriverError):
    """Addresses cannot be allocated as asked."""


TRANSIENT_ERRNOS = frozenset({
    errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ENOBUFS, errno.ENOMEM, errno.ETIMEDOUT,
    errno.EMFILE, errno.ENFILE,
})

TRANSIENT_TEXTS = ("resource temporarily unavailable", "device or resource busy", "interrupted system call",
                   "no buffer space", "cannot allocate memory", "timed out", "too many open files")


def classify(code: int | None, message: str) -> DriverError:
    """The stackd error for a failure with errno ``code`` (or only a ``message``)."""
    if code in TRANSIENT_ERRNOS or any(t in message.lower() for t in TRANSIENT_TEXTS):
        return TransientDriverError(message)
    return PermanentDriverError(message)
