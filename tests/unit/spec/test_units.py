"""Durations and byte sizes: what parses, to what, and what is refused with a readable reason."""

from __future__ import annotations

import pytest

from stackd.spec.units import parse_bytes, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0),
    ("30s", 30.0),
    ("1m30s", 90.0),
    ("1h", 3600.0),
    ("1.5h", 5400.0),
    ("500ms", 0.5),
    (".5s", 0.5),
    ("2h45m10s", 9910.0),
    ("100us", 1e-4),
    ("100µs", 1e-4),
    ("10ns", 1e-8),
    ("+3s", 3.0),
])
def test_durations_follow_go_syntax(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "reason"), [
    ("10", "a unit is missing"),
    ("1d", "expected a duration"),
    ("", "empty"),
    ("-1s", "negative"),
    ("1h-1m", "expected a duration"),
    ("s", "expected a duration"),
    ("1 m", "expected a duration"),
])
def test_bad_durations_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(text)


def test_a_number_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(30)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "size"), [
    (0, 0),
    (1024, 1024),
    ("100", 100),
    ("100b", 100),
    ("64k", 64 << 10),
    ("64KB", 64 << 10),
    ("64kib", 64 << 10),
    ("512m", 512 << 20),
    ("512M", 512 << 20),
    ("1g", 1 << 30),
    ("1.5g", 3 << 29),
    ("2t", 2 << 40),
    ("1p", 1 << 50),
    (" 1g ", 1 << 30),
    (2048.0, 2048),
])
def test_sizes_use_binary_units(value: int | float | str, size: int) -> None:
    assert parse_bytes(value) == size


@pytest.mark.parametrize(("value", "reason"), [
    ("12x", "expected a size"),
    ("ib", "expected a size"),
    ("g", "expected a size"),
    ("-1", "negative"),
    (-5, "negative"),
    (1.5, "expected a size"),
    (True, "expected a size"),
    ("", "expected a size"),
])
def test_bad_sizes_say_why(value: int | float | str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_bytes(value)
