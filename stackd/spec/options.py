"""What the user asked for when naming a project: files, project name, env files, overlays, profiles.

One frozen value built by the CLI from argv and the environment, and handed to the loader. It
carries the caller's environment explicitly (``environ``) so that loading is a function of its
inputs and tests can give every run a clean environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProjectOptions:
    files: tuple[str, ...] = ()
    """``-f`` files in order (empty: ``STACK_FILE``/``COMPOSE_FILE``, then discovery)."""
    project_name: str | None = None
    """``-p``; else ``STACK_PROJECT_NAME``/``COMPOSE_PROJECT_NAME``, then ``name:``, then the directory."""
    project_directory: str | None = None
    """``--project-directory``; else the directory of the first stack file."""
    env_files: tuple[str, ...] = ()
    """``--env-file`` in order; they replace the default ``.env``."""
    envs: tuple[str, ...] = ()
    """``--env NAME`` overlays in order (``stack.NAME.yaml`` + ``.env.NAME``); else ``STACK_ENV``."""
    profiles: tuple[str, ...] = ()
    """``--profile``; else ``STACK_PROFILES``/``COMPOSE_PROFILES``."""
    services: tuple[str, ...] = ()
    """Services named on the command line: they are enabled whatever their profiles."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """The caller's environment."""
    cwd: str = "."
    """The working directory the command runs in."""
    resolve_paths: bool = True
    """Make relative paths (build context, bind sources, env files) absolute."""
    consistency: bool = True
    """Check references between services and resources (off: only the shape of each key is checked)."""
