"""``VolumeDriver``: named volumes as directories, Docker's ``local`` driver without options.

Layout under the root (``<data>/volumes``, mode 0700)::

    <name>/_data          what containers mount (0755 root, until a copy-up gives it the
                          owner and mode of the image's directory)
    <name>/volume.json    {"name", "labels", "created_at", "populating"}
    .tmp-<hex>/           a volume being made (renamed to <name> when complete)
    .rm-<hex>/            a volume being removed (renamed away first, then deleted)

Making a volume is atomic (built under a temporary name, then renamed), so a volume either
exists whole or not at all; ``ensure`` of an existing volume keeps it and its labels as they
are. ``populate_from`` copies the image's content into a volume that is empty, under an
exclusive ``flock`` of the volume's directory; ``populating`` is set in ``volume.json`` while it
copies, so a copy cut short by a crash is wiped and redone by the next call instead of leaving
a half-filled volume that looks used. ``remove`` refuses with ``VolumeInUseError`` while any
mount namespace on the host (a running container's) mounts the volume or something in it (see
``mounts``); the check is complete only as root. Removing an absent volume is not an error.

Every method blocks (file I/O, ``cp``): async callers use ``anyio.to_thread``. This is a driver:
it decides nothing about which volumes a stack needs, nor when a copy-up is wanted (the caller
asks, and skips it for ``nocopy`` mounts).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stackd import labels as label_keys
from stackd.drivers.fsutil import fsync_dir, remove_tree, sync_filesystem, write_atomic
from stackd.drivers.volumes.copyup import clear_contents, copy_contents, is_empty
from stackd.drivers.volumes.errors import VolumeError, VolumeInUseError, VolumeNotFoundError
from stackd.drivers.volumes.mounts import MountUse, find_uses
from stackd.drivers.volumes.names import check_name

DEFAULT_ROOT = Path("/var/lib/stackd/volumes")
DATA = "_data"
META = "volume.json"
TMP_PREFIX = ".tmp-"
RM_PREFIX = ".rm-"


@dataclass(frozen=True)
class VolumeInfo:
    """A volume: its name, the directory containers mount, its labels and creation time (None
    for a directory stackd did not make and whose metadata is missing or unreadable)."""

    name: str
    path: Path
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class _Meta:
    labels: dict[str, str]
    created_at: datetime | None
    populating: bool


def _meta_bytes(name: str, labels: Mapping[str, str], created_at: datetime | None, populating: bool) -> bytes:
    doc = {"name": name, "labels": dict(sorted(labels.items())),
           "created_at": created_at.isoformat() if created_at else None, "populating": populating}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _read_meta(vol: Path) -> _Meta:
    """The metadata of ``vol``; empty when missing or unreadable (a hand-made directory)."""
    try:
        doc = json.loads((vol / META).read_bytes())
    except (OSError, ValueError):
        return _Meta({}, None, False)
    if not isinstance(doc, dict):
        return _Meta({}, None, False)
    raw = doc.get("labels")
    found = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    created: datetime | None = None
    if isinstance(doc.get("created_at"), str):
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(doc["created_at"])
    return _Meta(found, created, doc.get("populating") is True)


class VolumeDriver:
    """Named volumes under ``root``; ``clock`` stamps creation times and ``proc`` is where mount
    tables are read (tests inject both)."""

    def __init__(self, root: Path = DEFAULT_ROOT, *, clock: Callable[[], datetime] | None = None,
                 proc: Path = Path("/proc")) -> None:
        self.root = Path(root)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._proc = proc

    # ------------------------------------------------------------------------------ paths

    def _dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def path(self, name: str) -> Path:
        """The directory a container mounts for volume ``name`` (whether it exists or not)."""
        return self._dir(name) / DATA

    def exists(self, name: str) -> bool:
        return self._dir(name).is_dir()

    # --------------------------------------------------------------------------- creating

    def ensure(self, name: str, labels: Mapping[str, str]) -> Path:
        """Make volume ``name`` with ``labels`` unless it exists; the directory to mount."""
        vol = self._dir(name)
        if vol.is_dir():
            self._repair(vol, name, labels)
            return vol / DATA
        self._make_root()
        tmp = self.root / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            tmp.mkdir(mode=0o755)
            (tmp / DATA).mkdir(mode=0o755)
            for made in (tmp, tmp / DATA):
                os.chmod(made, 0o755)  # whatever the umask
            write_atomic(tmp / META, _meta_bytes(name, labels, self._clock(), False))
            try:
                os.rename(tmp, vol)
            except OSError:
                if not vol.is_dir():  # not a lost race with another ensure: a real failure
                    raise
        except OSError as exc:
            raise VolumeError(f"cannot create volume {name} in {self.root}: {exc.strerror or exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                remove_tree(tmp)
        fsync_dir(self.root)
        return vol / DATA

    def _make_root(self) -> None:
        if not self.root.is_dir():
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _repair(self, vol: Path, name: str, labels: Mapping[str, str]) -> None:
        """Give a hand-made volume directory what ``ensure`` would have made; never relabel."""
        try:
            if not (vol / DATA).is_dir():
                (vol / DATA).mkdir(mode=0o755)
            if not (vol / META).exists():
                write_atomic(vol / META, _meta_bytes(name, labels, self._clock(), False))
        except OSError as exc:
            raise VolumeError(f"volume {name}: cannot complete {vol}: {exc.strerror or exc}") from exc

    # -------------------------------------------------------------------------- copy-up

    def populate_from(self, name: str, source_dir: Path) -> bool:
        """Docker's copy-up: when volume ``name`` is empty, copy everything in ``source_dir`` (the
        image's directory at the mount target, resolved inside the container's root file system
        by the caller) into it, keeping owners, modes, times, xattrs, symlinks and hard links.
        Whether it copied: not when the volume holds anything or ``source_dir`` does not exist
        or is not a directory. A symlink as ``source_dir`` is refused: resolve it first."""
        vol = self._dir(name)
        if not vol.is_dir():
            raise VolumeNotFoundError(f"volume {name} does not exist (ensure it first)")
        try:
            st = source_dir.lstat()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise VolumeError(f"volume {name}: cannot read {source_dir}: {exc.strerror or exc}") from exc
        if stat.S_ISLNK(st.st_mode):
            raise VolumeError(f"volume {name}: copy-up source {source_dir} is a symlink; resolve it inside "
                              "the container's root file system first")
        if not stat.S_ISDIR(st.st_mode):
            return False
        data = vol / DATA
        with self._locked(vol, name):
            meta = _read_meta(vol)
            try:
                if meta.populating:
                    clear_contents(data)  # an earlier copy was cut short
                elif not is_empty(data):
                    return False
                write_atomic(vol / META, _meta_bytes(name, meta.labels, meta.created_at, True))
                copy_contents(source_dir, data)
                sync_filesystem(data)
                write_atomic(vol / META, _meta_bytes(name, meta.labels, meta.created_at, False))
            except OSError as exc:
                raise VolumeError(f"volume {name}: copy-up from {source_dir} failed: {exc.strerror or exc}"
                                  ) from exc
        return True

    @contextlib.contextmanager
    def _locked(self, vol: Path, name: str) -> Iterator[None]:
        try:
            fd = os.open(vol, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise VolumeNotFoundError(f"volume {name} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                still = os.stat(vol)
            except FileNotFoundError:
                still = None
            mine = os.fstat(fd)
            if still is None or (still.st_dev, still.st_ino) != (mine.st_dev, mine.st_ino):
                raise VolumeNotFoundError(f"volume {name} was removed meanwhile")
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------------- removing

    def users(self, name: str) -> builtins.list[MountUse]:
        """Who mounts volume ``name`` (or something in it) now, one process per mount namespace."""
        return find_uses(self._dir(name), self._proc)

    def remove(self, name: str) -> bool:
        """Delete volume ``name`` and its content; whether it existed. ``VolumeInUseError`` while it
        is mounted anywhere (see the module text)."""
        vol = self._dir(name)
        if not vol.is_dir():
            return False
        gone = self.root / f"{RM_PREFIX}{secrets.token_hex(8)}"
        try:
            with self._locked(vol, name):
                uses = find_uses(vol, self._proc)
                if uses:
                    first = uses[0]
                    raise VolumeInUseError(
                        f"volume {name} is in use: mounted at {first.mount_point} by process {first.pid}"
                        + (f" and {len(uses) - 1} more" if len(uses) > 1 else "")
                        + "; stop and remove the containers that use it first")
                os.rename(vol, gone)
        except VolumeNotFoundError:
            return False
        except OSError as exc:
            raise VolumeError(f"cannot remove volume {name}: {exc.strerror or exc}") from exc
        try:
            fsync_dir(self.root)
            remove_tree(gone)
        except OSError as exc:
            raise VolumeError(f"volume {name} was removed but its files in {gone} could not all be deleted "
                              f"({exc.strerror or exc}); sweep() retries") from exc
        return True

    def sweep(self) -> builtins.list[str]:
        """Delete what interrupted ``ensure``/``remove`` calls left (``.tmp-*``, ``.rm-*``); their
        names. Only when no other call runs (at daemon start)."""
        if not self.root.is_dir():
            return []
        done = []
        for entry in sorted(os.listdir(self.root)):
            if entry.startswith((TMP_PREFIX, RM_PREFIX)):
                try:
                    remove_tree(self.root / entry)
                except OSError as exc:
                    raise VolumeError(f"cannot delete leftover {self.root / entry}: {exc.strerror or exc}"
                                      ) from exc
                done.append(entry)
        return done

    # -------------------------------------------------------------------------- reading

    def info(self, name: str) -> VolumeInfo | None:
        vol = self._dir(name)
        if not vol.is_dir():
            return None
        meta = _read_meta(vol)
        return VolumeInfo(name, vol / DATA, meta.labels, meta.created_at)

    def list(self, *, project: str | None = None, prefix: str | None = None,
             labels: Mapping[str, str] | None = None) -> builtins.list[VolumeInfo]:
        """The volumes, by name: only those whose name starts with ``prefix``, that carry every
        label of ``labels`` and, with ``project``, the project label ``io.stackd.project``."""
        wanted = dict(labels or {})
        if project is not None:
            wanted[label_keys.PROJECT] = project
        try:
            entries = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            if entry.startswith(".") or (prefix is not None and not entry.startswith(prefix)):
                continue
            try:
                check_name(entry)
            except VolumeError:
                continue
            info = self.info(entry)
            if info is not None and all(info.labels.get(k) == v for k, v in wanted.items()):
                found.append(info)
        return found
