"""Parse the unit-carrying values of a stack file: durations (``1m30s``) and byte sizes (``512m``).

The models keep these values as the user wrote them; these functions check them (through pydantic
``AfterValidator``s, so that a bad value is a validation error at its own line) and give the number
the rest of stackd works with. Durations follow Go's ``time.ParseDuration`` (what Compose uses):
a sequence of decimal numbers, each with a unit ``ns``, ``us``/``µs``, ``ms``, ``s``, ``m``, ``h``.
Byte sizes follow Docker's memory units: a number with an optional ``b``, ``k``, ``m``, ``g``,
``t`` or ``p`` suffix (binary multiples, ``kb``/``kib`` spellings accepted, case-insensitive).

Pure functions over values; raises ``ValueError`` with a text meant for the user and nothing else.
"""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}
_DURATION_EXAMPLE = "a duration such as `30s`, `1m30s` or `500ms`"

_BYTES = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:([kmgtp])(?:ib|b)?|b)?$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_BYTES_EXAMPLE = "a size such as `512m`, `1g`, `64k` or a number of bytes"


def parse_duration(s: str) -> float:
    """``"1m30s"`` → ``90.0`` seconds. A bare ``"0"`` is zero; negative durations are refused."""
    if not isinstance(s, str) or isinstance(s, bool):
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got {s!r}")
    text = s.strip()
    if text in ("0", "+0"):
        return 0.0
    if text.startswith("+"):
        text = text[1:]
    if text.startswith("-"):
        raise ValueError(f"a duration cannot be negative, got {s!r}")
    if not text:
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got an empty string")
    total = 0.0
    at = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != at:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        at = match.end()
    if at != len(text):
        hint = " (a unit is missing)" if re.fullmatch(r"[0-9.]+", text) else ""
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got {s!r}{hint}")
    return total


def parse_bytes(v: int | float | str) -> int:
    """``"512m"`` → ``536870912``; an int is a number of bytes. Negative sizes are refused."""
    if isinstance(v, bool):
        raise ValueError(f"expected {_BYTES_EXAMPLE}, got {str(v).lower()}")
    if isinstance(v, int):
        if v < 0:
            raise ValueError(f"a size cannot be negative, got {v}")
        return v
    if isinstance(v, float):
        if not math.isfinite(v) or v < 0 or v != int(v):
            raise ValueError(f"expected {_BYTES_EXAMPLE}, got {v}")
        return int(v)
    if not isinstance(v, str):
        raise ValueError(f"expected {_BYTES_EXAMPLE}, got {v!r}")
    text = v.strip()
    if text.startswith("-"):
        raise ValueError(f"a size cannot be negative, got {v!r}")
    match = _BYTES.match(text)
    if not match:
        raise ValueError(f"expected {_BYTES_EXAMPLE}, got {v!r}")
    number, unit = match.groups()
    return int(float(number) * _BYTE_UNITS[(unit or "").lower()])


__all__ = ["parse_bytes", "parse_duration"]
