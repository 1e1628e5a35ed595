"""How values are written into sqlite columns and read back: times as fixed-width UTC ISO 8601
text (so that text order is time order), JSON as compact text with sorted keys.

Pure functions; no sqlite here. Readers check what they read and raise ``StoreError`` for a
value this version of stackd did not write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from stackd.store.errors import StoreError
from stackd.store.records import JsonScalar


def time_text(value: datetime) -> str:
    """``value`` as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``; a naive datetime is refused (which
    zone it meant cannot be known)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware times, got naive {value!r}")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise StoreError(f"stored time {text!r} is not ISO 8601") from exc
    if value.tzinfo is None:
        raise StoreError(f"stored time {text!r} has no time zone")
    return value


def opt_time_text(value: datetime | None) -> str | None:
    return None if value is None else time_text(value)


def opt_parse_time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def dump_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _load(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"stored {what} is not JSON: {exc}") from exc


def load_strings(text: str, what: str) -> tuple[str, ...]:
    """A JSON list of strings."""
    value = _load(text, what)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StoreError(f"stored {what} is not a list of strings")
    return tuple(value)


def load_str_map(text: str, what: str) -> dict[str, str]:
    """A JSON object of strings."""
    value = _load(text, what)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise StoreError(f"stored {what} is not an object of strings")
    return {str(k): v for k, v in value.items()}


def load_object(text: str, what: str) -> dict[str, object]:
    value = _load(text, what)
    if not isinstance(value, dict):
        raise StoreError(f"stored {what} is not a JSON object")
    return {str(k): v for k, v in value.items()}


def load_scalar_map(text: str, what: str) -> dict[str, JsonScalar]:
    """A JSON object whose values are scalars (event data)."""
    value = load_object(text, what)
    out: dict[str, JsonScalar] = {}
    for k, v in value.items():
        if not (v is None or isinstance(v, str | int | float | bool)):
            raise StoreError(f"stored {what}: value of {k!r} is not a scalar")
        out[k] = v
    return out


def check_scalar_map(data: Mapping[str, JsonScalar], what: str) -> dict[str, JsonScalar]:
    """``data`` as a plain dict, or ``ValueError`` when a key is no string or a value no scalar
    (the type says so, but callers build data at run time)."""
    out: dict[str, JsonScalar] = {}
    for k, v in data.items():
        if not isinstance(k, str):
            raise ValueError(f"{what}: key {k!r} is not a string")
        if not (v is None or isinstance(v, str | int | float | bool)):
            raise ValueError(f"{what}: value of {k!r} is not a JSON scalar: {v!r}")
        out[k] = v
    return out


def check_strings(values: Sequence[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise ValueError(f"{what}: expected a sequence of strings, got one string {values!r}")
    return [str(v) for v in values]
