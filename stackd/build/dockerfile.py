"""Parse a Dockerfile into typed instructions grouped into build stages.

``parse_dockerfile(text, file)`` returns a ``Dockerfile``: the ARGs before the first FROM (usable
only in FROM lines) and the stages, each with its FROM and instructions, by index and by
``AS`` name. Every mistake found is reported at once in one ``SpecError`` whose problems name the
file and line: those of each instruction (``parsers``), instructions before the first FROM
other than ARG, duplicate stage names, a file without FROM. Values are kept as written;
``resolve`` substitutes them. Pure apart from ``read_dockerfile``, which reads the file it is
given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stackd.build.instructions import Arg, From, Instruction
from stackd.build.lexer import split_lines
from stackd.build.parsers import BadInstruction, parse_instruction
from stackd.errors import Pos, Problem, SpecError


@dataclass(frozen=True)
class Stage:
    """One build stage: its position, its ``AS`` name (lowercase) and its instructions."""

    index: int
    name: str | None
    from_: From
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: the global ARGs (before the first FROM) and the stages."""

    file: str
    escape: str
    directives: dict[str, str]
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]

    def stage(self, ref: str) -> Stage | None:
        """The stage called ``ref`` (case-insensitive), or at index ``ref``; ``None`` if none."""
        if ref.isdigit():
            i = int(ref)
            return self.stages[i] if i < len(self.stages) else None
        for stage in self.stages:
            if stage.name is not None and stage.name == ref.lower():
                return stage
        return None

    def target(self, name: str | None = None) -> Stage:
        """The stage ``--target name`` builds (the last stage when no name is given)."""
        if name is None or name == "":
            return self.stages[-1]
        for stage in self.stages:
            if stage.name == name.lower():
                return stage
        names = [s.name for s in self.stages if s.name]
        hint = f"stages with names: {', '.join(names)}" if names else "no stage has an AS name"
        raise SpecError(Problem(f"target stage {name!r} could not be found", Pos(self.file, 1, 1), "", hint))


def read_dockerfile(path: Path) -> Dockerfile:
    """Read and parse the Dockerfile at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem(f"cannot read the Dockerfile: {exc}", Pos(str(path), 1, 1))) from exc
    return parse_dockerfile(text, str(path))


def parse_dockerfile(text: str, file: str = "Dockerfile") -> Dockerfile:
    """Parse ``text`` (the content of ``file``); ``SpecError`` with every problem found."""
    lines, problems = split_lines(text, file)
    parsed: list[Instruction] = []
    for line in lines.lines:
        try:
            parsed.append(parse_instruction(line, lines.escape))
        except BadInstruction as bad:
            problems.append(Problem(bad.message, Pos(file, line.line, 1), "", bad.hint))
    global_args, stages = _stages(parsed, file, problems)
    if not parsed and not problems:
        problems.append(Problem("the Dockerfile has no instructions", Pos(file, 1, 1), "",
                                "it needs at least a FROM line"))
    elif not stages and not problems:
        problems.append(Problem("the Dockerfile has no FROM instruction", Pos(file, 1, 1)))
    if problems:
        raise SpecError(problems)
    return Dockerfile(file, lines.escape, lines.directives, tuple(global_args), tuple(stages))


def _stages(parsed: list[Instruction], file: str,
            problems: list[Problem]) -> tuple[list[Arg], list[Stage]]:
    global_args: list[Arg] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    named: dict[str, int] = {}
    base: From | None = None

    def close() -> None:
        if base is not None:
            stages.append(Stage(len(stages), base.name, base, tuple(current)))

    for instr in parsed:
        if isinstance(instr, From):
            close()
            base, current = instr, []
            if instr.name is not None:
                if instr.name in named:
                    problems.append(Problem(
                        f"duplicate stage name {instr.name!r}", Pos(file, instr.line, 1), "",
                        f"it is already the name of the stage on line {named[instr.name]}"))
                named.setdefault(instr.name, instr.line)
        elif base is None:
            if isinstance(instr, Arg):
                global_args.append(instr)
            else:
                problems.append(Problem(f"{instr.keyword} before the first FROM", Pos(file, instr.line, 1),
                                        "", "only ARG may come before FROM"))
        else:
            current.append(instr)
    close()
    return global_args, stages
