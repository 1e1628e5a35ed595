"""The process spec of a command run in a running container: the container's own process
(capabilities, rlimits, environment, working directory) with the command's arguments, extra
environment, working directory, user and terminal; and user names resolved the way Docker
resolves them, over the text of the container's /etc/passwd and /etc/group.

Pure functions: the files are read, and the runtime is run, by ``exec.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from stackd.errors import PermanentDriverError

Env = Mapping[str, str] | Sequence[str]
"""Extra environment: a mapping, or ``NAME=value`` strings."""


class UserSpec(NamedTuple):
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


def _env_items(env: Env) -> Iterator[str]:
    if isinstance(env, str):
        raise PermanentDriverError(f"exec environment must be a mapping or a list, not the string {env!r}")
    if isinstance(env, Mapping):
        for name, value in env.items():
            yield f"{name}={value}"
    else:
        yield from env


def merge_env(base: Sequence[str], extra: Env) -> list[str]:
    """``base`` with ``extra`` on top: a name keeps its first position and takes its last value."""
    merged: dict[str, str] = {}
    for item in (*base, *_env_items(extra)):
        merged[item.split("=", 1)[0]] = item
    return list(merged.values())


def _table(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(spec: str, passwd: str = "", group: str = "") -> UserSpec:
    """``user``, ``uid``, ``user:group``, ``uid:gid`` (or mixed) as numbers, the way Docker
    resolves them: a user's primary group is its passwd entry's (0 for an unknown uid), and the
    groups that list the user by name are added. ``PermanentDriverError`` for an unknown name."""
    user, _, grp = spec.partition(":")
    if not user:
        raise PermanentDriverError(f"invalid user {spec!r}")
    users = [r for r in _table(passwd) if len(r) >= 4]
    groups = [r for r in _table(group) if len(r) >= 3]
    if user.isdigit():
        uid = int(user)
        entry = next((r for r in users if r[2] == user), None)
    else:
        entry = next((r for r in users if r[0] == user), None)
        if entry is None or not entry[2].isdigit():
            raise PermanentDriverError(f"no user {user!r} in the container's /etc/passwd")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    if grp:
        if grp.isdigit():
            gid = int(grp)
        else:
            found = next((r for r in groups if r[0] == grp and r[2].isdigit()), None)
            if found is None:
                raise PermanentDriverError(f"no group {grp!r} in the container's /etc/group")
            gid = int(found[2])
    name = entry[0] if entry is not None else None
    extra = sorted({int(r[2]) for r in groups if name and len(r) >= 4 and r[2].isdigit()
                    and name in r[3].split(",") and int(r[2]) != gid})
    return UserSpec(uid, gid, tuple(extra))


def exec_process(base: Mapping[str, Any], argv: Sequence[str], *, env: Env = (), user: UserSpec | None = None,
                 cwd: str | None = None, tty: bool = False) -> dict[str, Any]:
    """The OCI process spec of an exec: the container's process ``base`` with these arguments,
    extra environment, working directory, user and terminal."""
    if not argv:
        raise PermanentDriverError("exec needs a command")
    if cwd is not None and not cwd.startswith("/"):
        raise PermanentDriverError(f"exec working directory must be absolute: {cwd!r}")
    process = copy.deepcopy(dict(base))
    process["args"] = list(argv)
    process["terminal"] = tty
    process.pop("consoleSize", None)
    process["env"] = merge_env(process.get("env") or [], env)
    if cwd is not None:
        process["cwd"] = cwd
    if user is not None:
        process["user"] = {"uid": user.uid, "gid": user.gid}
        if user.additional_gids:
            process["user"]["additionalGids"] = list(user.additional_gids)
    return process
