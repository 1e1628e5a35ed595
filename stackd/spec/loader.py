"""Run the loading stages in order: files → merged, validated, frozen ``Stack``.

Stages (each a plain function over the tree, as in compose-go's loader):

1. ``discover`` finds the stack files, overlays and .env files and the variables they define;
2. each file is parsed (``yamlsrc``), its project name read, then interpolated (``interpolate``),
   canonicalised (``canonical``) and its ``extends`` resolved (``extends``);
3. the files are merged in order (``merge``), made unique, and ``!reset``/``!override`` resolved;
4. ``include`` pulls in other projects' resources;
5. profiles pick the active services; paths become absolute; env files fold into ``environment``;
6. ``validate.bind`` checks everything at once and binds the frozen models; secret and config
   contents are digested so that a changed file changes the services' config hashes.

Reads files; never changes anything on the host.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

from stackd.errors import Pos, Problem, SpecError, Warning_
from stackd.spec import yamlsrc
from stackd.spec.canonical import canonicalize
from stackd.spec.discover import Discovered, check_project_name, discover, normalize_project_name
from stackd.spec.dotenv import read_dotenv
from stackd.spec.envresolve import fold_env_files
from stackd.spec.extends import resolve_extends
from stackd.spec.interpolate import interpolate_tree
from stackd.spec.merge import enforce_unicity, merge, resolve_markers
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions
from stackd.spec.paths import resolve_paths
from stackd.spec.profiles import apply_profiles
from stackd.spec.tree import Map, Seq
from stackd.spec.validate import bind

_RESOURCES = ("services", "networks", "volumes", "secrets", "configs")


@dataclass(frozen=True)
class Loaded:
    """A loaded project: the frozen stack, what the user should be warned about, and where it came from."""

    stack: Stack
    warnings: tuple[Warning_, ...]
    discovered: Discovered
    tree: Map


def _display(path: str, base: str) -> str:
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


class _FileLoader:
    """Reads, interpolates and canonicalises files of one project, each once."""

    def __init__(self, env: Mapping[str, str], display_base: str) -> None:
        self.env = env
        self.display_base = display_base
        self._cache: dict[str, Map] = {}

    def lookup(self, name: str) -> str | None:
        return self.env.get(name)

    def raw(self, path: str) -> Map:
        shown = _display(path, self.display_base)
        tree = yamlsrc.read(path, display=shown)
        if tree is None:
            raise SpecError(Problem("empty compose file: it must define at least one of services, networks, "
                                    "volumes, secrets, configs or include", Pos(shown, 1)))
        if not isinstance(tree, Map):
            raise SpecError(Problem("the top level of a stack file must be a mapping", Pos(shown, 1)))
        return tree

    def prepared(self, path: str, raw: Map | None = None) -> Map:
        """Interpolated and canonical, extends resolved."""
        path = os.path.normpath(path)
        if path in self._cache:
            return self._cache[path]
        tree = raw if raw is not None else self.raw(path)
        shown = _display(path, self.display_base)
        tree = interpolate_tree(tree, self.lookup, file=shown)
        tree = canonicalize(tree, file=shown)
        tree = resolve_extends(tree, file=path, working_dir=os.path.dirname(path), load=self.prepared)
        self._cache[path] = tree
        return tree


def _project_name(options: ProjectOptions, d: Discovered, raws: list[tuple[str, Map]]) -> str:
    if options.project_name:
        return check_project_name(options.project_name, "-p")
    for var in ("STACK_PROJECT_NAME", "COMPOSE_PROJECT_NAME"):
        value = d.environ.get(var)
        if value:
            return check_project_name(value, var)
    name: Any = None
    source = ""
    for path, tree in raws:
        if "name" in tree and tree["name"] is not None:
            value = interpolate_tree(Map([("name", tree["name"])], tree.pos, {"name": tree.key_pos["name"]}),
                                     d.environ.get, file=path)["name"]
            name, source = value, f"name: in {_display(path, d.project_dir)}"
    if isinstance(name, str) and name:
        return check_project_name(name, source)
    dir_name = normalize_project_name(os.path.basename(os.path.abspath(d.project_dir)))
    if not dir_name:
        raise SpecError(Problem(f"cannot derive a project name from the directory {d.project_dir}",
                                hint="give one with -p or `name:`"))
    return dir_name


def _merge_files(files: list[Map]) -> Map:
    merged = reduce(merge, files[1:], files[0])
    return resolve_markers(enforce_unicity(merged))  # type: ignore[no-any-return]


def _include(tree: Map, env: Mapping[str, str], project_dir: str, display_base: str,
             chain: tuple[str, ...]) -> Map:
    entries = tree.get("include")
    if not entries:
        return tree
    out = tree.derive((k, v) for k, v in tree.items() if k != "include")
    problems: list[Problem] = []
    entries_seq = entries if isinstance(entries, Seq) else Seq([entries], tree.where("include"))
    for entry, pos in entries_seq.with_pos():
        spec = entry if isinstance(entry, dict) else {"path": entry}
        paths = spec.get("path")
        paths_list = [paths] if isinstance(paths, str) else list(paths or [])
        if not paths_list:
            problems.append(Problem("include entry needs a path", pos, "include"))
            continue
        files = [os.path.normpath(os.path.join(project_dir, str(p))) for p in paths_list]
        for f in files:
            if f in chain:
                cyc = " -> ".join(_display(c, display_base) for c in (*chain, f))
                raise SpecError(Problem(f"include cycle detected: {cyc}", pos, "include"))
            if not os.path.isfile(f):
                problems.append(Problem(f"included file not found: {f}", pos, "include"))
        if problems:
            continue
        sub_dir = os.path.normpath(os.path.join(project_dir, spec["project_directory"])) \
            if spec.get("project_directory") else os.path.dirname(files[0])
        env_files = spec.get("env_file")
        env_list = [env_files] if isinstance(env_files, str) else list(env_files or [])
        env_paths = [os.path.normpath(os.path.join(project_dir, str(p))) for p in env_list] \
            or [p for p in [os.path.join(sub_dir, ".env")] if os.path.isfile(p)]
        sub_env: dict[str, str] = {}
        for p in env_paths:
            for k, v in read_dotenv(p, lookup=lambda n: env.get(n, sub_env.get(n))).items():
                if v is not None:
                    sub_env[k] = v
        sub_env.update(env)
        sub = _load_tree(files, sub_dir, sub_env, display_base, (*chain, *files))
        sub = resolve_paths(sub, sub_dir)
        for section in _RESOURCES:
            incoming = sub.get(section)
            if not isinstance(incoming, Map):
                continue
            current = out.get(section)
            target = current.derive(current.items()) if isinstance(current, Map) else Map((), pos)
            for name, value in incoming.items():
                if name in target:
                    problems.append(Problem(f"{section[:-1]} {name!r} from included file conflicts with one "
                                            "defined in the project (imported resource conflicts)",
                                            target.where(name), f"{section}.{name}"))
                    continue
                target[name] = value
                target.key_pos[name] = incoming.where(name) or pos  # type: ignore[assignment]
            out[section] = target
            out.key_pos.setdefault(section, pos)  # type: ignore[arg-type]
    if problems:
        raise SpecError(problems)
    return out


def _load_tree(files: list[str], project_dir: str, env: Mapping[str, str], display_base: str,
               chain: tuple[str, ...] = ()) -> Map:
    loader = _FileLoader(env, display_base)
    prepared = [loader.prepared(f) for f in files]
    merged = _merge_files(prepared)
    return _include(merged, env, project_dir, display_base, chain or tuple(files))


def _digest(section: str, name: str, spec: Any, env: Mapping[str, str]) -> str | None:
    if not isinstance(spec, Mapping):
        return None
    h = hashlib.sha256()
    if isinstance(spec.get("file"), str):
        try:
            with open(spec["file"], "rb") as fh:
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


def _check_files_exist(tree: Map) -> list[Problem]:
    problems: list[Problem] = []
    for section in ("secrets", "configs"):
        defs = tree.get(section)
        if not isinstance(defs, Map):
            continue
        for name, spec in defs.items():
            if isinstance(spec, Map) and isinstance(spec.get("file"), str) and not os.path.exists(spec["file"]):
                problems.append(Problem(f"{section[:-1]} file not found: {spec['file']}", spec.where("file"),
                                        f"{section}.{name}.file"))
    return problems


def load(options: ProjectOptions, *, check_files: bool = True) -> Loaded:
    """Load a project as ``options`` say; raise one SpecError with every problem found."""
    d = discover(options)
    display_base = d.working_dir
    base_loader = _FileLoader(d.environ, display_base)
    raws = [(f, base_loader.raw(f)) for f in d.files]
    name = _project_name(options, d, raws)
    env = {**d.environ, "COMPOSE_PROJECT_NAME": name, "STACK_PROJECT_NAME": name}
    loader = _FileLoader(env, display_base)
    prepared = [loader.prepared(f, raw) for f, raw in raws]
    merged = _merge_files(prepared)
    merged = _include(merged, env, d.project_dir, display_base, tuple(d.files))
    merged = apply_profiles(merged, d.profiles, options.services)
    if options.resolve_paths:
        merged = resolve_paths(merged, d.project_dir)
    merged = fold_env_files(merged, env, d.project_dir)
    if check_files:
        missing = _check_files_exist(merged)
        if missing:
            raise SpecError(missing)
    merged = merged.derive((k, v) for k, v in merged.items() if k != "name")
    merged["name"] = name
    stack, warnings = bind(merged, project=name)
    stack = _with_digests(stack, env)
    return Loaded(stack=stack, warnings=tuple(warnings), discovered=d, tree=merged)


def _with_digests(stack: Stack, env: Mapping[str, str]) -> Stack:
    updates: dict[str, Any] = {}
    for section in ("secrets", "configs"):
        defs = getattr(stack, section)
        new = {}
        for name, spec in defs.items():
            raw = spec.model_dump(exclude_none=True)
            digest = _digest(section, name, raw, env)
            new[name] = spec.model_copy(update={"digest": digest}) if digest else spec
        updates[section] = new
    return stack.model_copy(update=updates)


__all__ = ["Loaded", "load"]
