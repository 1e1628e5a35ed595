"""Which volume names are safe: Docker's rule (``[a-zA-Z0-9][a-zA-Z0-9_.-]+``), at most 255 bytes.

A valid name is one path component that cannot be ``.``/``..``, hidden, or contain ``/``: the
driver keeps its own temporary entries under names starting with ``.``, which no volume can
have. Pure; no I/O.
"""

from __future__ import annotations

import re

from stackd.drivers.volumes.errors import VolumeError

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
MAX_NAME = 255


def check_name(name: str) -> str:
    """``name`` when it is a safe volume name, else ``VolumeError`` saying why."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise VolumeError(f"invalid volume name {name!r}: a name has at least two characters, starts "
                          "with a letter or digit, and holds only letters, digits, '_', '.' and '-'")
    if len(name.encode()) > MAX_NAME:
        raise VolumeError(f"invalid volume name {name[:40]!r}...: longer than {MAX_NAME} bytes")
    return name
