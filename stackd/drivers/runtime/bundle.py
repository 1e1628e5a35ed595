"""OCI bundles on disk: a directory holding config.json, whose ``root.path`` names the rootfs.

Writes are atomic: a new bundle is assembled in a hidden sibling directory and renamed into
place; an existing bundle's config.json is replaced with ``os.replace``. A reader (a runtime,
a crashed daemon coming back) sees the old bundle or the new one, never half of one. This
module writes files only; it never starts anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackd.drivers.fsutil import fsync_dir, write_atomic
from stackd.errors import PermanentDriverError

CONFIG = "config.json"


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)


def write_bundle(bundle: Path, config: Mapping[str, Any], rootfs: Path | None = None) -> Path:
    """Write ``config`` as ``bundle``/config.json and return the bundle path.

    ``rootfs`` (an existing directory) overrides ``config["root"]["path"]`` with its absolute
    path; the config is otherwise written as given. The bundle directory is created if missing.
    """
    data = dict(config)
    if rootfs is not None:
        root = Path(rootfs).resolve()
        data["root"] = {**dict(data.get("root") or {}), "path": str(root)}
    root_path = (data.get("root") or {}).get("path")
    if not root_path:
        raise PermanentDriverError(f"bundle {bundle}: the config names no root file system")
    resolved = Path(root_path) if Path(root_path).is_absolute() else Path(bundle, root_path)
    if not resolved.is_dir():
        raise PermanentDriverError(f"bundle {bundle}: root file system {resolved} is not a directory")
    bundle = Path(bundle)
    try:
        bundle.parent.mkdir(parents=True, exist_ok=True)
        if bundle.is_dir():
            _write_json_atomic(bundle / CONFIG, data)
            return bundle
        staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.", dir=bundle.parent))
        try:
            os.chmod(staging, 0o700)
            _write_json_atomic(staging / CONFIG, data)
            try:
                os.rename(staging, bundle)
            except OSError:
                if not bundle.is_dir():  # not lost to a concurrent writer of the same bundle
                    raise
                _write_json_atomic(bundle / CONFIG, data)
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(bundle.parent)
    except OSError as exc:
        raise PermanentDriverError(f"cannot write bundle {bundle}: {exc}") from exc
    return bundle


def read_config(bundle: Path) -> dict[str, Any]:
    """The config.json of ``bundle``."""
    try:
        data = json.loads(Path(bundle, CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PermanentDriverError(f"cannot read bundle {bundle}: {exc}") from exc
    if not isinstance(data, dict):
        raise PermanentDriverError(f"bundle {bundle}: config.json is not an object")
    return data


def remove_bundle(bundle: Path) -> None:
    """Remove config.json and the bundle directory, which must then be empty: nothing else in
    it (a rootfs kept inside the bundle, possibly a mount) is ever deleted from here."""
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(Path(bundle, CONFIG))
        os.rmdir(bundle)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise PermanentDriverError(f"cannot remove bundle {bundle}: {exc}") from exc
