"""Merge canonical stack trees (later files win), de-duplicate, and resolve ``!reset``/``!override``.

How two values at one YAML path combine is data: ``RULES`` maps path patterns (``*`` = any key)
to a ``Rule``; paths not listed use the defaults of the Compose spec (13-merge.md): mappings merge
key by key (recursively), sequences append, scalars are replaced. compose-go's ``override/merge.go``
and ``override/uncity.go`` hold the same rules as code; here they are one table with a test each.

Conventions shared by every rule:

- ``!reset`` (a ``Reset`` marker) in the override removes the key (also when the base lacks it);
- ``!override`` (``Override``) replaces the base value whole, bypassing the rule;
- a ``null`` override keeps the base value (write ``!reset`` to remove), except under ``replace``;
- a list with a ``unique`` key is appended and then keeps one entry per key: a later entry takes
  the place of the first one with the same key (compose-go's ``EnforceUnicity``);
- positions travel with values: a merged key keeps the position where its winning value was
  written, list items keep their own.

Inputs must be canonical (``stackd.spec.canonical``) so that each key has one shape; merging a list
into a mapping (or the reverse) is a ``SpecError``. Pure: inputs are never mutated; unchanged
subtrees are shared, not copied. Reads nothing, writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from stackd.errors import Pos, Problem, SpecError
from stackd.spec.tree import Map, Override, Reset, Seq, dotted

KeyFn = Callable[[Any], Hashable]
How = Literal["deep", "replace", "by_key", "append", "extra_hosts", "by_subnet", "logging"]


@dataclass(frozen=True)
class Rule:
    """How values at one path merge.

    ``how``: ``deep`` (mappings key by key, recursively), ``replace`` (the override wins whole,
    even ``null``), ``by_key`` (a mapping of scalars: a later value, ``null`` included, replaces
    the earlier one), ``append`` (sequences; with ``unique``, one entry per key), ``extra_hosts``
    (host → union of addresses), ``by_subnet`` (IPAM configs merged by ``subnet``), ``logging``
    (merged when both use the same driver or one names none, else replaced).
    """

    how: How
    unique: KeyFn | None = None


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for any tree value (used to compare list entries)."""
    if isinstance(value, Override):
        return _freeze(value.value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Reset):
        return ("!reset",)
    return value  # type: ignore[no-any-return]


def same_value(value: Any) -> Hashable:
    return _freeze(value)


def port_key(value: Any) -> Hashable:
    """(host_ip, published, target, protocol), with Compose's defaults for missing parts."""
    if not isinstance(value, dict):
        return _freeze(value)
    target = value.get("target")
    target = int(target) if isinstance(target, str) and target.isdigit() else target
    published = value.get("published")
    return _freeze((value.get("host_ip") or "0.0.0.0", "" if published is None else str(published),
                    target, value.get("protocol") or "tcp"))


def target_key(value: Any) -> Hashable:
    return _freeze(value.get("target")) if isinstance(value, dict) else _freeze(value)


def mount_key(default_dir: str) -> KeyFn:
    """The target of a secret/config mount; a mount without target lands at ``default_dir/source``."""
    def key(value: Any) -> Hashable:
        if isinstance(value, dict):
            if value.get("target"):
                return _freeze(value["target"])
            return f"{default_dir}/{value.get('source')}"
        return f"{default_dir}/{value}" if isinstance(value, str) else _freeze(value)
    return key


def path_key(value: Any) -> Hashable:
    return _freeze(value.get("path")) if isinstance(value, dict) else _freeze(value)


def device_key(value: Any) -> Hashable:
    """The container path of a device: ``HOST[:CONTAINER[:PERMS]]`` or a mapping's ``target``."""
    if isinstance(value, str):
        parts = value.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return target_key(value)


_UNIQUE = Rule("append", same_value)
_BY_KEY = Rule("by_key")

RULES: dict[str, Rule] = {
    # shell commands and single limits: the later file wins whole (spec "Shell commands")
    "services.*.command": Rule("replace"),
    "services.*.entrypoint": Rule("replace"),
    "services.*.healthcheck.test": Rule("replace"),
    "services.*.ulimits.*": Rule("replace"),
    # mappings of strings: key by key, a later value (null included) wins
    **dict.fromkeys((
        "services.*.environment", "services.*.labels", "services.*.annotations", "services.*.sysctls",
        "services.*.build.args", "services.*.build.labels", "services.*.build.additional_contexts",
        "services.*.deploy.labels", "networks.*.labels", "networks.*.driver_opts",
        "networks.*.ipam.options", "volumes.*.labels", "volumes.*.driver_opts", "secrets.*.labels",
        "configs.*.labels"), _BY_KEY),
    # unique resources (spec "Unique resources"): merged by their key, the later entry wins
    "services.*.ports": Rule("append", port_key),
    "services.*.volumes": Rule("append", target_key),
    "services.*.secrets": Rule("append", mount_key("/run/secrets")),
    "services.*.configs": Rule("append", mount_key("")),
    "services.*.devices": Rule("append", device_key),
    "services.*.env_file": Rule("append", path_key),
    # lists appended without duplicates
    **dict.fromkeys((
        "services.*.dns", "services.*.dns_search", "services.*.dns_opt", "services.*.tmpfs",
        "services.*.profiles", "services.*.cap_add", "services.*.cap_drop", "services.*.links",
        "services.*.external_links", "services.*.security_opt", "services.*.device_cgroup_rules",
        "services.*.expose", "services.*.build.tags", "services.*.build.platforms",
        "services.*.build.platform", "services.*.networks.*.aliases",
        "services.*.networks.*.link_local_ips", "services.*.deploy.placement.constraints",
        "services.*.deploy.placement.preferences"), _UNIQUE),
    # special shapes
    "services.*.extra_hosts": Rule("extra_hosts"),
    "services.*.build.extra_hosts": Rule("extra_hosts"),
    "networks.*.ipam.config": Rule("by_subnet"),
    "services.*.logging": Rule("logging"),
    # mappings of mappings (the default, listed because short forms were turned into them)
    "services.*.depends_on": Rule("deep"),
    "services.*.networks": Rule("deep"),
}


class _Node:
    """One step of the compiled pattern trie."""

    __slots__ = ("children", "rule", "star")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.star: _Node | None = None
        self.rule: Rule | None = None


def _compile(rules: dict[str, Rule]) -> _Node:
    root = _Node()
    for pattern, rule in rules.items():
        node = root
        for part in pattern.split("."):
            if part == "*":
                node.star = node.star or _Node()
                node = node.star
            else:
                node = node.children.setdefault(part, _Node())
        node.rule = rule
    return root


_ROOT: tuple[_Node, ...] = (_compile(RULES),)
Nodes = tuple[_Node, ...]  # the trie nodes matching the current path


@functools.cache
def _next(nodes: Nodes) -> tuple[dict[str, Nodes], Nodes]:
    """For a set of trie nodes: the nodes after each key they name, and after any other key."""
    star = tuple(n.star for n in nodes if n.star is not None)
    names = {name for n in nodes for name in n.children}
    exact = {name: tuple(x for n in nodes for x in (n.children.get(name), n.star) if x is not None)
             for name in names}  # an exact key is tried before `*`
    return exact, star


def _step(nodes: Nodes, key: str) -> Nodes:
    if not nodes:
        return nodes
    exact, star = _next(nodes)
    return exact.get(key, star)


@functools.cache
def _rule(nodes: Nodes) -> Rule | None:
    for node in nodes:
        if node.rule is not None:
            return node.rule
    return None


def rule_for(path: Iterable[str]) -> Rule | None:
    """The rule that applies at a path such as ``("services", "web", "ports")`` (None = defaults)."""
    nodes = _ROOT
    for part in path:
        nodes = _step(nodes, part)
    return _rule(nodes)


# ---- merge ----------------------------------------------------------------------------------------

_ABSENT: Any = object()
_REMOVE: Any = object()
_DROP: Any = object()


def merge(base: Map, override: Map, *, keep_markers: bool = False, at: tuple[str, ...] = ()) -> Map:
    """``override`` merged onto ``base`` following ``RULES``; ``at`` is the path both trees sit at.

    With ``keep_markers`` (used by ``extends``) an applied ``!override`` stays wrapped and a
    ``!reset`` stays in place, so that a later merge across files applies them again.
    """
    merger = _Merger(keep_markers)
    nodes = _ROOT
    for part in at:
        nodes = _step(nodes, part)
    out = merger.value(base, override, nodes, at, override.pos)
    if merger.problems:
        raise SpecError(merger.problems)
    if isinstance(out, Override):
        out = out.value
    return out if isinstance(out, Map) else Map((), override.pos)


def _kind(value: Any) -> str:
    return "mapping" if isinstance(value, Map) else "list" if isinstance(value, Seq) else "value"


class _Merger:
    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.problems: list[Problem] = []

    def fresh(self, value: Any) -> Any:
        """A value taken from the override as it is."""
        return value if self.keep else resolve_markers(value)

    def value(self, b: Any, o: Any, nodes: Nodes, path: tuple[str, ...], pos: Pos | None) -> Any:
        if isinstance(o, Reset):
            return o if self.keep else _REMOVE
        if isinstance(o, Override):
            return Override(resolve_markers(o.value), o.pos) if self.keep else resolve_markers(o.value)
        if isinstance(b, Override):
            b = b.value
        if b is _ABSENT or isinstance(b, Reset):
            return self.fresh(o)
        rule = _rule(nodes)
        how = rule.how if rule is not None else "deep"
        if how == "replace":
            return self.fresh(o)
        if o is None:
            return b
        if b is None:
            return self.fresh(o)
        if isinstance(b, Map) and isinstance(o, Map):
            if how == "by_key":
                return self.mapping(b, o, (), path, deep=False)
            if how == "extra_hosts":
                return self.hosts(b, o)
            if how == "logging" and "driver" in b and "driver" in o and b["driver"] != o["driver"]:
                return self.fresh(o)
            return self.mapping(b, o, nodes, path, deep=True)
        if isinstance(b, Seq) and isinstance(o, Seq):
            if how == "by_subnet":
                return self.subnets(b, o, path)
            out = b.derive([*b.with_pos(), *self.items(o)])
            return dedupe(out, rule.unique) if rule is not None and rule.unique else out
        if isinstance(b, Map | Seq) or isinstance(o, Map | Seq):
            where = f" (at {b.pos})" if isinstance(b, Map | Seq) and b.pos else ""
            self.problems.append(Problem(f"cannot merge a {_kind(o)} into the {_kind(b)} of an earlier file"
                                         f"{where}", getattr(o, "pos", None) or pos, dotted(path),
                                         "write it with the same shape, or tag it !override"))
        return self.fresh(o)

    def items(self, seq: Seq) -> list[tuple[Any, Pos | None]]:
        if self.keep:
            return list(seq.with_pos())
        return [(resolve_markers(v), p) for v, p in seq.with_pos() if not isinstance(v, Reset)]

    def mapping(self, b: Map, o: Map, nodes: Nodes, path: tuple[str, ...], *, deep: bool) -> Map:
        out = Map(b.items(), b.pos, b.key_pos)
        for key, ov in o.items():
            kpos = o.key_pos.get(key)
            if deep:
                new = self.value(out.get(key, _ABSENT), ov, _step(nodes, key), (*path, key), kpos)
            elif isinstance(ov, Reset | Override):
                new = self.value(_ABSENT, ov, (), (*path, key), kpos)
            else:
                new = self.fresh(ov)
            if new is _REMOVE:
                out.pop(key, None)
                out.key_pos.pop(key, None)
                continue
            out[key] = new
            if kpos is not None:
                out.key_pos[key] = kpos
        return out

    def hosts(self, b: Map, o: Map) -> Map:
        out = self.mapping(b, Map(), (), (), deep=False)
        for host, ips in o.items():
            old = out.get(host)
            if isinstance(old, Seq) and isinstance(ips, Seq):
                ips = dedupe(old.derive([*old.with_pos(), *self.items(ips)]), same_value)  # noqa: PLW2901
            elif isinstance(ips, Reset):
                out.pop(host, None)
                continue
            out[host] = self.fresh(ips)
            if host in o.key_pos:
                out.key_pos[host] = o.key_pos[host]
        return out

    def subnets(self, b: Seq, o: Seq, path: tuple[str, ...]) -> Seq:
        out = list(b.with_pos())
        index = {v.get("subnet"): i for i, (v, _) in enumerate(out) if isinstance(v, Map) and v.get("subnet")}
        for v, p in self.items(o):
            subnet = v.get("subnet") if isinstance(v, Map) else None
            i = index.get(subnet) if subnet else None
            if i is not None and isinstance(out[i][0], Map):
                out[i] = (self.mapping(out[i][0], v, (), path, deep=True), p)
            else:
                if subnet:
                    index[subnet] = len(out)
                out.append((v, p))
        return b.derive(out)


def dedupe(seq: Seq, key: KeyFn) -> Seq:
    """One entry per key; a later entry takes the place of the first with the same key."""
    keys = [key(v) for v in seq]
    if len(set(keys)) == len(keys):
        return seq
    seen: dict[Hashable, int] = {}
    out: list[tuple[Any, Pos | None]] = []
    for k, item in zip(keys, seq.with_pos(), strict=False):
        if k in seen:
            out[seen[k]] = item
        else:
            seen[k] = len(out)
            out.append(item)
    return seq.derive(out)


# ---- unicity and markers --------------------------------------------------------------------------

def enforce_unicity(tree: Map) -> Map:
    """De-duplicate every list that has a ``unique`` key in ``RULES`` (within one merged tree)."""
    out = _unique(tree, _ROOT)
    assert isinstance(out, Map)
    return out


def _unique(node: Any, nodes: Nodes) -> Any:
    if isinstance(node, Override):
        inner = _unique(node.value, nodes)
        return node if inner is node.value else Override(inner, node.pos)
    if isinstance(node, Map):
        items = []
        changed = False
        for key, value in node.items():
            sub = _step(nodes, key)
            new = _unique(value, sub) if sub else value
            changed = changed or new is not value
            items.append((key, new))
        return node.derive(items) if changed else node
    if isinstance(node, Seq):
        rule = _rule(nodes)
        if rule is not None and rule.unique is not None:
            return dedupe(node, rule.unique)
    return node


_NODES = (Map, Seq, Override, Reset)


def resolve_markers(tree: Any) -> Any:
    """The tree without markers: a ``!reset`` key or item disappears, an ``!override`` is unwrapped."""
    if isinstance(tree, Override):
        return resolve_markers(tree.value)
    if isinstance(tree, Reset):
        return None
    if isinstance(tree, Map):
        changed: dict[str, Any] | None = None
        for key, value in tree.items():
            if isinstance(value, _NODES):
                new = resolve_markers(value)
                if new is not value or isinstance(value, Reset):
                    changed = changed or {}
                    changed[key] = new
        if changed is None:
            return tree
        return tree.derive((k, changed.get(k, v)) for k, v in tree.items() if not isinstance(v, Reset))
    if isinstance(tree, Seq):
        items: list[tuple[Any, Pos | None]] | None = None
        for i, value in enumerate(tree):
            if isinstance(value, _NODES):
                new = resolve_markers(value)
                if new is not value or isinstance(value, Reset):
                    items = items if items is not None else list(tree.with_pos())
                    items[i] = (_DROP if isinstance(value, Reset) else new, items[i][1])
        if items is None:
            return tree
        return tree.derive(item for item in items if item[0] is not _DROP)
    return tree
