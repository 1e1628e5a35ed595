"""A module shaped like the builder package (it has ``build_image``), for ``load_builder``'s tests."""

from __future__ import annotations

from typing import Any


def build_image(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("not called in these tests")
