"""Find a project's stack files, overlay files and .env files, and decide its name.

Follows Compose's rules so that a Compose project works as it is:

1. The default env file is ``.env`` in the working directory (in the project directory when
   ``--project-directory`` is given); ``--env-file`` replaces it. Values from the caller's
   environment win over every file.
2. Stack files: ``-f``; else ``STACK_FILE``/``COMPOSE_FILE`` (``:``-separated; they may come from
   that ``.env``); else the first of ``stack.yaml``, ``compose.yaml``, ``compose.yml``,
   ``docker-compose.yml``, ``docker-compose.yaml`` in the working directory or its parents, with
   its ``*.override.*`` companion when no file was named.
3. The project directory is ``--project-directory`` or the directory of the first stack file;
   when it differs from the working directory its ``.env`` applies too, with lower precedence.
4. ``--env NAME`` (or ``STACK_ENV``) adds ``<stem>.NAME.yaml`` after the stack files and
   ``.env.NAME`` after ``.env``, in order.

This module reads the file system (existence, .env contents) but changes nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from stackd.errors import Problem, SpecError
from stackd.spec.dotenv import read_dotenv
from stackd.spec.options import ProjectOptions

DEFAULT_FILES = ("stack.yaml", "stack.yml", "compose.yaml", "compose.yml", "docker-compose.yml",
                 "docker-compose.yaml")
_OVERLAY = re.compile(r"^(?P<stem>stack|compose|docker-compose)\.(?P<env>[A-Za-z0-9][A-Za-z0-9_.-]*)\.ya?ml$")
_ENV_FILE = re.compile(r"^\.env\.(?P<env>[A-Za-z0-9][A-Za-z0-9_.-]*)$")
_NAME_OK = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Discovered:
    """The files of a project, the merged variables for interpolation, and its directories."""

    files: tuple[str, ...]
    """Absolute paths of the stack files then the overlay files, in merge order."""
    overlay_files: tuple[str, ...]
    project_dir: str
    working_dir: str
    environ: Mapping[str, str]
    """Caller's environment over env files (what ``${VAR}`` sees, before the project name)."""
    env_sources: tuple[str, ...]
    """The env files that were read, lowest precedence first."""
    profiles: tuple[str, ...]
    envs: tuple[str, ...]


def _abs(base: str, path: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _split_list(value: str, sep: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(sep) if p.strip())


def _first_var(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def _read_env_chain(paths: list[str], base: Mapping[str, str]) -> dict[str, str]:
    """Read env files in order; later files win over earlier ones, the caller's environment over all."""
    values: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        if name in base:
            return base[name]
        return values.get(name)

    for path in paths:
        for key, value in read_dotenv(path, lookup=lookup).items():
            if value is not None:
                values[key] = value
    return values


def _find_default(start: str) -> str | None:
    directory = start
    while True:
        for name in DEFAULT_FILES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _override_companion(path: str) -> str | None:
    directory, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    for candidate_ext in (ext, ".yaml", ".yml"):
        candidate = os.path.join(directory, f"{stem}.override{candidate_ext}")
        if os.path.isfile(candidate):
            return candidate
    return None


def available_envs(project_dir: str, stem: str | None = None) -> list[str]:
    """Environments a project offers: ``<stem>.NAME.yaml`` files and ``.env.NAME`` files."""
    found: set[str] = set()
    try:
        names = os.listdir(project_dir)
    except OSError:
        return []
    for name in names:
        m = _OVERLAY.match(name)
        if m and m.group("env") != "override" and (stem is None or m.group("stem") == stem):
            found.add(m.group("env"))
        m = _ENV_FILE.match(name)
        if m:
            found.add(m.group("env"))
    return sorted(found)


def _overlay_for(project_dir: str, stem: str, env: str) -> str | None:
    for candidate in (f"{stem}.{env}.yaml", f"{stem}.{env}.yml"):
        path = os.path.join(project_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for stem in ("docker-compose", "compose", "stack"):
        if name.startswith(stem + "."):
            return stem
    return os.path.splitext(name)[0]


def discover(options: ProjectOptions) -> Discovered:
    """Resolve files, directories and variables as described in the module docstring."""
    wd = os.path.abspath(options.cwd)
    caller = dict(options.environ)
    pd_opt = _abs(wd, options.project_directory) if options.project_directory else None

    if options.env_files:
        primary_env = [_abs(wd, p) for p in options.env_files]
        missing = [p for p in primary_env if not os.path.isfile(p)]
        if missing:
            raise SpecError([Problem(f"env file not found: {p}", hint="check --env-file") for p in missing])
    else:
        candidate = os.path.join(pd_opt or wd, ".env")
        primary_env = [candidate] if os.path.isfile(candidate) else []
    primary_values = _read_env_chain(primary_env, caller)
    env: dict[str, str] = {**primary_values, **caller}

    named_files = options.files
    explicit = bool(named_files)
    if not named_files:
        from_env = _first_var(env, "STACK_FILE", "COMPOSE_FILE")
        if from_env:
            sep = _first_var(env, "COMPOSE_PATH_SEPARATOR") or os.pathsep
            named_files = _split_list(from_env, sep)
            explicit = True
    if named_files:
        base = pd_opt if (pd_opt and not options.files) else wd
        files = [_abs(base, f) if f != "-" else f for f in named_files]
        missing = [f for f in files if f != "-" and not os.path.isfile(f)]
        if missing:
            raise SpecError([Problem(f"stack file not found: {f}") for f in missing])
    else:
        found = _find_default(pd_opt or wd)
        if found is None:
            names = ", ".join(DEFAULT_FILES)
            where = pd_opt or wd
            raise SpecError(Problem(f"no stack file found in {where} or its parents (looked for {names})",
                                    hint="name one with -f"))
        files = [found]
    if not explicit:
        companion = _override_companion(files[0])
        if companion:
            files.append(companion)

    project_dir = pd_opt or (os.path.dirname(files[0]) if files[0] != "-" else wd)
    env_sources = list(primary_env)
    if not options.env_files and not pd_opt and os.path.normpath(project_dir) != wd:
        project_env = os.path.join(project_dir, ".env")
        if os.path.isfile(project_env):
            project_values = _read_env_chain([project_env], {**primary_values, **caller})
            env = {**project_values, **primary_values, **caller}
            env_sources.insert(0, project_env)

    envs = options.envs or _split_list(_first_var(env, "STACK_ENV") or "", ",")
    overlay_files: list[str] = []
    if envs:
        stem = _stem(files[0])
        offered = available_envs(project_dir, stem)
        unknown = [e for e in envs if e not in offered]
        if unknown:
            listed = ", ".join(offered) if offered else "none"
            raise SpecError([Problem(
                f"unknown environment {e!r}: environments found in {project_dir}: {listed}",
                hint=f"add {stem}.{e}.yaml or .env.{e}") for e in unknown])
        env_overlays: list[str] = []
        for name in envs:
            overlay = _overlay_for(project_dir, stem, name)
            if overlay:
                overlay_files.append(overlay)
            dotenv = os.path.join(project_dir, f".env.{name}")
            if os.path.isfile(dotenv):
                env_overlays.append(dotenv)
        if env_overlays:
            file_values = {k: v for k, v in env.items() if k not in caller}
            overlay_values = _read_env_chain(env_overlays, {**file_values, **caller})
            env = {**file_values, **overlay_values, **caller}
            env_sources.extend(env_overlays)

    if options.profiles:
        profiles = options.profiles
    else:
        raw = _first_var(env, "STACK_PROFILES", "COMPOSE_PROFILES") or ""
        profiles = _split_list(raw, ",")
    return Discovered(files=tuple(files) + tuple(overlay_files), overlay_files=tuple(overlay_files),
                      project_dir=project_dir, working_dir=wd, environ=env,
                      env_sources=tuple(env_sources), profiles=profiles, envs=tuple(envs))


def normalize_project_name(raw: str) -> str:
    """A directory name made into a project name as Compose does (lowercase, [a-z0-9_-])."""
    name = re.sub(r"[^a-z0-9_-]", "", raw.lower())
    return name.lstrip("_-")


def check_project_name(name: str, source: str) -> str:
    if not _NAME_OK.match(name):
        raise SpecError(Problem(
            f"invalid project name {name!r} (from {source}): it must contain only lowercase letters, digits, "
            "dashes and underscores, and start with a letter or digit"))
    return name
