"""Resolve ``extends``: a service inherits the definition of another one (spec 05-services.md, extends).

For each service with ``extends: {service: NAME, file?: PATH}`` (canonical form), the base
service (from the same document, or from ``load(abs_path)``) is merged under the extending one with
the merge rules of ``merge`` (the extending service wins), transitively, and the ``extends`` key is
dropped. As the spec says, everything of the base is inherited, ``depends_on``, ``links``,
``volumes_from``, ``network_mode: service:x`` included, but the services, networks, volumes,
secrets and configs the base refers to are NOT imported: the extending file must declare them
(checked later by validation).

A base taken from another file is resolved in that file (its own ``extends`` first) and its
relative paths (``build.context``, ``build.additional_contexts``, ``env_file``, ``label_file``,
bind-mount sources, ``develop.watch`` paths) are re-based from that file's directory onto the
extending file's, as compose-go does. ``!override``/``!reset`` markers of the extending service
apply to the inherited values and stay in the result so that the merge across files applies them
again. Cycles (also across files) are errors naming the chain; an unknown service (with a "did you
mean") and a missing file are errors at the ``extends`` position. All problems of a document are
raised together as one ``SpecError``.

Reads files only through ``load``; builds new trees, never mutates its input.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from stackd.errors import Pos, Problem, SpecError
from stackd.spec.merge import merge, resolve_markers
from stackd.spec.tree import Map, Override, Reset, Seq

Load = Callable[[str], Map]


@dataclass
class _Doc:
    """One stack document taking part in a resolution: its services and what is resolved so far."""

    path: str
    dir: str
    services: Map
    done: dict[str, Any] = field(default_factory=dict)


@dataclass
class _State:
    """Shared by nested calls (``load`` may resolve another file while this one is in progress)."""

    load: Load
    root: str
    docs: dict[str, _Doc] = field(default_factory=dict)
    chain: list[tuple[str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


_STATE: ContextVar[_State | None] = ContextVar("stackd_extends_state", default=None)


def resolve_extends(tree: Map, *, file: str, working_dir: str, load: Load) -> Map:
    """``tree`` (one canonical document: ``file`` in ``working_dir``) with every ``extends`` resolved.

    ``load(path)`` returns the canonical (interpolated) tree of another stack file given by an
    absolute path; it raises ``FileNotFoundError`` (or a ``SpecError`` saying "no such file") for a
    missing one, which becomes a problem at the ``extends.file`` position.
    """
    services = tree.get("services") if isinstance(tree, Map) else None
    if not isinstance(services, Map) or not any(isinstance(s, Map) and "extends" in s
                                                for s in services.values()):
        return tree
    path = os.path.normpath(os.path.join(working_dir, file))
    outer = _STATE.get()
    state = outer or _State(load, os.path.dirname(path))
    token = _STATE.set(state) if outer is None else None
    doc = _Doc(path, os.path.normpath(working_dir), services)
    previous = state.docs.get(path)
    state.docs[path] = doc
    first_problem = len(state.problems)
    try:
        items = [(name, _resolve(state, doc, name)) for name in services]
    finally:
        if previous is None:
            state.docs.pop(path, None)
        else:
            state.docs[path] = previous
        if token is not None:
            _STATE.reset(token)
    problems = state.problems[first_problem:]
    del state.problems[first_problem:]
    if problems:
        raise SpecError(problems)
    return tree.derive((k, services.derive(items) if k == "services" else v) for k, v in tree.items())


def _resolve(state: _State, doc: _Doc, name: str) -> Any:
    """Service ``name`` of ``doc`` with its ``extends`` chain merged in (memoised per document)."""
    if name in doc.done:
        return doc.done[name]
    service = doc.services.get(name)
    raw = service.value if isinstance(service, Override) else service
    if not isinstance(raw, Map) or "extends" not in raw:
        return service
    own = raw.derive((k, v) for k, v in raw.items() if k != "extends")
    if (doc.path, name) in state.chain:
        _cycle(state, doc, name, raw)
        return own
    state.chain.append((doc.path, name))
    try:
        result = _extend(state, doc, name, raw, own)
    finally:
        state.chain.pop()
    if isinstance(service, Override):
        result = Override(result, service.pos)
    doc.done[name] = result
    return result


def _extend(state: _State, doc: _Doc, name: str, service: Map, own: Map) -> Any:
    ext = service["extends"]
    ext = ext.value if isinstance(ext, Override) else ext
    where = service.where("extends")
    if isinstance(ext, Reset) or ext is None:
        return own
    if isinstance(ext, str):
        ext = Map([("service", ext)], where)
    ref = ext.get("service") if isinstance(ext, Map) else None
    if not isinstance(ref, str):
        state.problems.append(Problem("expected a service name or a mapping with `service`", where,
                                      f"services.{name}.extends"))
        return own
    base_doc = doc
    file = ext.get("file")
    if isinstance(file, str):
        found = _document(state, os.path.normpath(os.path.join(doc.dir, file)), ext.where("file"),
                          f"services.{name}.extends.file", file)
        if found is None:
            return own
        base_doc = found
    if ref not in base_doc.services:
        close = difflib.get_close_matches(ref, [str(s) for s in base_doc.services], n=1)
        in_file = f" in {file}" if isinstance(file, str) else ""
        state.problems.append(Problem(
            f"service {name!r} extends {ref!r}, but there is no such service{in_file}",
            ext.where("service"), f"services.{name}.extends.service",
            f"did you mean {close[0]!r}?" if close else ""))
        return own
    # the base's own !reset/!override were meant for its file: applied, they are not inherited as tags
    base = resolve_markers(_resolve(state, base_doc, ref))
    if not isinstance(base, Map):  # a null base service adds nothing
        return own
    if base_doc.dir != doc.dir:
        base = _rebase(base, os.path.relpath(base_doc.dir, doc.dir))
    _check_healthcheck(state, name, base, own)
    try:
        return merge(base, own, keep_markers=True, at=("services", name))
    except SpecError as exc:
        state.problems.extend(exc.problems)
        return own


def _document(state: _State, path: str, pos: Pos | None, at: str, written: str) -> _Doc | None:
    """The document at ``path``: one in progress (no reload, so cycles are found) or a loaded one."""
    if path in state.docs:
        return state.docs[path]
    try:
        tree = state.load(path)
    except OSError:
        tree = None
    except SpecError as exc:
        if not all(p.pos is None and p.message.startswith("no such file") for p in exc.problems):
            state.problems.extend(exc.problems)
            return None
        tree = None
    if tree is None:
        state.problems.append(Problem(f"extends a file that does not exist: {written}", pos, at,
                                      f"looked for {path}"))
        return None
    services = tree.get("services") if isinstance(tree, Map) else None
    doc = _Doc(path, os.path.dirname(path), services if isinstance(services, Map) else Map())
    state.docs[path] = doc
    return doc


def _cycle(state: _State, doc: _Doc, name: str, service: Map) -> None:
    start = state.chain.index((doc.path, name))
    steps = [*state.chain[start:], (doc.path, name)]

    def show(path: str, svc: str) -> str:
        return svc if path == state.chain[0][0] else f"{svc} ({os.path.relpath(path, state.root)})"
    state.problems.append(Problem("extends cycle: " + " -> ".join(show(p, s) for p, s in steps),
                                  service.where("extends"), f"services.{name}.extends",
                                  "a service cannot extend itself, directly or through others"))


def _check_healthcheck(state: _State, name: str, base: Map, own: Map) -> None:
    """The spec forbids ``disable: true`` on top of an inherited healthcheck that is not disabled."""
    mine, theirs = own.get("healthcheck"), base.get("healthcheck")
    if isinstance(mine, Map) and mine.get("disable") is True and isinstance(theirs, Map) \
            and theirs.get("disable") is not True:
        state.problems.append(Problem(
            "healthcheck.disable: true cannot extend a service whose healthcheck is enabled",
            mine.where("disable"), f"services.{name}.healthcheck.disable",
            "write `healthcheck: !override {disable: true}` to replace the inherited healthcheck"))


# ---- re-basing relative paths ---------------------------------------------------------------------

_REMOTE = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")


def _moved(value: Any, rel: str, *, context: bool = False) -> Any:
    """A relative path seen from ``rel`` (a directory relative to the new base)."""
    if isinstance(value, Override):
        return Override(_moved(value.value, rel, context=context), value.pos)
    if not isinstance(value, str) or not value or value.startswith(("/", "~", "\\\\")):
        return value
    if len(value) > 1 and value[1] == ":" and value[0].isalpha():  # Windows drive
        return value
    if context and ("://" in value or value.startswith((*_REMOTE, "service:", "target:"))):
        return value
    return os.path.normpath(os.path.join(rel, value))


def _replace(node: Map, key: str, fn: Callable[[Any], Any]) -> Map:
    value = node.get(key)
    inner = value.value if isinstance(value, Override) else value
    if inner is None or isinstance(inner, Reset):
        return node
    new = fn(inner)
    if isinstance(value, Override):
        new = Override(new, value.pos)
    return node.derive((k, new if k == key else v) for k, v in node.items())


def _each(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(seq: Any) -> Any:
        return seq.derive((fn(v), p) for v, p in seq.with_pos()) if isinstance(seq, Seq) else fn(seq)
    return apply


def _rebase(service: Map, rel: str) -> Map:
    """``service`` with its relative paths prefixed by ``rel``."""
    def build(b: Any) -> Any:
        if not isinstance(b, Map):
            return b
        b = _replace(b, "context", lambda c: _moved(c, rel, context=True))
        return _replace(b, "additional_contexts", lambda m: m.derive(
            (k, _moved(v, rel, context=True)) for k, v in m.items()) if isinstance(m, Map) else m)

    def keyed(key: str, only: Callable[[Map], bool] = lambda m: True) -> Callable[[Any], Any]:
        def one(m: Any) -> Any:
            return _replace(m, key, lambda v: _moved(v, rel)) if isinstance(m, Map) and only(m) else m
        return one

    out = _replace(service, "build", build)
    out = _replace(out, "env_file", _each(keyed("path")))
    out = _replace(out, "label_file", _each(lambda v: _moved(v, rel)))
    out = _replace(out, "volumes", _each(keyed("source", lambda m: m.get("type") == "bind")))
    return _replace(out, "develop", lambda d: _replace(d, "watch", _each(keyed("path")))
                    if isinstance(d, Map) else d)
