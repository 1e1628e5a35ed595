"""Make the relative paths of a merged stack absolute, against the project directory.

Covers what Compose resolves: ``build.context`` (unless a URL), ``build.dockerfile`` stays relative
to the context, bind mount sources (``./``, ``../``, ``~``), ``env_file`` paths, top-level
``secrets``/``configs`` ``file``, and ``extends.file`` leftovers. Pure string work on the tree.
"""

from __future__ import annotations

import os
import re
from typing import Any

from stackd.spec.tree import Map, Seq

_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/)", re.I)


def _abs(base: str, path: Any) -> Any:
    if not isinstance(path, str) or not path or _URL.match(path):
        return path
    if path.startswith("~"):
        return os.path.expanduser(path)
    return os.path.normpath(os.path.join(base, path))


def _service(svc: Map, base: str) -> Map:
    out = svc.derive(svc.items())
    build = svc.get("build")
    if isinstance(build, Map) and "context" in build:
        nb = build.derive(build.items())
        nb["context"] = _abs(base, build["context"])
        out["build"] = nb
    elif isinstance(build, Map):
        nb = build.derive(build.items())
        nb["context"] = base
        out["build"] = nb
    volumes = svc.get("volumes")
    if isinstance(volumes, Seq):
        items = []
        for vol, pos in volumes.with_pos():
            if isinstance(vol, Map) and vol.get("type") == "bind" and isinstance(vol.get("source"), str):
                nv = vol.derive(vol.items())
                nv["source"] = _abs(base, vol["source"])
                vol = nv
            items.append((vol, pos))
        out["volumes"] = volumes.derive(items)
    env_files = svc.get("env_file")
    if isinstance(env_files, Seq):
        files = []
        for entry, pos in env_files.with_pos():
            if isinstance(entry, Map) and "path" in entry:
                ne = entry.derive(entry.items())
                ne["path"] = _abs(base, entry["path"])
                entry = ne
            files.append((entry, pos))
        out["env_file"] = env_files.derive(files)
    return out


def resolve_paths(tree: Map, base: str) -> Map:
    out = tree.derive(tree.items())
    services = tree.get("services")
    if isinstance(services, Map):
        out["services"] = services.derive(
            (n, _service(s, base) if isinstance(s, Map) else s) for n, s in services.items())
    for section in ("secrets", "configs"):
        defs = tree.get(section)
        if isinstance(defs, Map):
            new = defs.derive(defs.items())
            for name, d in defs.items():
                if isinstance(d, Map) and isinstance(d.get("file"), str):
                    nd = d.derive(d.items())
                    nd["file"] = _abs(base, d["file"])
                    new[name] = nd
            out[section] = new
    return out
