"""One parser per Dockerfile instruction: a logical line becomes a typed instruction.

``parse_instruction(line, escape)`` picks the parser by keyword (case-insensitive) and raises
``BadInstruction`` (message and hint) for anything Docker would refuse: an unknown instruction
(with the closest known one as a hint), ONBUILD (not supported), missing or extra arguments,
unknown or repeated options, malformed HEALTHCHECK durations. The forms are Docker's: JSON (exec)
form when the arguments are a JSON array of strings, shell form otherwise; ENV and LABEL as
``k=v ...`` or the legacy ``k v``; leading ``--flag=value`` options. Values are kept as written.
Pure; the caller places the errors at the file and line.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from typing import TypedDict

from stackd.build.flags import Flags, FlagSpec, go_duration, parse_flags
from stackd.build.instructions import (
    Add,
    Arg,
    ArgDef,
    Cmd,
    Command,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from stackd.build.lexer import LogicalLine, heredoc_marker, is_json_array
from stackd.build.words import split_words

_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")


class _Lines(TypedDict):
    line: int
    end_line: int


def _at(line: LogicalLine) -> _Lines:
    return {"line": line.line, "end_line": line.end_line}


class BadInstruction(Exception):
    """An instruction Docker would refuse: what is wrong, and a hint when one is obvious."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


_Bad = BadInstruction


def parse_instruction(line: LogicalLine, escape: str) -> Instruction:
    """The typed instruction on ``line``; ``BadInstruction`` when Docker would refuse it."""
    keyword = line.keyword.upper()
    if keyword == "ONBUILD":
        raise _Bad("ONBUILD is not supported",
                   "put the instructions into the Dockerfiles of the images built on this one")
    parse = _PARSERS.get(keyword)
    if parse is None:
        close = difflib.get_close_matches(keyword, [*_PARSERS, "ONBUILD"], n=1)
        raise _Bad(f"unknown instruction {line.keyword!r}", f"did you mean {close[0]}?" if close else "")
    return parse(line, escape)


def _flags(line: LogicalLine, escape: str, spec: dict[str, FlagSpec]) -> tuple[Flags, str]:
    try:
        return parse_flags(line.rest, escape, spec)
    except ValueError as exc:
        raise _Bad(f"{line.keyword.upper()}: {exc}") from None


def _json(rest: str) -> tuple[str, ...] | None:
    return tuple(json.loads(rest)) if is_json_array(rest) else None


def _command(line: LogicalLine, rest: str, *, allow_empty: bool = False) -> Command:
    args = _json(rest)
    if args is not None:
        if not args and not allow_empty:
            raise _Bad(f"{line.keyword.upper()} needs a command")
        return Command(args, False)
    if not rest.strip():
        raise _Bad(f"{line.keyword.upper()} needs a command")
    return Command((rest,), True)


def _plain(line: LogicalLine, escape: str) -> str:
    """The arguments of an instruction that takes no options."""
    return _flags(line, escape, {})[1] if line.rest.startswith("--") else line.rest.strip()


def _one(line: LogicalLine, escape: str) -> str:
    rest = _plain(line, escape)
    if not rest:
        raise _Bad(f"{line.keyword.upper()} requires exactly one argument")
    return rest


def _list(rest: str, escape: str) -> tuple[str, ...]:
    parsed = _json(rest)
    return parsed if parsed is not None else tuple(w.text for w in split_words(rest, escape))


def _from(line: LogicalLine, escape: str) -> From:
    flags, rest = _flags(line, escape, {"platform": FlagSpec()})
    args = rest.split()
    if len(args) not in (1, 3):
        raise _Bad("FROM requires either one or three arguments", "FROM [--platform=P] IMAGE [AS NAME]")
    name = None
    if len(args) == 3:
        if args[1].lower() != "as":
            raise _Bad(f"FROM: expected AS before the stage name, found {args[1]!r}")
        name = args[2].lower()
        if not _STAGE_NAME.fullmatch(name):
            raise _Bad(f"invalid name for build stage: {args[2]!r}",
                       "a stage name starts with a letter and holds letters, digits, '-', '_' and '.'")
    return From(image=args[0], name=name, platform=flags.text("platform"), **_at(line))


def _run(line: LogicalLine, escape: str) -> Run:
    flags, rest = _flags(line, escape, {"mount": FlagSpec(repeat=True), "network": FlagSpec(),
                                        "security": FlagSpec()})
    return Run(command=_command(line, rest), mounts=flags.many("mount"), network=flags.text("network"),
               security=flags.text("security"), heredocs=line.heredocs, **_at(line))


def _copy(line: LogicalLine, escape: str) -> Copy:
    add = line.keyword.upper() == "ADD"
    spec = {"chown": FlagSpec(), "chmod": FlagSpec(), "link": FlagSpec(boolean=True),
            "exclude": FlagSpec(repeat=True)}
    if add:
        spec |= {"checksum": FlagSpec(), "keep-git-dir": FlagSpec(boolean=True)}
    else:
        spec |= {"from": FlagSpec(), "parents": FlagSpec(boolean=True)}
    flags, rest = _flags(line, escape, spec)
    args = _list(rest, escape)
    if len(args) < 2:
        raise _Bad(f"{line.keyword.upper()} requires at least two arguments (sources and a destination)")
    docs = {h.name: h for h in line.heredocs}
    heredocs = []
    sources = []
    for src in args[:-1]:
        marker = heredoc_marker(src) if docs and _json(rest) is None else None
        if marker is not None and marker[0] in docs:
            heredocs.append(docs[marker[0]])
        else:
            sources.append(src)
    srcs, dest, docs_t = tuple(sources), args[-1], tuple(heredocs)
    chown, chmod, link = flags.text("chown"), flags.text("chmod"), flags.boolean("link")
    exclude = flags.many("exclude")
    if add:
        return Add(sources=srcs, dest=dest, chown=chown, chmod=chmod, link=link, exclude=exclude,
                   heredocs=docs_t, checksum=flags.text("checksum"),
                   keep_git_dir=flags.boolean("keep-git-dir"), **_at(line))
    return Copy(sources=srcs, dest=dest, chown=chown, chmod=chmod, link=link, exclude=exclude,
                heredocs=docs_t, from_=flags.text("from"), parents=flags.boolean("parents"),
                **_at(line))


def _pairs(line: LogicalLine, escape: str) -> tuple[tuple[str, str], ...]:
    keyword = line.keyword.upper()
    rest = _plain(line, escape)
    words = split_words(rest, escape)
    if not words:
        raise _Bad(f"{keyword} requires at least one argument", f"{keyword} name=value ...")
    if "=" not in words[0].text:  # the legacy form: KEY name value
        if len(words) < 2:
            raise _Bad(f"{keyword} {words[0].text} needs a value", f"{keyword} {words[0].text}=value")
        return ((words[0].text, rest[words[1].start:].strip()),)
    pairs = []
    for w in words:
        name, eq, value = w.text.partition("=")
        if not eq:
            raise _Bad(f"{keyword}: can't find = in {w.text!r}", "each item must be of the form name=value")
        if not name:
            raise _Bad(f"{keyword} names can not be blank")
        pairs.append((name, value))
    return tuple(pairs)


def _env(line: LogicalLine, escape: str) -> Env:
    return Env(pairs=_pairs(line, escape), **_at(line))


def _label(line: LogicalLine, escape: str) -> Label:
    return Label(pairs=_pairs(line, escape), **_at(line))


def _arg(line: LogicalLine, escape: str) -> Arg:
    words = split_words(_plain(line, escape), escape)
    if not words:
        raise _Bad("ARG requires at least one argument", "ARG name[=default]")
    defs = []
    for w in words:
        name, eq, value = w.text.partition("=")
        if not name:
            raise _Bad("ARG names can not be blank")
        defs.append(ArgDef(name, value if eq else None))
    return Arg(args=tuple(defs), **_at(line))


def _workdir(line: LogicalLine, escape: str) -> Workdir:
    return Workdir(path=_one(line, escape), **_at(line))


def _user(line: LogicalLine, escape: str) -> User:
    return User(user=_one(line, escape), **_at(line))


def _stopsignal(line: LogicalLine, escape: str) -> StopSignal:
    return StopSignal(signal=_one(line, escape), **_at(line))


def _maintainer(line: LogicalLine, escape: str) -> Maintainer:
    return Maintainer(name=_one(line, escape), **_at(line))


def _expose(line: LogicalLine, escape: str) -> Expose:
    ports = tuple(_plain(line, escape).split())
    if not ports:
        raise _Bad("EXPOSE requires at least one port", "EXPOSE 80/tcp 53/udp")
    return Expose(ports=ports, **_at(line))


def _volume(line: LogicalLine, escape: str) -> Volume:
    paths = _list(_plain(line, escape), escape)
    if not paths or any(not p.strip() for p in paths):
        raise _Bad("VOLUME needs at least one path, and no path can be empty")
    return Volume(paths=paths, **_at(line))


def _cmd(line: LogicalLine, escape: str) -> Cmd:
    return Cmd(command=_command(line, _plain(line, escape), allow_empty=True), **_at(line))


def _entrypoint(line: LogicalLine, escape: str) -> Entrypoint:
    return Entrypoint(command=_command(line, _plain(line, escape), allow_empty=True), **_at(line))


def _shell(line: LogicalLine, escape: str) -> Shell:
    args = _json(_plain(line, escape))
    if not args:
        raise _Bad("SHELL requires the arguments to be in JSON form", 'SHELL ["/bin/bash", "-c"]')
    return Shell(shell=args, **_at(line))


_DURATIONS = ("interval", "timeout", "start-period", "start-interval")


def _healthcheck(line: LogicalLine, escape: str) -> Healthcheck:
    flags, rest = _flags(line, escape, {**{d: FlagSpec() for d in _DURATIONS}, "retries": FlagSpec()})
    kind, args = [*rest.split(None, 1), "", ""][:2]
    if kind.upper() == "NONE":
        if args.strip():
            raise _Bad("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(test=("NONE",), **_at(line))
    if kind.upper() != "CMD":
        raise _Bad(f"unknown type {kind!r} in HEALTHCHECK",
                   "HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE")
    command = _command(line, args.strip())
    test = ("CMD", *command.args) if not command.shell_form else ("CMD-SHELL", command.args[0])
    t = {name: _duration(name, flags.text(name)) for name in _DURATIONS}
    retries = flags.text("retries") or "0"
    if not retries.isdigit():
        raise _Bad(f"HEALTHCHECK --retries must be a non-negative integer, not {retries!r}")
    return Healthcheck(test=test, interval=t["interval"], timeout=t["timeout"],
                       start_period=t["start-period"], start_interval=t["start-interval"],
                       retries=int(retries), **_at(line))


def _duration(name: str, value: str | None) -> int:
    try:
        ns = go_duration(value) if value else 0
    except ValueError as exc:
        raise _Bad(f"HEALTHCHECK --{name}: {exc}", "durations look like 30s, 1m30s or 500ms") from None
    if ns != 0 and ns < 1_000_000:
        raise _Bad(f"HEALTHCHECK --{name} cannot be less than 1ms (nor negative)")
    return ns


_PARSERS: dict[str, Callable[[LogicalLine, str], Instruction]] = {
    "FROM": _from, "RUN": _run, "COPY": _copy, "ADD": _copy, "ENV": _env, "ARG": _arg, "LABEL": _label,
    "WORKDIR": _workdir, "USER": _user, "EXPOSE": _expose, "VOLUME": _volume, "CMD": _cmd,
    "ENTRYPOINT": _entrypoint, "HEALTHCHECK": _healthcheck, "SHELL": _shell, "STOPSIGNAL": _stopsignal,
    "MAINTAINER": _maintainer,
}
