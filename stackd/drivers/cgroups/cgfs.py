"""The few file operations cgroup file systems need, with ``OSError`` translated into stackd's
driver errors at this boundary (``raise ... from exc``).

Side effects only on the paths it is given; it knows nothing of projects, groups or limits (the
driver decides what to touch). Control files are opened without ``O_CREAT``: a missing file means a
missing controller, never a new file.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from stackd.errors import DriverError, PermanentDriverError, TransientDriverError

_TRANSIENT = frozenset({errno.EBUSY, errno.EAGAIN, errno.EINTR, errno.ENOMEM, errno.ETIMEDOUT})
_HINTS = {
    errno.EACCES: "stackd needs root, or a cgroup delegated to its user",
    errno.EPERM: "stackd needs root, or a cgroup delegated to its user",
    errno.EROFS: "the cgroup file system is mounted read-only",
    errno.EINVAL: "the kernel refused this value",
    errno.ENOSPC: "the kernel refused: no room (e.g. cgroup.max.descendants or an empty cpuset)",
    errno.EOPNOTSUPP: "the kernel refused: not supported in this hierarchy",
}


def translate(exc: OSError, action: str, path: Path) -> DriverError:
    """The driver error for ``exc`` raised while doing ``action`` on ``path``."""
    reason = exc.strerror or str(exc)
    message = f"cannot {action} {path}: {reason}"
    if exc.errno == errno.ENOENT:
        # the cgroup went away under us (a racing removal): worth another pass
        if not path.parent.is_dir():
            return TransientDriverError(f"{message} (its cgroup disappeared)")
        return PermanentDriverError(f"{message} (the controller is not available in this cgroup)")
    if exc.errno in _TRANSIENT:
        return TransientDriverError(message)
    hint = _HINTS.get(exc.errno or 0)
    return PermanentDriverError(f"{message} ({hint})" if hint else message)


def read(path: Path) -> str | None:
    """A control file's content without the final newline, ``None`` when it does not exist."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read().rstrip("\n")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise translate(exc, "read", path) from exc


def write(path: Path, value: str) -> None:
    """Write ``value`` to an existing control file in a single write (as the kernel expects)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as exc:
        raise translate(exc, "open", path) from exc
    try:
        os.write(fd, value.encode("ascii"))
    except OSError as exc:
        raise translate(exc, f"write {value!r} to", path) from exc
    finally:
        os.close(fd)


def mkdir(path: Path) -> None:
    """Create a cgroup directory (an existing one is fine; an existing non-directory is not)."""
    try:
        os.mkdir(path)
    except FileExistsError as exc:
        if not path.is_dir():
            raise PermanentDriverError(f"cannot create cgroup {path}: a file of that name exists") from exc
    except OSError as exc:
        raise translate(exc, "create cgroup", path) from exc


def rmdir(path: Path) -> None:
    """Remove an empty cgroup directory (an already missing one is fine)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise translate(exc, "remove cgroup", path) from exc


def subdirs(path: Path) -> tuple[str, ...]:
    """Names of the child cgroups of ``path``, sorted; none when ``path`` does not exist."""
    try:
        with os.scandir(path) as entries:
            return tuple(sorted(e.name for e in entries if e.is_dir(follow_symlinks=False)))
    except (FileNotFoundError, NotADirectoryError):
        return ()
    except OSError as exc:
        raise translate(exc, "list", path) from exc


def tree_bottom_up(path: Path) -> list[Path]:
    """``path`` and every cgroup below it, children before parents; empty when it does not exist."""
    out: list[Path] = []
    for name in subdirs(path):
        out.extend(tree_bottom_up(path / name))
    if path.is_dir():
        out.append(path)
    return out


def procs(path: Path) -> tuple[int, ...]:
    """The processes directly in the cgroup at ``path`` (none when it does not exist)."""
    text = read(path / "cgroup.procs") or ""
    return tuple(int(p) for p in text.split())
