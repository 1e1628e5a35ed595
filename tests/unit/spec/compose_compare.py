"""Compare a loaded Compose model with an expectation of the conformance corpus, as its README says.

``canonical_for_compare(model)`` brings a plain model (dicts and lists) to one shape per key: the
README's canonical forms (``K=V`` lists → maps, short ports/volumes/secrets → long, strings →
one-item lists, ``build: ctx`` → ``{context: ctx}``...), then drops the defaults an implementation
may add on its own (``bind.create_host_path: true``, ``build.dockerfile: Dockerfile``, ``pull_policy:
missing``, a lone ``default`` network, ``<project>_<name>`` resource names) and empty maps and lists.
It is written apart from ``stackd.spec.canonical`` on purpose, so a mistake there cannot hide itself.

``assert_matches(actual, expected, compare, scope, expect_absent)`` runs one check of a case:
``exact-canonical`` (equal at each scope path, or at every top-level key of the expectation),
``subset`` (every expected path present and equal; lists match item by item) and ``expect_absent``.
Both sides are canonicalised first. Used by tests only: no stackd code imports it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()

_KV_SERVICE = ("environment", "labels", "annotations", "sysctls")
_KV_BUILD = ("args", "labels", "additional_contexts")
_STR_LISTS = ("dns", "dns_search", "dns_opt", "tmpfs")
_RESOURCES = ("networks", "volumes", "secrets", "configs")


def canonical_for_compare(model: dict[str, Any]) -> dict[str, Any]:
    """The model in the corpus's canonical comparison form (a new dict; the input is not changed)."""
    out = dict(model)
    services = out.get("services")
    if isinstance(services, dict):
        out["services"] = {name: _service(s) if isinstance(s, dict) else s for name, s in services.items()}
    project = out.get("name")
    for kind in _RESOURCES:
        entries = out.get(kind)
        if isinstance(entries, dict):
            out[kind] = {key: _resource(key, value, project, kind) for key, value in entries.items()}
            if out[kind].get("default", MISSING) is None and kind == "networks":
                del out[kind]["default"]
    return _drop_empty(out)  # type: ignore[no-any-return]


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _kv(value: Any) -> Any:
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for item in value:
            key, eq, val = str(item).partition("=")
            out[key] = val if eq else None
        return out
    if isinstance(value, dict):
        return {str(k): None if v is None else _text(v) for k, v in value.items()}
    return value


def _hosts(value: Any) -> Any:
    if isinstance(value, list):
        out: dict[str, list[str]] = {}
        for item in value:
            sep = "=" if "=" in item else ":"
            host, _, ip = item.partition(sep)
            out.setdefault(host, []).append(ip)
        return out
    if isinstance(value, dict):
        return {h: list(ip) if isinstance(ip, list) else [ip] for h, ip in value.items()}
    return value


def _ports(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, dict):
            entry = {k: v for k, v in item.items() if v is not None}
            if "published" in entry:
                entry["published"] = str(entry["published"])
            if isinstance(entry.get("target"), str) and entry["target"].isdigit():
                entry["target"] = int(entry["target"])
            out.append({"protocol": "tcp", "mode": "ingress", **entry})
            continue
        spec, _, proto = str(item).partition("/")
        parts = spec.rsplit(":", 2)
        ip = parts[0].strip("[]") if len(parts) == 3 else None
        host = parts[-2] if len(parts) >= 2 else None
        lo, _, hi = parts[-1].partition("-")
        count = int(hi or lo) - int(lo) + 1
        h_lo, _, h_hi = (host or "").partition("-")
        for i in range(count):
            entry = {"target": int(lo) + i, "protocol": proto or "tcp", "mode": "ingress"}
            if host:
                same = count == (int(h_hi or h_lo) - int(h_lo) + 1)
                entry["published"] = str(int(h_lo) + i) if same else host
            if ip:
                entry["host_ip"] = ip
            out.append(entry)
    return out


def _volume(item: Any) -> Any:
    if isinstance(item, dict):
        entry = dict(item)
        bind = entry.get("bind")
        if isinstance(bind, dict) and bind.get("create_host_path") is True:
            entry["bind"] = {k: v for k, v in bind.items() if k != "create_host_path"}
        if entry.get("read_only") is False:
            del entry["read_only"]
        return entry
    fields: list[str] = []
    for part in str(item).split(":"):
        if fields and len(fields[-1]) == 1 and fields[-1].isalpha():
            fields[-1] += ":" + part  # a Windows drive letter, as compose-go reads it
        else:
            fields.append(part)
    if len(fields) == 1:
        return {"type": "volume", "target": fields[0]}
    source, target = fields[0], fields[1]
    kind = "bind" if source[:1] in (".", "/", "~") or (len(source) > 1 and source[1] == ":") else "volume"
    entry = {"type": kind, "source": source, "target": target}
    if len(fields) > 2 and "ro" in fields[2].split(","):
        entry["read_only"] = True
    return entry


def _mounts(default_dir: str) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            entry = {"source": item} if isinstance(item, str) else dict(item)
            entry.setdefault("target", f"{default_dir}/{entry.get('source')}")
            out.append(entry)
        return out
    return conv


def _env_files(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return value
    return [{"path": i, "required": True} if isinstance(i, str) else {"required": True, **i} for i in items]


def _depends_on(value: Any) -> Any:
    if isinstance(value, list):
        return {name: {"condition": "service_started", "required": True} for name in value}
    if isinstance(value, dict):
        return {k: {"condition": "service_started", "required": True, **(v or {})} for k, v in value.items()}
    return value


def _service(service: dict[str, Any]) -> dict[str, Any]:
    s = dict(service)
    for key in _KV_SERVICE:
        s[key] = _kv(s.get(key, MISSING))
    for key in _STR_LISTS:
        if isinstance(s.get(key), str):
            s[key] = [s[key]]
    for key in ("command", "entrypoint"):
        if isinstance(s.get(key), str):
            s[key] = shlex.split(s[key])
    if isinstance(s.get("build"), str):
        s["build"] = {"context": s["build"]}
    if isinstance(s.get("build"), dict):
        build = dict(s["build"])
        for key in _KV_BUILD:
            build[key] = _kv(build.get(key, MISSING))
        build["extra_hosts"] = _hosts(build.get("extra_hosts", MISSING))
        if build.get("dockerfile") == "Dockerfile":
            del build["dockerfile"]
        s["build"] = build
    if isinstance(s.get("deploy"), dict):
        s["deploy"] = {**s["deploy"], "labels": _kv(s["deploy"].get("labels", MISSING))}
    if isinstance(s.get("healthcheck"), dict) and isinstance(s["healthcheck"].get("test"), str):
        s["healthcheck"] = {**s["healthcheck"], "test": ["CMD-SHELL", s["healthcheck"]["test"]]}
    networks = s.get("networks")
    if isinstance(networks, list):
        networks = dict.fromkeys(networks)
    if isinstance(networks, dict):
        networks = {k: None if v == {} else v for k, v in networks.items()}
        s["networks"] = None if networks == {"default": None} else networks
    if isinstance(s.get("ulimits"), dict):
        s["ulimits"] = {k: {"soft": v, "hard": v} if isinstance(v, int) else v
                        for k, v in s["ulimits"].items()}
    if isinstance(s.get("expose"), list):
        s["expose"] = [str(p) for p in s["expose"]]
    if isinstance(s.get("volumes"), list):
        s["volumes"] = [_volume(v) for v in s["volumes"]]
    if s.get("pull_policy") == "missing":
        del s["pull_policy"]
    s["extra_hosts"] = _hosts(s.get("extra_hosts", MISSING))
    s["env_file"] = _env_files(s.get("env_file", MISSING))
    s["depends_on"] = _depends_on(s.get("depends_on", MISSING))
    s["ports"] = _ports(s.get("ports", MISSING))
    s["secrets"] = _mounts("/run/secrets")(s.get("secrets", MISSING))
    s["configs"] = _mounts("")(s.get("configs", MISSING))
    return {k: v for k, v in s.items() if v is not MISSING and not (v is None and k == "networks")}


def _resource(key: str, value: Any, project: Any, kind: str) -> Any:
    if not isinstance(value, dict):
        return value
    r = dict(value)
    for field in ("labels", "driver_opts"):
        if field in r:
            r[field] = _kv(r[field])
    if isinstance(r.get("ipam"), dict) and "options" in r["ipam"]:
        r["ipam"] = {**r["ipam"], "options": _kv(r["ipam"]["options"])}
    if kind in ("networks", "volumes") and not r.get("external") and r.get("name") == f"{project}_{key}":
        del r["name"]
    return r or None


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _drop_empty(v) for k, v in value.items() if v is not MISSING}
        return {k: v for k, v in out.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


# ---- assertions -----------------------------------------------------------------------------------

def _parse(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.split("."):
        name, *indexes = re.split(r"\[(\d+)\]", piece)
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes if i != "")
    return parts


def get(model: Any, path: list[str | int]) -> Any:
    """The value at a parsed path, or ``MISSING``."""
    node = model
    for part in path:
        found = (isinstance(part, int) and isinstance(node, list) and part < len(node)) or \
            (isinstance(part, str) and isinstance(node, dict) and part in node)
        if found:
            node = node[part]
        else:
            return MISSING
    return node


def _expand(path: str, *models: Any) -> list[list[str | int]]:
    """A dotted path with ``*`` → every concrete path present in one of ``models``."""
    out: list[list[str | int]] = [[]]
    for part in _parse(path):
        if part != "*":
            out = [[*p, part] for p in out]
            continue
        out = [[*p, k] for p in out for k in sorted({k for m in models if isinstance(get(m, p), dict)
                                                    for k in get(m, p)})]
    return out


def _show(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=repr)


def _subset(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected a mapping {_show(expected)}, got {_show(actual)}"
        for key, value in expected.items():
            _subset(actual.get(key, MISSING), value, f"{where}.{key}" if where else key)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), \
            f"{where}: expected {_show(expected)}, got {_show(actual)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _subset(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def assert_matches(actual: dict[str, Any], expected: dict[str, Any] | None,
                   compare: str = "exact-canonical", scope: str | list[str] | None = None,
                   expect_absent: list[str] | None = None) -> None:
    """Check ``actual`` against a case's expectation (both plain models); AssertionError says where."""
    a = canonical_for_compare(actual)
    e = canonical_for_compare(expected or {})
    scopes = [scope] if isinstance(scope, str) else list(scope or [])
    if expected is not None:
        if compare == "exact-canonical":
            paths = [p for s in scopes for p in _expand(s, a, e)] if scopes else \
                [[k, n] for k in e for n in (e[k] if k == "services" else [])] + [[k] for k in e]
            for path in paths:
                got, want = get(a, path), get(e, path)
                where = ".".join(map(str, path))
                assert got == want, f"{where}: expected {_show(want)}\ngot {_show(got)}"
        elif compare == "subset":
            for path in [p for s in scopes for p in _expand(s, a, e)] if scopes else [[]]:
                _subset(get(a, path), get(e, path), ".".join(map(str, path)))
        else:
            raise ValueError(f"unknown comparison {compare!r}")
    for absent in expect_absent or []:
        for concrete in _expand(absent, a):
            value = get(a, concrete)
            assert value is MISSING, f"{'.'.join(map(str, concrete))} should be absent, got {_show(value)}"
