"""User and group names of an image: USER for RUN steps, ``--chown`` for COPY and ADD.

Names are looked up in the image's own ``/etc/passwd`` and ``/etc/group`` (read through a
``SourceFS`` view), never the host's. The rules are Docker's: ``USER name[:group]`` takes the
user's primary group unless a group is given, a numeric user missing from passwd runs with group
0, and the groups that list the user as a member become its supplementary groups. ``--chown``
with only a user (name or number) uses that user's number as the group too. The parsing
functions are pure; ``UnknownUser`` says which name is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackd.drivers.builder.fsview import SourceFS, read_text
from stackd.drivers.runtime.request import User


class UnknownUser(Exception):
    """A user or group name the image does not know (or a malformed spec)."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> list[Account]:
    """The accounts of an ``/etc/passwd`` text (malformed lines are skipped, as libc does)."""
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] and fields[2].isdigit() and fields[3].isdigit():
            out.append(Account(fields[0], int(fields[2]), int(fields[3])))
    return out


def parse_group(text: str) -> list[Group]:
    """The groups of an ``/etc/group`` text."""
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isdigit():
            members = tuple(m for m in (fields[3].split(",") if len(fields) > 3 else []) if m)
            out.append(Group(fields[0], int(fields[2]), members))
    return out


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _find_group(name: str, groups: list[Group]) -> int:
    gid = _number(name)
    if gid is not None:
        return gid
    for g in groups:
        if g.name == name:
            return g.gid
    raise UnknownUser(f"unable to find group {name!r} in the image's /etc/group")


def resolve_user(spec: str, passwd: str, group: str) -> User:
    """The identity ``USER spec`` runs as, given the image's passwd and group texts."""
    name, _, group_name = spec.partition(":")
    if not name:
        raise UnknownUser(f"invalid user {spec!r}")
    accounts = parse_passwd(passwd)
    groups = parse_group(group)
    uid = _number(name)
    account = next((a for a in accounts if (a.uid == uid if uid is not None else a.name == name)), None)
    if account is None and uid is None:
        raise UnknownUser(f"unable to find user {name!r} in the image's /etc/passwd")
    uid = account.uid if account is not None else uid
    assert uid is not None
    gid = account.gid if account is not None else 0
    if group_name:
        gid = _find_group(group_name, groups)
    extra: tuple[int, ...] = ()
    if account is not None:
        extra = tuple(sorted({g.gid for g in groups if account.name in g.members} - {gid}))
    return User(uid, gid, extra)


def resolve_chown(spec: str, passwd: str, group: str) -> tuple[int, int]:
    """``(uid, gid)`` of ``--chown=spec``."""
    name, _, group_name = spec.partition(":")
    uid = _number(name)
    if uid is None:
        account = next((a for a in parse_passwd(passwd) if a.name == name), None)
        if account is None:
            raise UnknownUser(f"unable to find user {name!r} in the image's /etc/passwd")
        uid = account.uid
    gid = _find_group(group_name, parse_group(group)) if group_name else uid
    return uid, gid


def image_user(fs: SourceFS, spec: str) -> User:
    """``resolve_user`` against the passwd and group files of the view ``fs``."""
    if not spec:
        return User()
    return resolve_user(spec, read_text(fs, "etc/passwd") or "", read_text(fs, "etc/group") or "")


def image_owner(fs: SourceFS, spec: str) -> tuple[int, int]:
    """``resolve_chown`` against the passwd and group files of the view ``fs``; numbers need
    no lookup (and work in images without those files)."""
    name, _, group_name = spec.partition(":")
    if name.isdigit() and (not group_name or group_name.isdigit()):
        return int(name), int(group_name or name)
    return resolve_chown(spec, read_text(fs, "etc/passwd") or "", read_text(fs, "etc/group") or "")
