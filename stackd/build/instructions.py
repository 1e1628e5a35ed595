"""The typed Dockerfile instructions: one frozen dataclass per instruction, with its line numbers.

Values that Docker substitutes (``$VAR``, quotes, escapes) are kept as written until
``expanded(word)`` returns a copy with each such value passed through ``word``; instructions
Docker does not substitute (RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK) return themselves.
ENV, LABEL and ARG values keep their quotes as written for the same reason.

Data only: parsing is in ``dockerfile``, scoping and substitution in ``resolve``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol, Self

from stackd.build.lexer import Heredoc


class Expander(Protocol):
    """Substitutes one value; ``quotes=False`` keeps quote characters (heredoc bodies)."""

    def __call__(self, text: str, /, *, quotes: bool = True) -> str: ...


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """What every instruction has: its first and last line in the Dockerfile (1-based)."""

    keyword: ClassVar[str] = ""
    line: int
    end_line: int

    def expanded(self, word: Expander) -> Self:
        """A copy with the values Docker substitutes passed through ``word``."""
        return self


@dataclass(frozen=True)
class Command:
    """A command line: exec form (``["a", "b"]``, run as is) or shell form (one string, run
    with the stage's SHELL)."""

    args: tuple[str, ...]
    shell_form: bool

    def argv(self, shell: tuple[str, ...] = ("/bin/sh", "-c")) -> tuple[str, ...]:
        """The argv to run: the exec form as is, the shell form appended to ``shell``."""
        return (*shell, *self.args) if self.shell_form else self.args


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    keyword: ClassVar[str] = "FROM"
    image: str
    name: str | None = None
    platform: str | None = None

    def expanded(self, word: Expander) -> Self:
        return replace(self, image=word(self.image),
                       platform=None if self.platform is None else word(self.platform))


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    keyword: ClassVar[str] = "RUN"
    command: Command
    mounts: tuple[str, ...] = ()
    network: str | None = None
    security: str | None = None
    heredocs: tuple[Heredoc, ...] = ()

    def expanded(self, word: Expander) -> Self:
        return replace(self, mounts=tuple(word(m) for m in self.mounts))

    def script(self) -> str:
        """The shell-form text to run. A command that is only a heredoc marker runs the heredoc's
        body (one that starts with ``#!`` is meant to be run as a file: the builder's business);
        otherwise the bodies follow the command line, as a shell expects them."""
        text = self.command.args[0] if self.command.shell_form else ""
        if not self.heredocs:
            return text
        if len(self.heredocs) == 1 and text.strip().lstrip("0123456789").startswith("<<") \
                and len(text.split()) == 1:
            return self.heredocs[0].content
        return text + "\n" + "".join(h.content + h.name + "\n" for h in self.heredocs)


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    """COPY; ``sources`` are paths in the context (or in ``from_``), ``heredocs`` inline files."""

    keyword: ClassVar[str] = "COPY"
    sources: tuple[str, ...]
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    def expanded(self, word: Expander) -> Self:
        opt: Callable[[str | None], str | None] = lambda v: None if v is None else word(v)  # noqa: E731
        docs = tuple(replace(h, content=word(h.content, quotes=False)) if h.expand else h
                     for h in self.heredocs)
        return replace(self, sources=tuple(word(s) for s in self.sources), dest=word(self.dest),
                       from_=opt(self.from_), chown=opt(self.chown), chmod=opt(self.chmod),
                       exclude=tuple(word(e) for e in self.exclude), heredocs=docs)


@dataclass(frozen=True, kw_only=True)
class Add(Copy):
    """ADD: COPY plus URLs and local tar archives (unpacked); no ``--from``."""

    keyword: ClassVar[str] = "ADD"
    checksum: str | None = None
    keep_git_dir: bool = False

    def expanded(self, word: Expander) -> Self:
        out = super().expanded(word)
        return replace(out, checksum=None if self.checksum is None else word(self.checksum))


@dataclass(frozen=True)
class ArgDef:
    """One name of an ARG, with its default as written (``None``: no default)."""

    name: str
    default: str | None = None


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgDef, ...]


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    keyword: ClassVar[str] = "ENV"
    pairs: tuple[tuple[str, str], ...]

    def expanded(self, word: Expander) -> Self:
        return replace(self, pairs=tuple((word(k), word(v)) for k, v in self.pairs))


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[tuple[str, str], ...]

    def expanded(self, word: Expander) -> Self:
        return replace(self, pairs=tuple((word(k), word(v)) for k, v in self.pairs))


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    keyword: ClassVar[str] = "WORKDIR"
    path: str

    def expanded(self, word: Expander) -> Self:
        return replace(self, path=word(self.path))


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    keyword: ClassVar[str] = "USER"
    user: str

    def expanded(self, word: Expander) -> Self:
        return replace(self, user=word(self.user))


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]

    def expanded(self, word: Expander) -> Self:
        return replace(self, ports=tuple(word(p) for p in self.ports))


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]

    def expanded(self, word: Expander) -> Self:
        return replace(self, paths=tuple(word(p) for p in self.paths))


@dataclass(frozen=True, kw_only=True)
class Cmd(Instruction):
    keyword: ClassVar[str] = "CMD"
    command: Command


@dataclass(frozen=True, kw_only=True)
class Entrypoint(Instruction):
    keyword: ClassVar[str] = "ENTRYPOINT"
    command: Command


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    """HEALTHCHECK as the image config stores it: ``test`` is ``("NONE",)``, ``("CMD", args...)``
    or ``("CMD-SHELL", command)``; durations in nanoseconds, 0 meaning "the default"."""

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str

    def expanded(self, word: Expander) -> Self:
        return replace(self, signal=word(self.signal))


@dataclass(frozen=True, kw_only=True)
class Maintainer(Instruction):
    """The deprecated MAINTAINER (the image's author)."""

    keyword: ClassVar[str] = "MAINTAINER"
    name: str

    def expanded(self, word: Expander) -> Self:
        return replace(self, name=word(self.name))
