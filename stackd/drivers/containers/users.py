"""The identity a container's process runs as, resolved the way Docker resolves it against the
image's /etc/passwd and /etc/group: ``name``, ``uid``, ``name:group``, ``uid:gid`` (or mixed),
the service's ``user`` over the image's ``User``, root by default; supplementary groups are the
groups that list the user plus ``group_add``; ``HOME`` is the user's home directory.

Pure: the caller reads the two files (from the container's root file system) and passes their
text; an unknown user or group is a ``PermanentDriverError`` naming the service.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackd.drivers.monitor.execspec import resolve_user
from stackd.drivers.runtime.request import User
from stackd.errors import PermanentDriverError


@dataclass(frozen=True)
class EtcFiles:
    """The text of the image's /etc/passwd and /etc/group ("" when missing)."""

    passwd: str = ""
    group: str = ""


def _rows(text: str, width: int) -> list[list[str]]:
    return [row for line in text.splitlines()
            if line.strip() and not line.startswith("#") and len(row := line.split(":")) >= width]


def resolve(service: str, spec: str, etc: EtcFiles, group_add: tuple[str, ...] = ()) -> User:
    """The ``User`` for ``spec`` (empty: root) with ``group_add`` (names or numbers) added."""
    try:
        found = resolve_user(spec or "0", etc.passwd, etc.group)
    except PermanentDriverError as exc:
        raise PermanentDriverError(f"service {service}: user {spec!r}: {exc}") from exc
    extra = list(found.additional_gids)
    groups = _rows(etc.group, 3)
    for wanted in group_add:
        if wanted.isdigit():
            gid = int(wanted)
        else:
            row = next((r for r in groups if r[0] == wanted and r[2].isdigit()), None)
            if row is None:
                raise PermanentDriverError(f"service {service}: group_add: no group {wanted!r} in the "
                                           "image's /etc/group")
            gid = int(row[2])
        if gid != found.gid and gid not in extra:
            extra.append(gid)
    return User(found.uid, found.gid, tuple(extra))


def home_of(uid: int, etc: EtcFiles) -> str:
    """The home directory of ``uid`` in /etc/passwd, ``/`` when it has none."""
    row = next((r for r in _rows(etc.passwd, 6) if r[2] == str(uid)), None)
    return row[5] if row is not None and row[5] else "/"
