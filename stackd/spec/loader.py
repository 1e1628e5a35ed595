"""Run the loading stages in order: files → merged, validated, frozen ``Stack``.

Stages (each a plain function over the tree, as in compose-go's loader):

1. ``discover`` finds the stack files, overlays and .env files and the variables they define;
2. the project name is decided (``-p`` > ``STACK_PROJECT_NAME``/``COMPOSE_PROJECT_NAME`` > the last
   ``name:`` of the files > the project directory's name) and offered to the files as
   ``${COMPOSE_PROJECT_NAME}``/``${STACK_PROJECT_NAME}``;
3. each file is parsed (``yamlsrc``), interpolated (``interpolate``), canonicalised (``canonical``),
   its ``include``s imported (``include``, each included project loaded by this same pipeline
   with its own directory and variables) and its ``extends`` resolved (``extends``);
4. the files are merged in order (``merge``), made unique, and ``!reset``/``!override`` resolved;
5. profiles pick the active services (``profiles``); paths become absolute (``paths``, unless the
   caller asked for them as written); env and label files fold into ``environment``/``labels``
   (``envresolve``);
6. ``validate.bind`` checks everything at once and binds the frozen models; secret and config
   contents are digested so that a changed file changes the services' config hashes.

Reads files; never changes anything on the host.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from stackd.errors import Problem, SpecError, Warning_
from stackd.spec.canonical import canonicalize
from stackd.spec.discover import Discovered, check_project_name, discover
from stackd.spec.envresolve import fold_env_files
from stackd.spec.extends import resolve_extends
from stackd.spec.include import Include, apply_includes
from stackd.spec.interpolate import interpolate_tree
from stackd.spec.merge import enforce_unicity, merge, resolve_markers
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions
from stackd.spec.paths import resolve_paths
from stackd.spec.profiles import apply_profiles
from stackd.spec.projectname import display_path, project_name_from, read_file
from stackd.spec.tree import Map
from stackd.spec.validate import bind


@dataclass(frozen=True)
class Loaded:
    """A loaded project: the frozen stack, what the user should be warned about, and where it came from."""

    stack: Stack
    warnings: tuple[Warning_, ...]
    discovered: Discovered
    tree: Map
    """The merged tree that was bound (for tools that need positions)."""


class _Project:
    """Loads the files of one project (the main one or an included one) with one set of variables."""

    def __init__(self, env: Mapping[str, str], display_base: str, chain: tuple[str, ...] = (),
                 raws: Mapping[str, Map] | None = None, report: _Report | None = None) -> None:
        self.env = env
        self.display_base = display_base
        self.chain = chain
        self.raws = dict(raws or {})
        self.report = report or _Report()
        self._cache: dict[tuple[str, str], Map] = {}

    def show(self, path: str) -> str:
        return display_path(path, self.display_base)

    def file(self, path: str, working_dir: str) -> Map:
        """One file interpolated, canonical, its includes imported and its extends resolved (markers kept)."""
        path = os.path.normpath(path)
        key = (path, working_dir)
        if key in self._cache:
            return self._cache[key]
        shown = self.show(path)
        tree = self.raws.get(path) or read_file(path, shown)
        tree = interpolate_tree(tree, self.env.get, file=shown, warn=self.report.warnings.append,
                                problems=self.report.problems)
        tree = canonicalize(tree, file=shown, problems=self.report.problems)
        tree = apply_includes(tree, file=path, project_dir=working_dir, env=self.env, chain=self.chain,
                              load_project=self._load_included, show=self.show)
        tree = resolve_extends(tree, file=path, working_dir=working_dir, load=self._extends_target)
        self._cache[key] = tree
        return tree

    def _extends_target(self, path: str) -> Map:
        return self.file(path, os.path.dirname(os.path.normpath(path)))

    def _load_included(self, inc: Include, env: Mapping[str, str], chain: tuple[str, ...]) -> Map:
        return _Project(env, self.display_base, chain, report=self.report).tree(inc.files, inc.project_dir)

    def tree(self, files: tuple[str, ...] | list[str], project_dir: str) -> Map:
        """The files merged in order, made unique, markers resolved."""
        prepared = [self.file(f, project_dir) for f in files]
        merged = reduce(merge, prepared[1:], prepared[0])
        return resolve_markers(enforce_unicity(merged))  # type: ignore[no-any-return]


def _digest(spec: Mapping[str, Any], env: Mapping[str, str], project_dir: str) -> str | None:
    """sha256 of a secret's or config's content (file, inline content or variable); None when external."""
    h = hashlib.sha256()
    if isinstance(spec.get("file"), str):
        try:
            with open(os.path.join(project_dir, spec["file"]), "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 16), b""):
                    h.update(chunk)
        except OSError:
            return None
    elif isinstance(spec.get("content"), str):
        h.update(spec["content"].encode())
    elif isinstance(spec.get("environment"), str):
        h.update(env.get(spec["environment"], "").encode())
    else:
        return None
    return h.hexdigest()


def _missing_files(tree: Map, project_dir: str) -> list[Problem]:
    problems: list[Problem] = []
    for section in ("secrets", "configs"):
        defs = tree.get(section)
        if not isinstance(defs, Map):
            continue
        for name, spec in defs.items():
            if not (isinstance(spec, Map) and isinstance(spec.get("file"), str)) or spec.get("external"):
                continue
            if not os.path.exists(os.path.join(project_dir, spec["file"])):
                problems.append(Problem(f"{section[:-1]} file not found: {spec['file']}", spec.where("file"),
                                        f"{section}.{name}.file"))
    return problems


def load(options: ProjectOptions, *, check_files: bool = True) -> Loaded:
    """Load a project as ``options`` say; raise one SpecError with every problem found."""
    d = discover(options)
    show: Callable[[str], str] = lambda p: display_path(p, d.working_dir)  # noqa: E731
    raws = {os.path.normpath(f): read_file(f, show(f)) for f in d.files}
    name = project_name_from(options, d, raws)
    env = {**d.environ, "COMPOSE_PROJECT_NAME": name, "STACK_PROJECT_NAME": name}
    report = _Report()
    tree = _Project(env, d.working_dir, raws=raws, report=report).tree(d.files, d.project_dir)
    tree = apply_profiles(tree, d.profiles, options.services)
    if options.resolve_paths:
        tree = resolve_paths(tree, d.project_dir, home=d.environ.get("HOME"))
    tree = fold_env_files(tree, env, d.project_dir, problems=report.problems)
    if check_files:
        report.problems.extend(_missing_files(tree, d.project_dir))
    tree = tree.derive((k, v) for k, v in tree.items() if k != "name")
    tree["name"] = name
    try:
        stack, warnings = bind(tree, project=name, consistency=options.consistency)
    except SpecError as exc:
        raise SpecError(report.problems + _not_reported(exc.problems, report.problems)) from None
    if report.problems:
        raise SpecError(report.problems)
    stack = _with_digests(stack, env, d.project_dir)
    return Loaded(stack=stack, warnings=tuple(report.warnings + warnings), discovered=d, tree=tree)


@dataclass
class _Report:
    """Problems and warnings of the stages before binding, kept so that one run reports them all."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)


def _not_reported(later: list[Problem], earlier: list[Problem]) -> list[Problem]:
    """Validation problems about values an earlier stage already reported (same path or below it)."""
    seen = [p.path for p in earlier if p.path]
    return [p for p in later
            if not any(p.path == s or p.path.startswith((s + ".", s + "[")) for s in seen)]


def _with_digests(stack: Stack, env: Mapping[str, str], project_dir: str) -> Stack:
    updates: dict[str, Any] = {}
    for section in ("secrets", "configs"):
        new = {}
        for name, spec in getattr(stack, section).items():
            digest = _digest(spec.model_dump(exclude_none=True), env, project_dir)
            update: dict[str, Any] = {"digest": digest} if digest else {}
            if spec.environment is not None:
                update["value"] = env.get(spec.environment, "")
            new[name] = spec.model_copy(update=update) if update else spec
        updates[section] = new
    return stack.model_copy(update=updates)


def load_project(options: ProjectOptions, loader: Callable[[ProjectOptions], Loaded] = load
                 ) -> tuple[str, Loaded | None]:
    """The project's name and what ``loader`` made of its files. A project named with ``-p``
    that has no stack file at all is no error: its name and no stack (enough for the verbs that
    act only on what exists, such as ``down -p NAME`` in any directory)."""
    try:
        loaded = loader(options)
    except SpecError as exc:
        no_file = all(p.message.startswith("no stack file found") for p in exc.problems)
        if not (no_file and options.project_name and not options.files):
            raise
        return check_project_name(options.project_name, "-p"), None
    return loaded.stack.name, loaded


def check_services(stack: Stack | None, services: Sequence[str]) -> None:
    """Refuse service names ``stack`` does not have (all of them at once, with the ones it has)."""
    if stack is None:
        return
    unknown = [s for s in services if s not in stack.services]
    if unknown:
        raise SpecError([Problem(f"no such service: {s}", hint=f"services: {', '.join(stack.services)}")
                         for s in unknown])


__all__ = ["Loaded", "check_services", "load", "load_project", "read_file"]
