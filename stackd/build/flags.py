"""Leading ``--name=value`` options of Dockerfile instructions, and Go-style durations.

``parse_flags`` takes the options off the front of an instruction's arguments and checks them
against what the instruction accepts: an unknown option, a value-less option that needs a value,
or an option given twice (unless it may repeat, like ``RUN --mount``) is a ``ValueError`` with a
message for the user. Values keep their quotes: instructions that substitute them do so later.
``go_duration`` reads ``1m30s``-style durations (as Go's ``time.ParseDuration``) in nanoseconds.
Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from stackd.build.words import split_words

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


@dataclass(frozen=True)
class FlagSpec:
    """What an option accepts: a value (default), no value (``boolean``), or several values."""

    boolean: bool = False
    repeat: bool = False


@dataclass(frozen=True)
class Flags:
    """The options given, by name (each with every value given, in order)."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        got = self.values.get(name)
        return got[-1] if got else None

    def many(self, name: str) -> tuple[str, ...]:
        return self.values.get(name, ())

    def boolean(self, name: str) -> bool:
        got = self.text(name)
        return got is not None and got.lower() != "false"


def parse_flags(rest: str, escape: str, spec: dict[str, FlagSpec]) -> tuple[Flags, str]:
    """The options at the front of ``rest`` and the arguments after them."""
    values: dict[str, list[str]] = {}
    tail = rest.strip()
    for word in split_words(rest, escape):
        if not word.text.startswith("--"):
            tail = rest[word.start:].strip()
            break
        tail = rest[word.end:].strip()
        if word.text == "--":
            break
        name, eq, value = word.text[2:].partition("=")
        if name not in spec:
            accepted = ", ".join(f"--{n}" for n in sorted(spec)) or "none"
            raise ValueError(f"unknown flag --{name} (accepted: {accepted})")
        kind = spec[name]
        if kind.boolean:
            if eq and value.lower() not in ("true", "false"):
                raise ValueError(f"--{name} takes true or false, not {value!r}")
            value = value if eq else "true"
        elif not eq:
            raise ValueError(f"--{name} needs a value (--{name}=VALUE)")
        if name in values and not kind.repeat:
            raise ValueError(f"--{name} is given more than once")
        values.setdefault(name, []).append(value)
    return Flags({k: tuple(v) for k, v in values.items()}), tail


def unquote(value: str) -> str:
    """``value`` without one pair of matching surrounding quotes."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def go_duration(text: str) -> int:
    """Nanoseconds in a Go duration (``90s``, ``1m30s``, ``1.5h``, ``0``); ``ValueError`` if malformed."""
    text = unquote(text.strip())
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = Fraction(0)
    pos = 0
    while pos < len(body):
        m = _PART.match(body, pos)
        if m is None or m.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        total += Fraction(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * int(total)
