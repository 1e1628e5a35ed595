"""What the builder refuses before it starts: Dockerfile features it does not carry out (yet),
reported all at once as a ``SpecError`` naming each line, so that a build never fails half-way
for a reason visible in the file.

Refused: ADD of URLs and git repositories (builds read only local files), ``ADD --checksum`` and
``--keep-git-dir`` (they belong to those), ``RUN --mount`` (cache, bind, secret and ssh mounts),
``RUN --security=insecure``, an unknown ``RUN --network`` mode, several COPY sources into a
destination without a trailing ``/``, and ``FROM --platform`` for another platform than this
machine's. Pure.
"""

from __future__ import annotations

import re

from stackd.build.dockerfile import Dockerfile
from stackd.build.instructions import Add, Copy, Run
from stackd.build.resolve import BuildPlan, default_platform
from stackd.drivers.builder.copyplan import dest_is_directory
from stackd.errors import Pos, Problem, SpecError

_REMOTE = re.compile(r"(?:https?|git|ssh)://|git@", re.IGNORECASE)
NETWORKS = ("default", "host", "none")


def check_supported(plan: BuildPlan, dockerfile: Dockerfile, platform: str | None = None) -> None:
    """``SpecError`` listing every instruction of ``plan`` (made from ``dockerfile``) this
    builder cannot carry out."""
    here = platform or default_platform()
    problems: list[Problem] = []

    def bad(line: int, message: str, hint: str = "") -> None:
        problems.append(Problem(message, Pos(plan.file, line, 1), "", hint))

    for stage in plan.stages:
        if stage.platform and stage.platform.split("/")[:2] != here.split("/")[:2]:
            bad(dockerfile.stages[stage.index].from_.line,
                f"stage {stage.name or stage.index} is for platform {stage.platform}, this machine is {here}",
                "stackd builds for this machine's platform only")
        for step in stage.steps:
            instr = step.instruction
            line = instr.line
            if isinstance(instr, Add):
                remote = [s for s in instr.sources if _REMOTE.match(s)]
                if remote:
                    bad(line, f"ADD of a URL or git repository is not supported: {remote[0]}",
                        "put the file into the build context, or fetch it with curl or wget in a RUN step")
                elif instr.checksum is not None or instr.keep_git_dir:
                    bad(line, "ADD --checksum and --keep-git-dir apply only to URLs and git repositories")
            if isinstance(instr, Copy):
                named = len(instr.sources) + len(instr.heredocs)
                if named > 1 and not dest_is_directory(instr.dest):
                    bad(line, f"{instr.keyword} with more than one source needs a directory as destination, "
                              f"ending with '/': {instr.dest!r}", f"write {instr.dest.rstrip('/')}/")
            if isinstance(instr, Run):
                if instr.mounts:
                    bad(line, "RUN --mount is not supported yet",
                        "COPY what the step needs first, or install it in the step itself")
                if instr.security not in (None, "sandbox"):
                    bad(line, f"RUN --security={instr.security} is not supported")
                if instr.network is not None and instr.network not in NETWORKS:
                    bad(line, f"unknown RUN --network mode {instr.network!r}", "default, host or none")
    if problems:
        raise SpecError(problems)
