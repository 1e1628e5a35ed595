"""Turn every short syntax of a (single, interpolated) stack file into its one long form.

Runs on each file before the files are merged, so that merge rules see one shape per key
(compose-go does the same in ``transform``). Pure: tree in, new tree out, positions kept (an item
derived from a short string gets that string's position). ``!reset``/``!override`` markers may sit
at any level: a ``Reset`` is kept as it is, the value inside an ``Override`` is canonicalised.
It never reads files, fills in only the values a short syntax implies (the model owns every other
default), and leaves type errors in keys it does not convert to the pydantic models. The string
parsers (ports, volumes, command lines, numbers as text) live in ``shortsyntax``.

The canonical forms (the contract between this module, ``merge``, ``extends`` and ``models``):

services.<name>:
- ``build``: mapping (``build: ctx`` → ``{context: ctx}``); ``build.args``: map ``K → str|None``;
  ``build.labels``/``build.additional_contexts``: map ``K → str``; ``build.tags``/``platforms``/
  ``cache_from``/``cache_to``: lists; ``build.extra_hosts``: map ``host → [ip, ...]``.
- ``command``, ``entrypoint``: list of strings (a string is shell-split, POSIX rules);
  ``null`` stays null; ``[]`` stays ``[]``.
- ``environment``: map ``K → str|None`` (``K=V`` list items split at the first ``=``; a bare ``K``
  → ``None``, i.e. taken from the caller's environment later). ``labels``, ``annotations``,
  ``sysctls``, ``deploy.labels``: map ``K → str`` (a bare ``K`` → ``""``). In all of them numbers
  become their decimal text and booleans ``"true"``/``"false"``; a key given twice keeps the place
  of its first occurrence and the value (and position) of its last.
- ``env_file``: list of ``{path: str, required: bool (default true), format?: str}``.
- ``extra_hosts``: map ``host → [ip, ...]`` (``h=ip`` and ``h:ip`` items; brackets around an IPv6
  address are removed; several entries for one host collect their addresses in order).
- ``dns``, ``dns_search``, ``dns_opt``, ``tmpfs``: list of strings (a string → one-item list).
- ``depends_on``: map ``svc → mapping``; a list ``[a]`` → ``{a: {condition: service_started,
  required: true}}``; long-form entries stay as written (the model fills ``condition``/``required``/
  ``restart`` defaults, so that a partial override merges into the base entry).
- ``extends``: ``{service: str, file?: str}`` (a string → ``{service: s}``).
- ``networks``: map ``name → mapping | None`` (a list ``[a]`` → ``{a: None}``).
- ``ports``: list of ``{target: int, published?: str, host_ip?: str, protocol: str, mode: str,
  name?, app_protocol?}``. Short syntax ``[HOST_IP:][HOST[-HOST2]:]CONTAINER[-CONTAINER2][/PROTO]``
  (IPv6 host IPs with or without brackets) and ints are parsed into ``protocol`` (default tcp) and
  ``mode: ingress``; a container range becomes one entry per port (a host range of another length
  is kept whole as ``published`` when the container side is one port). Long entries keep what
  was written, ``published`` as a string.
- ``expose``: list of strings.
- ``volumes``: list of ``{type: bind|volume|tmpfs|npipe|cluster|image, source?: str, target: str,
  read_only?: true, bind?: {create_host_path?, propagation?, selinux?}, volume?: {nocopy?},
  consistency?: str}``. Short ``SOURCE:TARGET[:MODE]`` as compose-go parses it: a source starting
  with ``.``, ``/``, ``~`` (or a Windows drive) is a bind with ``bind.create_host_path: true`` (short
  binds create a missing host path), any other source a named volume, no source an anonymous
  volume. Modes: ``ro``/``rw``, ``nocopy``, ``z``/``Z`` (``bind.selinux``), propagation
  (``rprivate``, ``shared``...), ``cached``/``delegated``/``consistent`` (``consistency``); a
  one-letter first part followed by ``:`` is a Windows drive, so ``a:/a`` is an anonymous volume
  whose target is ``a:/a``. A long entry without ``target`` is an error.
- ``volumes_from``: list of strings (``service`` or ``container:name`` with optional ``:ro``/``:rw``).
- ``secrets``, ``configs``: list of ``{source, target?, uid?, gid?, mode?}`` (short ``x`` →
  ``{source: x}``; the default target is left to the model).
- ``ulimits``: map ``name → {soft: int, hard: int}`` (an int → soft = hard = int).
- ``healthcheck.test``: list (a string ``cmd`` → ``["CMD-SHELL", "cmd"]``); durations stay strings.
- ``logging``, ``deploy`` and other mappings keep their shape (with the inner forms above where they
  apply, e.g. ``deploy.labels``).
- ``profiles``, ``cap_add``, ``cap_drop``, ``security_opt``, ``group_add``, ``devices``...: lists,
  as written.

Top level:
- ``networks.<n>``/``volumes.<n>``/``secrets.<n>``/``configs.<n>``: mapping (``null`` stays null);
  ``labels`` and ``ipam.options``: map ``K → str``; ``driver_opts``: map ``K → str``; the legacy
  ``external: {name: x}`` → ``external: true, name: x``.

Anything not listed passes through unchanged. Errors (a port that cannot be parsed, a volume without
target, a string where a list or mapping is expected in a key converted here) are collected as
``Problem``s with the node's position and dotted path and raised together as one ``SpecError``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Union

from stackd.errors import Pos, Problem, SpecError
from stackd.spec.shortsyntax import parse_port, parse_volume, scalar_text, shell_split
from stackd.spec.tree import Map, Override, Reset, Seq, dotted

__all__ = ["canonicalize", "shell_split"]

Path = tuple[str | int, ...]
Conv = Callable[[Any, "Pos | None", Path, "_Ctx"], Any]
Table = dict[str, Union[Conv, "Table"]]
Item = tuple[Any, "Pos | None"]
_MARKERS = (Reset, Override)


class _Ctx:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, message: str, pos: Pos | None, path: Path, hint: str = "") -> None:
        self.problems.append(Problem(message, pos, dotted(path), hint))


def canonicalize(tree: Map, *, file: str, problems: list[Problem] | None = None) -> Map:
    """The canonical long form of one stack file (see the module docstring); ``file`` names it in errors.

    With ``problems`` given, failures are appended there instead of raised (a value that cannot
    be converted stays as written), so that the loader can report later stages' problems too.
    """
    if not isinstance(tree, Map):
        return tree
    ctx = _Ctx()
    out = _walk(tree, (), _TOP, ctx)
    if ctx.problems:
        if problems is None:
            raise SpecError(ctx.problems)
        problems.extend(ctx.problems)
    if out.pos is None:
        out.pos = Pos(file, 1)
    return out


# ---- the walk -------------------------------------------------------------------------------------

def _apply(conv: Conv, value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    """Run a converter keeping markers: a ``Reset`` stays, an ``Override`` is rebuilt around its new value."""
    if isinstance(value, Reset):
        return value
    if isinstance(value, Override):
        return Override(_apply(conv, value.value, value.pos or pos, path, ctx), value.pos)
    return conv(value, pos, path, ctx)


def _walk(node: Map, path: Path, table: Table, ctx: _Ctx) -> Map:
    """Convert the keys of ``node`` that ``table`` lists (``"*"`` = every key); others pass through."""
    items: list[tuple[str, Any]] = []
    for key, value in node.items():
        rule = table.get(key, table.get("*"))
        if rule is not None:
            conv = _nested(rule) if isinstance(rule, dict) else rule
            value = _apply(conv, value, node.where(key), (*path, key), ctx)  # noqa: PLW2901
        items.append((key, value))
    return node.derive(items)


def _nested(table: Table) -> Conv:
    def conv(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
        return _walk(value, path, table, ctx) if isinstance(value, Map) else value
    return conv


def _map_at(items: Iterable[tuple[str, Any]], pos: Pos | None) -> Map:
    """A new Map whose keys are all written at ``pos`` (nested dicts become Maps too)."""
    pairs = [(k, _map_at(v.items(), pos) if isinstance(v, dict) else v) for k, v in items]
    return Map(pairs, pos, {k: pos for k, _ in pairs} if pos else {})


def _items(value: Seq, path: Path, ctx: _Ctx, each: Callable[[Any, Pos | None, Path], list[Item]]) -> Seq:
    """Rebuild a list item by item (an item may become several); markers pass through untouched."""
    out: list[Item] = []
    for i, (item, ipos) in enumerate(value.with_pos()):
        out.extend([(item, ipos)] if isinstance(item, _MARKERS) else each(item, ipos, (*path, i)))
    return value.derive(out)


def _seq_only(what: str, each: Callable[[Any, Pos | None, Path, _Ctx], list[Item]]) -> Conv:
    def conv(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
        if isinstance(value, Seq):
            return _items(value, path, ctx, lambda item, ipos, at: each(item, ipos, at, ctx))
        if value is not None:
            ctx.fail(f"expected a list of {what}", pos, path)
        return value
    return conv


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


# ---- mappings of strings --------------------------------------------------------------------------

def _kv_map(bare: str | None) -> Conv:
    """``K=V`` list or mapping → ``Map K → str`` (``bare`` is the value of a ``K`` without ``=``)."""
    def text(v: Any) -> Any:
        return v if v is None or isinstance(v, Reset) else scalar_text(v)

    def conv(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
        if isinstance(value, Map):
            items = []
            for k, v in value.items():
                if isinstance(v, Map | Seq):
                    ctx.fail("expected a string, a number or a boolean", value.where(k), (*path, k))
                items.append((k, Override(text(v.value), v.pos) if isinstance(v, Override) else text(v)))
            return value.derive(items)
        if isinstance(value, Seq):
            out = Map((), value.pos)
            for i, (item, ipos) in enumerate(value.with_pos()):
                if item is None or isinstance(item, Map | Seq | Reset | Override):
                    ctx.fail("expected a KEY=VALUE string", ipos, (*path, i))
                    continue
                key, eq, val = scalar_text(item).partition("=")
                if not key:
                    ctx.fail(f"missing a name before '=' in {item!r}", ipos, (*path, i))
                    continue
                out[key] = val if eq else bare  # a repeated key keeps its place and takes the last value
                if ipos is not None:
                    out.key_pos[key] = ipos
            return out
        if value is not None:
            ctx.fail("expected a mapping or a list of KEY=VALUE strings", pos, path)
        return value
    return conv


def _extra_hosts(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if value is None:
        return None
    out = Map((), getattr(value, "pos", pos))

    def add(host: str, ips: Any, where: Pos | None, at: Path) -> None:
        for ip in ips if isinstance(ips, Seq) else [ips]:
            if not _is_scalar(ip):
                ctx.fail("expected an IP address", where, at)
                continue
            text = scalar_text(ip).strip()
            text = text[1:-1] if text.startswith("[") and text.endswith("]") else text
            seq = out.get(host)
            if seq is None:
                out[host] = seq = Seq((), where, [])
                if where is not None:
                    out.key_pos[host] = where
            if text not in seq:
                seq.append(text)
                seq.item_pos.append(where)

    if isinstance(value, Map):
        for host, ips in value.items():
            add(host, ips, value.where(host), (*path, host))
    elif isinstance(value, Seq):
        for i, (item, ipos) in enumerate(value.with_pos()):
            text = item if isinstance(item, str) else ""
            host, found, ip = text.partition("=" if "=" in text else ":")
            if not found or not host.strip():
                ctx.fail(f"expected HOST=IP, got {item!r}", ipos, (*path, i))
            else:
                add(host.strip(), ip, ipos, (*path, i))
    else:
        ctx.fail("expected a mapping or a list of HOST=IP strings", pos, path)
        return value
    return out


# ---- lists ----------------------------------------------------------------------------------------

def _str_list(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if isinstance(value, str):
        return Seq([value], pos, [pos])
    if value is not None and not isinstance(value, Seq):
        ctx.fail("expected a string or a list of strings", pos, path)
    return value


def _command(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if not isinstance(value, str):
        return _str_list(value, pos, path, ctx)
    try:
        words = shell_split(value)
    except ValueError as exc:
        ctx.fail(f"cannot split the command line: {exc}", pos, path, "check the quotes")
        return value
    return Seq(words, pos, [pos] * len(words))


def _expose(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if _is_scalar(value):
        return Seq([scalar_text(value)], pos, [pos])
    if isinstance(value, Seq):
        return value.derive((scalar_text(v) if _is_scalar(v) else v, p) for v, p in value.with_pos())
    if value is not None:
        ctx.fail("expected a list of ports", pos, path)
    return value


def _env_file_item(item: Any, ipos: Pos | None, at: Path, ctx: _Ctx) -> list[Item]:
    if isinstance(item, str):
        return [(_map_at([("path", item), ("required", True)], ipos), ipos)]
    if isinstance(item, Map) and isinstance(item.get("path"), str):
        return [(item if "required" in item else item.derive([*item.items(), ("required", True)]), ipos)]
    ctx.fail("expected a file path or a mapping with `path`", ipos, at)
    return [(item, ipos)]


def _env_file(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    return _seq_only("env files", _env_file_item)(_str_list(value, pos, path, ctx), pos, path, ctx)


def _file_ref(item: Any, ipos: Pos | None, at: Path, ctx: _Ctx) -> list[Item]:
    if isinstance(item, str):
        return [(_map_at([("source", item)], ipos), ipos)]
    if not isinstance(item, Map):
        ctx.fail("expected a name or a mapping with `source`", ipos, at)
    elif not isinstance(item.get("source"), str):
        ctx.fail("missing `source`", ipos, at, "name the secret or config to mount")
    return [(item, ipos)]


def _port(item: Any, ipos: Pos | None, at: Path, ctx: _Ctx) -> list[Item]:
    if isinstance(item, Map):
        published = item.get("published")
        if isinstance(published, int) and not isinstance(published, bool):
            item = item.derive((k, str(v) if k == "published" else v) for k, v in item.items())
        return [(item, ipos)]
    if isinstance(item, str | int) and not isinstance(item, bool):
        try:
            return [(_map_at(entry.items(), ipos), ipos) for entry in parse_port(str(item))]
        except ValueError as exc:
            ctx.fail(f"invalid port {item!r}: {exc}", ipos, at,
                     "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]")
            return []
    ctx.fail(f"invalid port {item!r}", ipos, at)
    return []


def _volume(item: Any, ipos: Pos | None, at: Path, ctx: _Ctx) -> list[Item]:
    if isinstance(item, str):
        try:
            return [(_map_at(parse_volume(item).items(), ipos), ipos)]
        except ValueError as exc:
            ctx.fail(f"invalid volume {item!r}: {exc}", ipos, at, "expected [SOURCE:]TARGET[:MODE]")
            return []
    if not isinstance(item, Map):
        ctx.fail(f"invalid volume {item!r}", ipos, at)
    elif not isinstance(item.get("target"), str) or not item["target"]:
        ctx.fail("a volume needs a `target` (the path inside the container)", ipos, at)
    return [(item, ipos)]


# ---- mappings of names ----------------------------------------------------------------------------

def _names_to_map(what: str, entry: Callable[[Pos | None], Any]) -> Conv:
    """A list of names → ``Map name → entry(pos)``; a mapping stays as written."""
    def conv(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
        if isinstance(value, Seq):
            out = Map((), value.pos)
            for i, (name, ipos) in enumerate(value.with_pos()):
                if not isinstance(name, str):
                    ctx.fail(f"expected a {what} name", ipos, (*path, i))
                    continue
                out[name] = entry(ipos)
                if ipos is not None:
                    out.key_pos[name] = ipos
            return out
        if value is not None and not isinstance(value, Map):
            ctx.fail(f"expected a mapping or a list of {what} names", pos, path)
        return value
    return conv


def _extends(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if isinstance(value, str):
        return _map_at([("service", value)], pos)
    if not isinstance(value, Map) or not isinstance(value.get("service"), str):
        ctx.fail("expected a service name or a mapping with `service` (and optionally `file`)", pos, path)
    return value


def _ulimits(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if not isinstance(value, Map):
        return value
    return value.derive(
        (name, _map_at([("soft", v), ("hard", v)], value.where(name))
         if isinstance(v, int) and not isinstance(v, bool) else v)
        for name, v in value.items())


def _healthcheck_test(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    return Seq(["CMD-SHELL", value], pos, [pos, pos]) if isinstance(value, str) else value


def _build(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if isinstance(value, str):
        return _map_at([("context", value)], pos)
    if isinstance(value, Map):
        return _walk(value, path, _BUILD, ctx)
    if value is not None:
        ctx.fail("expected a build context path or a mapping", pos, path)
    return value


def _resource(value: Any, pos: Pos | None, path: Path, ctx: _Ctx) -> Any:
    if not isinstance(value, Map):
        return value
    out = _walk(value, path, _RESOURCE, ctx)
    ext = out.get("external")
    if not isinstance(ext, Map):
        return out
    items = [(k, True if k == "external" else v) for k, v in out.items()]  # legacy `external: {name: x}`
    if "name" in ext and "name" not in out:
        items.append(("name", ext["name"]))
    new = out.derive(items)
    if "name" in ext and "name" not in out and ext.where("name") is not None:
        new.key_pos["name"] = ext.where("name")  # type: ignore[assignment]
    return new


# ---- the tables -----------------------------------------------------------------------------------

_ENV = _kv_map(None)
_LABELS = _kv_map("")

_BUILD: Table = {
    "args": _ENV, "labels": _LABELS, "additional_contexts": _LABELS, "extra_hosts": _extra_hosts,
    "tags": _str_list, "platforms": _str_list, "cache_from": _str_list, "cache_to": _str_list,
}

_SERVICE: Table = {
    "build": _build,
    "command": _command, "entrypoint": _command,
    "environment": _ENV, "labels": _LABELS, "annotations": _LABELS, "sysctls": _LABELS,
    "env_file": _env_file, "extra_hosts": _extra_hosts,
    "dns": _str_list, "dns_search": _str_list, "dns_opt": _str_list, "tmpfs": _str_list,
    "depends_on": _names_to_map("service", lambda p: _map_at(
        [("condition", "service_started"), ("required", True)], p)),
    "networks": _names_to_map("network", lambda p: None),
    "extends": _extends,
    "ports": _seq_only("ports", _port), "expose": _expose, "volumes": _seq_only("volumes", _volume),
    "secrets": _seq_only("secrets", _file_ref), "configs": _seq_only("configs", _file_ref),
    "ulimits": _ulimits,
    "healthcheck": {"test": _healthcheck_test},
    "deploy": {"labels": _LABELS},
}

_RESOURCE: Table = {"labels": _LABELS, "driver_opts": _LABELS, "ipam": {"options": _LABELS}}

_TOP: Table = {
    "services": {"*": _nested(_SERVICE)},
    "networks": {"*": _resource}, "volumes": {"*": _resource},
    "secrets": {"*": _resource}, "configs": {"*": _resource},
}
