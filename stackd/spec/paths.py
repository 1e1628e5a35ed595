"""The file-system paths written in a stack: make them absolute, or re-root them in another directory.

Compose reads these keys as paths relative to the project directory:

- ``services.*.build.context`` (a missing context means ``.``; URLs and ``git@`` remotes are kept),
  ``services.*.build.additional_contexts`` values (unless a URL or a ``service:``/``target:`` ref);
  ``build.dockerfile`` stays relative to the context;
- bind mount sources (``services.*.volumes[type=bind].source``);
- ``services.*.env_file[].path`` and ``services.*.label_file``;
- ``services.*.extends.file`` (left over only when extends was not resolved);
- top-level ``secrets.*.file`` and ``configs.*.file``.

``resolve_paths`` makes them absolute (``~`` is expanded with the ``HOME`` it is given);
``rebase_paths`` rewrites relative ones so that they mean the same file when read from another
directory (used for the files of an ``include``, whose paths are relative to their own project
directory). One walker serves both, so they always agree on which keys are paths. Pure string
work on the tree: no file is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from stackd.spec.tree import Map, Seq

_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/)", re.I)
_CONTEXT_REF = re.compile(r"^(?:service|target|docker-image|oci-layout):", re.I)

PathFn = Callable[[str], str]


def is_remote(path: str) -> bool:
    """A build context or file reference that is not on the local file system."""
    return bool(_URL.match(path))


def _apply(fn: PathFn, value: Any) -> Any:
    if not isinstance(value, str) or not value or is_remote(value):
        return value
    return fn(value)


def _build(build: Map, fn: PathFn) -> Map:
    nb = build.derive(build.items())
    nb["context"] = _apply(fn, build.get("context", "."))
    if "context" not in build:
        nb.key_pos["context"] = build.pos  # type: ignore[assignment]
    extra = build.get("additional_contexts")
    if isinstance(extra, Map):
        nb["additional_contexts"] = extra.derive(
            (k, v if isinstance(v, str) and _CONTEXT_REF.match(v) else _apply(fn, v))
            for k, v in extra.items())
    return nb


def _seq_of_maps(seq: Seq, key: str, fn: PathFn, when: Callable[[Map], bool] = lambda _: True) -> Seq:
    items = []
    for item, pos in seq.with_pos():
        new = item
        if isinstance(item, Map) and isinstance(item.get(key), str) and when(item):
            new = item.derive(item.items())
            new[key] = _apply(fn, item[key])
        items.append((new, pos))
    return seq.derive(items)


def _service(svc: Map, fn: PathFn) -> Map:
    out = svc.derive(svc.items())
    if isinstance(svc.get("build"), Map):
        out["build"] = _build(svc["build"], fn)
    if isinstance(svc.get("volumes"), Seq):
        out["volumes"] = _seq_of_maps(svc["volumes"], "source", fn, lambda v: v.get("type") == "bind")
    if isinstance(svc.get("env_file"), Seq):
        out["env_file"] = _seq_of_maps(svc["env_file"], "path", fn)
    labels = svc.get("label_file")
    if isinstance(labels, str):
        out["label_file"] = _apply(fn, labels)
    elif isinstance(labels, Seq):
        out["label_file"] = labels.derive((_apply(fn, p), pos) for p, pos in labels.with_pos())
    extends = svc.get("extends")
    if isinstance(extends, Map) and isinstance(extends.get("file"), str):
        ne = extends.derive(extends.items())
        ne["file"] = _apply(fn, extends["file"])
        out["extends"] = ne
    return out


def map_paths(tree: Map, fn: PathFn) -> Map:
    """A new tree where every local path value ``p`` (see the module docstring) became ``fn(p)``."""
    out = tree.derive(tree.items())
    services = tree.get("services")
    if isinstance(services, Map):
        out["services"] = services.derive(
            (n, _service(s, fn) if isinstance(s, Map) else s) for n, s in services.items())
    for section in ("secrets", "configs"):
        defs = tree.get(section)
        if isinstance(defs, Map):
            new = defs.derive(defs.items())
            for name, d in defs.items():
                if isinstance(d, Map) and isinstance(d.get("file"), str):
                    nd = d.derive(d.items())
                    nd["file"] = _apply(fn, d["file"])
                    new[name] = nd
            out[section] = new
    return out


def absolute(base: str, path: str, home: str | None = None) -> str:
    """``path`` as an absolute, normalised path (relative to ``base``; ``~`` is ``home``)."""
    if path == "~" or path.startswith("~/"):
        if home:
            return os.path.normpath(home + path[1:])
        return path
    return os.path.normpath(os.path.join(base, path))


def resolve_paths(tree: Map, base: str, home: str | None = None) -> Map:
    """Every relative path made absolute against ``base`` (the project directory)."""
    return map_paths(tree, lambda p: absolute(base, p, home))


def rebase_paths(tree: Map, src: str, dst: str) -> Map:
    """Relative paths written for directory ``src`` rewritten to mean the same files from ``dst``.

    Absolute paths and ``~`` paths are left alone; the result stays relative when it was.
    """
    def rebase(p: str) -> str:
        if os.path.isabs(p) or p.startswith("~"):
            return p
        return os.path.relpath(os.path.normpath(os.path.join(src, p)), dst)

    return map_paths(tree, rebase)


__all__ = ["absolute", "is_remote", "map_paths", "rebase_paths", "resolve_paths"]
