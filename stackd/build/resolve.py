"""Build arguments, ENV and stage references of a parsed Dockerfile, resolved as Docker does.

``resolve(dockerfile, build_args=..., target=...)`` returns a ``BuildPlan``: the stages the target
needs (its FROM chain and every stage a ``COPY --from`` or ``RUN --mount=from=`` reads), in
Dockerfile order, with every value substituted. The scoping rules are BuildKit's:

- ARGs before the first FROM (plus the automatic ``TARGETPLATFORM``/``BUILDARCH``/... ones) are
  seen only by FROM lines. A stage sees one only after declaring it again (``ARG NAME``).
- In a stage, ARG and ENV assignments take effect in instruction order (the later one wins);
  an ARG's value is the ``--build-arg`` value, else its default (substituted), else the global
  value of that name. ENV values carry over to stages built FROM this one; ARG values do not.
- Within one ENV or LABEL instruction every value is substituted with the values from before it.
- RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are not substituted (the shell does that at run
  time, with the build arguments in its environment: ``Step.build_args``).

Unused ``--build-arg`` names are reported (Docker warns), except the predefined proxy ones.
Pure: the environment of base images comes in as data (``image_env``).
"""

from __future__ import annotations

import platform as host
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackd.build.dockerfile import Dockerfile, Stage
from stackd.build.instructions import (
    Add,
    Arg,
    Copy,
    Env,
    Expander,
    Expose,
    Instruction,
    Run,
    StopSignal,
    User,
    Workdir,
)
from stackd.build.words import WordError, expand
from stackd.errors import Pos, Problem, SpecError

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_PORT = re.compile(r"([0-9]+)(?:-([0-9]+))?(?:/([a-zA-Z]+))?")
_CHMOD = re.compile(r"[0-7]{3,4}|[ugoa]*[-+=][rwxXst]*(?:,[ugoa]*[-+=][rwxXst]*)*")
_SIGNAL = re.compile(r"(?:SIG)?[A-Z][A-Z0-9]*(?:[+-][0-9]+)?|[0-9]+", re.IGNORECASE)


class _Bad(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Step:
    """One instruction of a stage with its values substituted; ``build_args`` are the ARGs in
    scope (RUN's extra environment), ``stages``/``images`` what else the step reads."""

    instruction: Instruction
    build_args: tuple[tuple[str, str], ...] = ()
    stages: tuple[int, ...] = ()
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedStage:
    """A stage ready to build: its base (an image, or an earlier stage) and its steps. ``env`` is
    the ENV in effect at its end, which a stage built FROM it starts with."""

    index: int
    name: str | None
    base_image: str | None
    base_stage: int | None
    platform: str | None
    steps: tuple[Step, ...]
    env: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BuildPlan:
    """The stages a target needs (Dockerfile order, the target last) and what was left unused."""

    file: str
    target: int
    stages: tuple[ResolvedStage, ...]
    unused_args: tuple[str, ...] = ()
    proxy_args: tuple[tuple[str, str], ...] = ()

    def stage(self, index: int) -> ResolvedStage:
        for stage in self.stages:
            if stage.index == index:
                return stage
        raise KeyError(f"stage {index} is not part of this build")


def default_platform() -> str:
    """This machine's platform in OCI words (``linux/amd64``)."""
    machine = host.machine().lower()
    return f"linux/{_ARCH.get(machine, machine)}"


def automatic_args(platform: str) -> dict[str, str]:
    """The ARGs Docker defines for every build (global scope): TARGET*/BUILD* platform parts."""
    parts = [*platform.split("/"), "", ""]
    out: dict[str, str] = {}
    for prefix in ("TARGET", "BUILD"):
        out |= {f"{prefix}PLATFORM": platform, f"{prefix}OS": parts[0], f"{prefix}ARCH": parts[1],
                f"{prefix}VARIANT": parts[2]}
    return out


def resolve(dockerfile: Dockerfile, *, build_args: Mapping[str, str] | None = None, target: str | None = None,
            platform: str | None = None, image_env: Mapping[str, Sequence[str]] | None = None) -> BuildPlan:
    """The build of ``target`` (default: the last stage); ``SpecError`` with every problem found in
    the stages it needs. ``image_env`` gives the ``Env`` of base images (``K=V`` strings)."""
    args = dict(build_args or {})
    problems: list[Problem] = []
    meta = automatic_args(platform or default_platform())
    declared: set[str] = set()
    for instr in dockerfile.global_args:
        for d in instr.args:
            declared.add(d.name)
            try:
                value = args[d.name] if d.name in args else (
                    None if d.default is None else expand(d.default, meta, dockerfile.escape))
            except WordError as exc:
                problems.append(_problem(dockerfile, instr, exc))
                continue
            if value is not None:
                meta[d.name] = value
    resolver = _Resolver(dockerfile, args, meta, image_env or {})
    for stage in dockerfile.stages:
        resolver.stage(stage)
    goal = dockerfile.target(target).index
    needed = resolver.needed(goal)
    for i in needed:
        problems.extend(resolver.problems[i])
        declared |= resolver.declared[i]
    if problems:
        raise SpecError(problems)
    unused = tuple(sorted(k for k in args if k not in declared and k not in PROXY_ARGS))
    proxies = tuple(sorted((k, v) for k, v in args.items() if k in PROXY_ARGS))
    return BuildPlan(dockerfile.file, goal, tuple(resolver.done[i] for i in sorted(needed)), unused, proxies)


def _problem(dockerfile: Dockerfile, instr: Instruction, error: Exception) -> Problem:
    hint = error.hint if isinstance(error, _Bad) else ""
    return Problem(f"{instr.keyword}: {error.args[0]}", Pos(dockerfile.file, instr.line, 1), "", hint)


class _Resolver:
    def __init__(self, dockerfile: Dockerfile, args: dict[str, str], meta: dict[str, str],
                 image_env: Mapping[str, Sequence[str]]) -> None:
        self.df = dockerfile
        self.args = args
        self.meta = meta
        self.image_env = image_env
        self.done: dict[int, ResolvedStage] = {}
        self.problems: dict[int, list[Problem]] = {}
        self.declared: dict[int, set[str]] = {}

    def word(self, env: Mapping[str, str]) -> Expander:
        snapshot = dict(env)
        escape = self.df.escape

        def substitute(text: str, /, *, quotes: bool = True) -> str:
            return expand(text, snapshot, escape, quotes=quotes)
        return substitute

    def ref(self, ref: str, current: int, *, by_index: bool) -> int | None:
        """The index of the stage ``ref`` names, ``None`` when it names an image."""
        if by_index and ref.isdigit():
            if int(ref) >= current:
                raise _Bad(f"stage {ref} is not an earlier stage (a stage can only use the ones before it)")
            return int(ref)
        for stage in self.df.stages:
            if stage.name is not None and stage.name == ref.lower():
                if stage.index >= current:
                    raise _Bad(f"stage {ref!r} is this stage or a later one (circular dependency)")
                return stage.index
        return None

    def stage(self, stage: Stage) -> None:
        problems: list[Problem] = []
        self.problems[stage.index] = problems
        self.declared[stage.index] = set()
        base_image, base_stage, plat, env = None, None, None, {}
        try:
            fr = stage.from_.expanded(self.word(self.meta))
            if not fr.image:
                raise _Bad(f"the base image name {stage.from_.image!r} is empty after substitution")
            plat = fr.platform
            base_stage = self.ref(fr.image, stage.index, by_index=False)
            if base_stage is None:
                base_image = fr.image
                env = dict(_env_pairs(self.image_env.get(fr.image, ())))
            else:
                env = dict(self.done[base_stage].env)
        except (WordError, _Bad) as exc:
            problems.append(_problem(self.df, stage.from_, exc))
        config_env = dict(env)
        scope: dict[str, str] = {}
        steps: list[Step] = []
        for instr in stage.instructions:
            try:
                steps.append(self.step(instr, stage, env, config_env, scope))
            except (WordError, _Bad) as exc:
                problems.append(_problem(self.df, instr, exc))
        self.done[stage.index] = ResolvedStage(stage.index, stage.name, base_image, base_stage, plat,
                                               tuple(steps), tuple(sorted(config_env.items())))

    def step(self, instr: Instruction, stage: Stage, env: dict[str, str], config_env: dict[str, str],
             scope: dict[str, str]) -> Step:
        if isinstance(instr, Arg):
            for d in instr.args:
                self.declared[stage.index].add(d.name)
                if d.name in self.args:
                    value: str | None = self.args[d.name]
                elif d.default is not None:
                    value = expand(d.default, env, self.df.escape)
                else:
                    value = self.meta.get(d.name)
                if value is not None:
                    env[d.name] = scope[d.name] = value
            return Step(instr, tuple(sorted(scope.items())))
        new = instr.expanded(self.word(env))
        if isinstance(new, Env):
            env.update(new.pairs)
            config_env.update(new.pairs)
        stages: list[int] = []
        images: list[str] = []
        for ref in _reads(new):
            found = self.ref(ref, stage.index, by_index=True)
            if found is None:
                images.append(ref)
            else:
                stages.append(found)
        return Step(_checked(new), tuple(sorted(scope.items())), tuple(stages), tuple(images))

    def needed(self, goal: int) -> set[int]:
        todo, seen = [goal], set()
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            stage = self.done[i]
            if stage.base_stage is not None:
                todo.append(stage.base_stage)
            for step in stage.steps:
                todo.extend(step.stages)
        return seen


def _env_pairs(entries: Sequence[str]) -> list[tuple[str, str]]:
    return [(k, v) for k, eq, v in (e.partition("=") for e in entries) if eq and k]


def _reads(instr: Instruction) -> list[str]:
    """The stages or images (as referenced) that an instruction reads besides the context."""
    if isinstance(instr, Copy) and not isinstance(instr, Add) and instr.from_:
        return [instr.from_]
    if isinstance(instr, Run):
        out = []
        for mount in instr.mounts:
            for item in mount.split(","):
                key, eq, value = item.partition("=")
                if eq and key.strip() == "from" and value.strip():
                    out.append(value.strip())
        return out
    return []


def _checked(instr: Instruction) -> Instruction:
    """Checks of values that only make sense once substituted; EXPOSE ports come out as
    ``N/proto`` (ranges spelled out)."""
    if isinstance(instr, Expose):
        ports: list[str] = []
        for spec in instr.ports:
            m = _PORT.fullmatch(spec)
            proto = (m.group(3) or "tcp").lower() if m else ""
            if m is None or proto not in ("tcp", "udp", "sctp"):
                raise _Bad(f"invalid port {spec!r}", "ports look like 80, 80/tcp, 53/udp or 8000-8010/tcp")
            first, last = int(m.group(1)), int(m.group(2) or m.group(1))
            if not 0 < first <= last <= 65535:
                raise _Bad(f"invalid port range {spec!r}", "ports are 1 to 65535, the first of a range first")
            ports.extend(f"{p}/{proto}" for p in range(first, last + 1))
        return Expose(ports=tuple(ports), line=instr.line, end_line=instr.end_line)
    if isinstance(instr, Copy):
        if instr.chmod is not None and not _CHMOD.fullmatch(instr.chmod):
            raise _Bad(f"invalid --chmod value {instr.chmod!r}", "an octal mode such as 0755, or u+x")
        if instr.chown is not None and (not instr.chown or instr.chown.startswith(":")
                                        or instr.chown.endswith(":")):
            raise _Bad(f"invalid --chown value {instr.chown!r}", "USER, USER:GROUP, UID or UID:GID")
    if isinstance(instr, StopSignal) and not _SIGNAL.fullmatch(instr.signal):
        raise _Bad(f"invalid signal {instr.signal!r}", "a name such as SIGTERM or a number")
    if isinstance(instr, Workdir | User) and not (instr.path if isinstance(instr, Workdir) else instr.user):
        raise _Bad("the value is empty after substitution")
    return instr
