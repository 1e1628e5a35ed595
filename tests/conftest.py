"""Shared test fixtures: where the Compose conformance corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def conformance_dir() -> Path:
    """The Compose conformance corpus: ``$STACKD_CONFORMANCE_DIR`` or ``../shared/compose-conformance``.

    It is not optional: CI has it beside the clone, so a missing corpus fails loudly.
    """
    env = os.environ.get("STACKD_CONFORMANCE_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "compose-conformance"
    if not (path / "README.md").is_file():
        raise RuntimeError(f"Compose conformance corpus not found at {path}; set STACKD_CONFORMANCE_DIR")
    return path


@pytest.fixture(scope="session")
def conformance() -> Path:
    return conformance_dir()
