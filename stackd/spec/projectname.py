"""The project's name, as ``load`` finds it, without loading the stack: ``-p``, then
``STACK_PROJECT_NAME``/``COMPOSE_PROJECT_NAME``, then the last ``name:`` of the stack files
(interpolated), then the project directory's name. ``project_name`` reads only the files'
YAML (no models, no validation) so that a command that needs only the name (``stack ps`` through
the daemon) stays quick; ``read_file`` and ``display_path`` are shared with the loader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from stackd.errors import Pos, Problem, SpecError
from stackd.spec import yamlsrc
from stackd.spec.discover import Discovered, check_project_name, discover, normalize_project_name
from stackd.spec.interpolate import interpolate_tree
from stackd.spec.options import ProjectOptions
from stackd.spec.tree import Map


def display_path(path: str, base: str) -> str:
    """``path`` as the user should see it in messages: relative to ``base`` when below it."""
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def read_file(path: str, shown: str) -> Map:
    """One stack file as a tree; an empty file or one that is not a mapping is an error."""
    if path == "-":
        raise SpecError(Problem("a stack cannot be read from standard input (`-f -`)",
                                hint="write it to a file and name that file"))
    tree = yamlsrc.read(path, display=shown)
    if tree is None:
        raise SpecError(Problem("empty compose file: it must define at least one of services, networks, "
                                "volumes, secrets, configs or include", Pos(shown, 1)))
    if not isinstance(tree, Map):
        raise SpecError(Problem("the top level of a stack file must be a mapping", Pos(shown, 1)))
    return tree


def project_name_from(options: ProjectOptions, d: Discovered, raws: Mapping[str, Map]) -> str:
    if options.project_name:
        return check_project_name(options.project_name, "-p")
    for var in ("STACK_PROJECT_NAME", "COMPOSE_PROJECT_NAME"):
        value = d.environ.get(var)
        if value:
            return check_project_name(value, var)
    name: Any = None
    source = ""
    for path, tree in raws.items():
        if tree.get("name") is not None:
            shown = display_path(path, d.working_dir)
            where = tree.where("name")
            one = Map([("name", tree["name"])], tree.pos, {"name": where} if where else {})
            value = interpolate_tree(one, d.environ.get, file=shown)["name"]
            if value:
                name, source = value, f"name: in {shown}"
    if isinstance(name, str) and name:
        return check_project_name(name, source)
    if name is not None:
        raise SpecError(Problem(f"invalid project name {name!r} ({source}): it must be a string"))
    dir_name = normalize_project_name(os.path.basename(os.path.abspath(d.project_dir)))
    if not dir_name:
        raise SpecError(Problem(f"cannot derive a project name from the directory {d.project_dir}",
                                hint="give one with -p or `name:`"))
    return dir_name


def project_name(options: ProjectOptions) -> str:
    """The name ``load(options)`` would give the project (errors as ``load`` reports them)."""
    if options.project_name:
        return check_project_name(options.project_name, "-p")
    d = discover(options)
    raws = {os.path.normpath(f): read_file(f, display_path(f, d.working_dir)) for f in d.files}
    return project_name_from(options, d, raws)
