"""Bind the merged tree to the frozen models, with every mistake reported at its line; and back to data.

``bind(tree, project=...)`` runs pydantic once over the whole stack, turns each validation error
into a ``Problem`` (file:line from the tree, dotted YAML path, a plain message and a "did you mean"
hint), adds the consistency checks (references between services, networks, volumes, secrets,
configs and groups; unique container names; host ports published twice; dependency cycles, found
with networkx) and raises ONE ``SpecError`` with all of them. Keys Compose accepts but
stackd ignores come back as warnings. ``to_compose_dict(stack)`` is the inverse, for ``stack
config``. Pure: no I/O, nothing printed.
"""

from __future__ import annotations

import difflib
import gc
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

import networkx as nx
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stackd.errors import Pos, Problem, SpecError, Warning_
from stackd.spec.models import Config, DependsOn, EnvFile, Port, Secret, Service, Stack
from stackd.spec.tree import Map, Seq, dotted, position_of
from stackd.spec.unsupported import unimplemented

Path = tuple[str | int, ...]

# fields of the models that are filled by stackd and never read from a file
_INTERNAL: dict[type[BaseModel], frozenset[str]] = {
    Stack: frozenset({"groups"}), Service: frozenset({"name"}), Secret: frozenset({"digest"}),
    Config: frozenset({"digest"}),
}
# fields written by ``to_compose_dict`` even when left at their default (Compose's ``config`` shows them)
_SHOWN: dict[type[BaseModel], frozenset[str]] = {
    DependsOn: frozenset({"condition", "required"}), Port: frozenset({"protocol", "mode"}),
    EnvFile: frozenset({"required"}),
}
_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "list_type": "a list",
    "none_required": "null",
}
_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


# ---------------------------------------------------------------------------------------- errors → problems


def did_you_mean(word: str, choices: Any) -> str:
    """``did you mean `x`?`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


def show(value: Any) -> str:
    """A value as the user would recognise it in a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _tree_path(tree: Any, loc: tuple[Any, ...]) -> tuple[Path, bool]:
    """Follow a pydantic ``loc`` through the tree: (YAML path, whether parts of loc were not in the tree)."""
    path: list[str | int] = []
    node = tree
    skipped = False
    for part in loc:
        fits = (isinstance(node, dict) and isinstance(part, str) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if not fits:
            skipped = True
            continue
        node = node[part]
        path.append(part)
    return tuple(path), skipped


def _strip(tp: Any) -> list[Any]:
    """The alternatives of an annotation (Annotated and Optional unwrapped)."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(tp):
            if arg is not type(None):
                out.extend(_strip(arg))
        return out
    return [tp]


def _step(tp: Any, part: Any) -> Any:
    for alt in _strip(tp):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            if part == alt.__name__:
                return alt
            if isinstance(part, str) and part in alt.model_fields:
                return alt.model_fields[part].annotation
        elif get_origin(alt) is dict and isinstance(part, str):
            return get_args(alt)[1]
        elif get_origin(alt) is list and isinstance(part, int):
            return get_args(alt)[0]
    return None


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a file may write in the mapping at pydantic ``loc`` (empty when unknown)."""
    tp: Any = Stack
    for part in loc:
        if isinstance(part, str) and part.endswith("]") and "[" in part:
            continue  # a union alternative's tag (``dict[str,X]``, ``function-after[...]``), not a key
        tp = _step(tp, part)
        if tp is None:
            return []
    keys: list[str] = []
    for alt in _strip(tp):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            keys.extend(k for k in alt.model_fields if k not in _INTERNAL.get(alt, ()))
            if alt is Stack:
                keys.append("x-stackd")
    return keys


def _describe(e: ErrorDetails, loc: tuple[Any, ...]) -> tuple[str | None, str, str]:
    """(what was expected, full message, hint) for one pydantic error."""
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    if kind in _EXPECTED:
        return _EXPECTED[kind], f"expected {_EXPECTED[kind]}, got {show(value)}", ""
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        shown = ", ".join(f"`{o}`" for o in options)
        hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
        return f"one of {shown}", f"expected one of {shown}, got {show(value)}", hint
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return None, f"unknown key `{key}`", did_you_mean(key, allowed_keys(loc[:-1]))
    if kind == "missing":
        return None, f"missing required key `{loc[-1]}`", ""
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return None, f"must be {words} {ctx.get(name)}, got {show(value)}", ""
    if kind == "string_pattern_mismatch":
        if loc == ("name",):
            return None, f"invalid project name {show(value)}", (
                "use lowercase letters, digits, dashes and underscores, starting with a letter or a digit")
        if loc and loc[-1] == "[key]":
            return None, f"invalid name {show(value)}", "use letters, digits, `.`, `_` and `-`"
        if loc and loc[-1] == "container_name":
            return None, f"invalid container name {show(value)}", (
                "use letters, digits, `.`, `_` and `-`, starting with a letter or a digit")
        return None, f"{show(value)} does not have the expected form", ""
    if kind in ("value_error", "assertion_error"):
        return None, str(ctx.get("error", e["msg"])), ""
    return None, e["msg"][:1].lower() + e["msg"][1:], ""


def problems_from(exc: ValidationError, tree: Any) -> list[Problem]:
    """Every error of one validation, as problems at the right line (union alternatives folded)."""
    entries: list[tuple[Path, bool, ErrorDetails, tuple[Any, ...]]] = []
    for e in exc.errors(include_url=False):
        loc = tuple(e["loc"])
        tree_loc = ("x-stackd", *loc) if loc[:1] == ("groups",) else loc
        path, skipped = _tree_path(tree, tree_loc)
        if e["type"] == "missing":
            path = (*path, str(loc[-1]))
        entries.append((path, skipped and (not loc or loc[-1] != "[key]"), e, loc))
    below = {p[:i] for p, _, _, _ in entries for i in range(len(p))}
    grouped: dict[Path, list[tuple[str | None, str, str]]] = {}
    for path, skipped, e, loc in entries:
        if skipped and path in below:  # a union alternative that did not fit; a deeper error explains
            continue
        grouped.setdefault(path, []).append(_describe(e, loc))
    out: list[Problem] = []
    for path, described in grouped.items():
        expected = [d[0] for d in described]
        _, message, hint = described[0]
        if len(described) > 1 and all(expected):  # alternatives of a union: "expected a or b, got c"
            got = message.rsplit(", got ", 1)[-1]
            message = f"expected {' or '.join(dict.fromkeys(x for x in expected if x))}, got {got}"
            hint = next((d[2] for d in described if d[2]), "")
        where = path[:-1] if path and described[0][1].startswith("missing required key") else path
        out.append(Problem(message, position_of(tree, where), dotted(path), hint))
    return out


# ---------------------------------------------------------------------------------------- consistency


_NO_MAP, _NO_SEQ = Map(), Seq()  # stand-ins for a missing or mistyped node; never changed


def _map(node: Any) -> Map:
    return node if isinstance(node, Map) else _NO_MAP


def _seq(node: Any) -> Seq:
    return node if isinstance(node, Seq) else _NO_SEQ


def _count(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return None


def _needs(name: str, svc: Map) -> list[tuple[str, Pos | None, Path, bool]]:
    """The services ``svc`` needs: (service, position, YAML path, required)."""
    out: list[tuple[str, Pos | None, Path, bool]] = []
    deps = _map(svc.get("depends_on"))
    for dep, spec in deps.items():
        required = not (isinstance(spec, dict) and spec.get("required") in (False, "false"))
        out.append((dep, deps.where(dep), ("services", name, "depends_on", dep), required))
    for key in ("network_mode", "ipc", "pid"):
        mode = svc.get(key)
        if isinstance(mode, str) and mode.startswith("service:"):
            out.append((mode.removeprefix("service:"), svc.where(key), ("services", name, key), True))
    for i, (ref, pos) in enumerate(_seq(svc.get("volumes_from")).with_pos()):
        if isinstance(ref, str) and not ref.startswith("container:"):
            out.append((ref.split(":", 1)[0], pos, ("services", name, "volumes_from", i), True))
    return out


def _cycles(services: Map, needs: dict[str, list[tuple[str, Pos | None, Path, bool]]]) -> list[Problem]:
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(sorted(needs))
    for name in sorted(needs):
        for dep, pos, path, _ in sorted(needs[name], key=lambda n: n[0]):
            if dep in services and not graph.has_edge(name, dep):
                graph.add_edge(name, dep, pos=pos, path=path)
    out: list[Problem] = []
    for component in nx.strongly_connected_components(graph):
        start = min(component)
        if len(component) == 1 and not graph.has_edge(start, start):
            continue
        cycle = [start, start] if graph.has_edge(start, start) else _shortest_loop(graph, start, component)
        edge = graph.edges[cycle[0], cycle[1]]
        text = "dependency cycle detected: " + " -> ".join(cycle)
        out.append(Problem(text, edge["pos"], dotted(edge["path"]),
                           "a service cannot wait for itself, directly or through others"))
    return out


def _shortest_loop(graph: nx.DiGraph[str], start: str, component: set[str]) -> list[str]:
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for succ in sorted(graph.successors(node)):
                if succ == start:
                    loop = [node]
                    while loop[-1] != start:
                        loop.append(parent[loop[-1]])
                    return [*reversed(loop), start]
                if succ in component and succ not in parent:
                    parent[succ] = node
                    nxt.append(succ)
        frontier = nxt
    raise AssertionError("a strongly connected component always has a loop")  # pragma: no cover


def _overlap(a: str, b: str) -> bool:
    if a == b or not a or not b:
        return True
    family_a, family_b = ":" in a, ":" in b
    return family_a == family_b and (a in ("0.0.0.0", "::", "[::]") or b in ("0.0.0.0", "::", "[::]"))


def _ports(name: str, svc: Map, taken: dict[tuple[str, int], list[tuple[str, str]]]) -> list[Problem]:
    """Host ports published twice (Compose loads such a file and fails when the second one starts)."""
    out: list[Problem] = []
    ports = _seq(svc.get("ports"))
    for i, (port, pos) in enumerate(ports.with_pos()):
        if not isinstance(port, Map):
            continue
        number = _count(port.get("published"))
        if not number:
            continue
        proto, ip = str(port.get("protocol") or "tcp"), str(port.get("host_ip") or "")
        holders = taken.setdefault((proto, number), [])
        other = next((s for s, o in holders if s != name and _overlap(ip, o)), None)
        if other is not None:
            out.append(Problem(f"port {number}/{proto} is already published by service \"{other}\"",
                               port.where("published") or pos, dotted(("services", name, "ports", i)),
                               "publish another host port or bind another host_ip"))
        holders.append((name, ip))
    return out


def _references(name: str, svc: Map, top: dict[str, Map]) -> list[Problem]:
    """Networks, volumes, secrets and configs a service uses must be declared at the top level."""
    out: list[Problem] = []
    base: Path = ("services", name)
    networks = top["networks"]
    given = svc.get("networks")
    attached = given.items() if isinstance(given, Map) else _seq(given).with_pos()
    if svc.get("network_mode") is not None and given:
        out.append(Problem("`network_mode` and `networks` cannot be used together", svc.where("networks"),
                           dotted((*base, "networks")), "remove one of them"))
    for i, (net, _) in enumerate(attached):
        if isinstance(net, str) and net not in networks and net != "default":
            key: str | int = net if isinstance(given, Map) else i
            where = given.where(net) if isinstance(given, Map) else _seq(given).where(i)
            out.append(Problem(f'service "{name}" refers to undefined network "{net}"', where,
                               dotted((*base, "networks", key)),
                               did_you_mean(net, networks) or "declare it under the top-level `networks`"))
    volumes = top["volumes"]
    for i, (vol, pos) in enumerate(_seq(svc.get("volumes")).with_pos()):
        source = vol.get("source") if isinstance(vol, Map) and vol.get("type") == "volume" else None
        if isinstance(source, str) and source and source not in volumes:
            out.append(Problem(f'service "{name}" refers to undefined volume "{source}"', pos,
                               dotted((*base, "volumes", i)),
                               did_you_mean(source, volumes) or "declare it under the top-level `volumes`"))
    uses = [("secret", (*base, "secrets"), svc.get("secrets")),
            ("config", (*base, "configs"), svc.get("configs")),
            ("secret", (*base, "build", "secrets"), _map(svc.get("build")).get("secrets"))]
    for kind, path, refs in uses:
        if not refs:
            continue
        declared = top[f"{kind}s"]
        for i, (ref, pos) in enumerate(_seq(refs).with_pos()):
            source = ref.get("source") if isinstance(ref, Map) else ref
            if isinstance(source, str) and source not in declared:
                hint = did_you_mean(source, declared) or f"declare it under the top-level `{kind}s`"
                out.append(Problem(f'service "{name}" refers to undefined {kind} "{source}"', pos,
                                   dotted((*path, i)), hint))
    return out


def _group(name: str, svc: Map, groups: set[str]) -> tuple[list[Problem], list[Warning_]]:
    parent = svc.get("cgroup_parent")
    if not isinstance(parent, str):
        return [], []
    path = dotted(("services", name, "cgroup_parent"))
    where = svc.where("cgroup_parent")
    if parent.startswith("/"):
        return [], [Warning_(f"cgroup path {parent!r} ignored: stackd places containers only in its own "
                             "groups (x-stackd.groups); this service runs in group `default`", where, path)]
    if "/" in parent or parent not in groups:
        hint = did_you_mean(parent, groups) or (
            "declare it under `x-stackd.groups`, or give an absolute cgroup path")
        return [Problem(f'service "{name}" uses undefined group "{parent}"', where, path, hint)], []
    return [], []


def cross_checks(tree: Map, *, references: bool = True) -> tuple[list[Problem], list[Warning_]]:
    """Checks across the tree (defensive: runs even where the types are wrong).

    ``references=False`` skips the checks that names used are declared (and that a service has an
    image or a build), as ``config --no-consistency`` does for partial files; cycles, container
    names, replicas and host port clashes are always checked.
    """
    problems: list[Problem] = []
    warnings: list[Warning_] = []
    services = _map(tree.get("services"))
    groups = set(_map(_map(tree.get("x-stackd")).get("groups"))) | {"default"}
    needs: dict[str, list[tuple[str, Pos | None, Path, bool]]] = {}
    names: dict[str, str] = {}
    taken: dict[tuple[str, int], list[tuple[str, str]]] = {}
    top = {section: _map(tree.get(section)) for section in ("networks", "volumes", "secrets", "configs")}
    for name, svc in services.items():
        if not isinstance(svc, Map):
            continue
        needs[name] = _needs(name, svc)
        for dep, pos, path, required in needs[name] if references else ():
            if required and dep not in services:
                problems.append(Problem(f'service "{name}" depends on undefined service "{dep}"', pos,
                                        dotted(path), did_you_mean(dep, services)))
        if references and not (svc.get("image") or svc.get("build") or svc.get("provider")):
            problems.append(Problem(f'service "{name}" has neither an image nor a build context specified',
                                    services.where(name), f"services.{name}", "add `image:` or `build:`"))
        found, warned = _group(name, svc, groups)
        warnings.extend(warned)
        if references:
            problems.extend(_references(name, svc, top))
            problems.extend(found)
        scale, replicas = _count(svc.get("scale")), _count(_map(svc.get("deploy")).get("replicas"))
        if scale is not None and replicas is not None and scale != replicas:
            problems.append(Problem(f"`scale` ({scale}) and `deploy.replicas` ({replicas}) disagree",
                                    svc.where("scale"), f"services.{name}.scale", "set only one of them"))
        container = svc.get("container_name")
        if isinstance(container, str):
            where, at = svc.where("container_name"), f"services.{name}.container_name"
            if container in names:
                problems.append(Problem(f'container name "{container}" is already used by service '
                                        f'"{names[container]}"', where, at, "container names must be unique"))
            names.setdefault(container, name)
            count = scale if scale is not None else replicas if replicas is not None else 1
            if count > 1:
                problems.append(Problem(f"`container_name` cannot be used with {count} replicas", where, at,
                                        "container names must be unique: remove it or run one replica"))
        problems.extend(_ports(name, svc, taken))
    problems.extend(_cycles(services, needs))
    return problems, warnings


# ---------------------------------------------------------------------------------------- bind


def _pre_checks(tree: Map) -> tuple[list[Problem], list[Warning_]]:
    """Keys that pydantic cannot judge: stackd's own fields written in a file, ``x-stackd``, ``version``."""
    problems: list[Problem] = []
    warnings: list[Warning_] = []
    if "version" in tree:
        warnings.append(Warning_("`version` is obsolete and ignored; remove it", tree.where("version"),
                                 "version"))
    if "include" in tree:
        warnings.append(Warning_("`include` was not resolved while loading; ignored", tree.where("include"),
                                 "include"))
    if "groups" in tree:
        problems.append(Problem("unknown key `groups`", tree.where("groups"), "groups",
                                "stackd groups are declared under `x-stackd.groups`"))
    ext = tree.get("x-stackd")
    if "x-stackd" in tree and not isinstance(ext, dict):
        problems.append(Problem(f"expected a mapping, got {show(ext)}", tree.where("x-stackd"), "x-stackd"))
    elif isinstance(ext, Map):
        for key in ext:
            if key != "groups":
                problems.append(Problem(f"unknown key `{key}`", ext.where(key), f"x-stackd.{key}",
                                        did_you_mean(key, ["groups"]) or "x-stackd has only `groups`"))
    for section, field in (("services", "name"), ("secrets", "digest"), ("configs", "digest")):
        entries = tree.get(section)
        if isinstance(entries, Map):
            for name, spec in entries.items():
                if isinstance(spec, Map) and field in spec:
                    problems.append(Problem(f"unknown key `{field}`", spec.where(field),
                                            dotted((section, name, field))))
    return problems, warnings


def bind(tree: Map, *, project: str, consistency: bool = True) -> tuple[Stack, list[Warning_]]:
    """Validate the merged, canonical tree and bind it; raise one SpecError with every problem found.

    ``project`` becomes ``Stack.name``. ``consistency=False`` skips the checks that every name used is
    declared (see ``cross_checks``). Returns the stack and the warnings, in file order.
    """
    if not isinstance(tree, Map):
        raise SpecError(Problem(f"the top level of a stack must be a mapping, got {show(tree)}"))
    problems, warnings = _pre_checks(tree)
    data = {k: v for k, v in tree.items() if k != "groups"}
    data["name"] = project
    stack: Stack | None = None
    collecting = gc.isenabled()
    gc.disable()  # binding allocates ~100 acyclic objects per service: cycle collection only slows it down
    try:
        stack = Stack.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, tree))
    finally:
        if collecting:
            gc.enable()
    found, cgroup_warnings = cross_checks(tree, references=consistency)
    problems.extend(found)
    if problems:
        raise SpecError(problems)
    assert stack is not None
    found_warnings = [*warnings, *cgroup_warnings, *unimplemented(tree)]
    return stack, sorted(found_warnings, key=lambda w: (w.pos is None, w.pos or Pos("", 0)))


# ---------------------------------------------------------------------------------------- back to data


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _dump_model(value)
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


def _defaults(cls: type[BaseModel]) -> dict[str, Any]:
    if cls not in _DEFAULTS:
        fields = cls.model_fields.items()
        _DEFAULTS[cls] = {name: f.get_default(call_default_factory=True) for name, f in fields}
    return _DEFAULTS[cls]


def _dump_model(model: BaseModel) -> dict[str, Any]:
    """Fields set, shown or not at their default; never None, never an empty default collection."""
    out: dict[str, Any] = {}
    cls = type(model)
    skip = _INTERNAL.get(cls, frozenset())
    fields_set = model.model_fields_set | _SHOWN.get(cls, frozenset())
    for name, default in _defaults(cls).items():
        value = getattr(model, name)
        if value is None or name in skip:
            continue
        if value == default and (isinstance(value, dict | list) or name not in fields_set):
            continue
        out[name] = _dump(value)
    return out


def to_compose_dict(stack: Stack) -> dict[str, Any]:
    """The stack as plain data in Compose's long form and key order (for ``stack config``)."""
    body = _dump_model(stack)
    out: dict[str, Any] = {"name": stack.name}
    for key in ("services", "networks", "volumes", "secrets", "configs", "models"):
        if key in body:
            out[key] = body[key]
    groups = {name: _dump_model(g) for name, g in stack.groups.items()
              if not (name == "default" and g == type(g)())}
    if groups:
        out["x-stackd"] = {"groups": groups}
    return out


__all__ = ["allowed_keys", "bind", "cross_checks", "did_you_mean", "problems_from", "show", "to_compose_dict"]
