"""Words for messages about the user's files: "did you mean" suggestions and values as the user wrote them.

Small pure helpers shared by the validation stages; they format text and decide nothing.
"""

from __future__ import annotations

import difflib
from typing import Any


def did_you_mean(word: str, choices: Any) -> str:
    """``did you mean `x`?`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


def show(value: Any) -> str:
    """A value as the user would recognise it in a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


__all__ = ["did_you_mean", "show"]
