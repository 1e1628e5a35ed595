"""Capability names and Docker's cap_add/cap_drop rules."""

from __future__ import annotations

import pytest

from stackd.drivers.runtime.caps import ALL_CAPS, DOCKER_DEFAULT_CAPS, normalize_cap, resolve_caps
from stackd.errors import PermanentDriverError


def test_the_kernel_list_is_indexed_by_number() -> None:
    assert ALL_CAPS[0] == "CAP_CHOWN"
    assert ALL_CAPS[21] == "CAP_SYS_ADMIN"
    assert ALL_CAPS[40] == "CAP_CHECKPOINT_RESTORE"
    assert len(set(ALL_CAPS)) == 41
    assert len(DOCKER_DEFAULT_CAPS) == 14


@pytest.mark.parametrize(("given", "expected"), [
    ("chown", "CAP_CHOWN"), ("CAP_NET_ADMIN", "CAP_NET_ADMIN"), (" sys_time ", "CAP_SYS_TIME"),
    ("all", "ALL")])
def test_names_are_normalized(given: str, expected: str) -> None:
    assert normalize_cap(given) == expected


def test_unknown_names_are_refused() -> None:
    with pytest.raises(PermanentDriverError):
        normalize_cap("CAP_TELEPORT")


def test_result_is_ordered_by_number() -> None:
    result = resolve_caps(["SYS_ADMIN"], [])
    assert list(result) == sorted(result, key=ALL_CAPS.index)
    assert set(result) == DOCKER_DEFAULT_CAPS | {"CAP_SYS_ADMIN"}


def test_privileged_ignores_add_and_drop() -> None:
    assert resolve_caps([], ["ALL"], privileged=True, cap_last_cap=37) == ALL_CAPS[:38]


def test_drop_all_and_add_all() -> None:
    assert resolve_caps(["KILL"], ["ALL"]) == ("CAP_KILL",)
    assert resolve_caps(["ALL"], ["ALL"]) == ALL_CAPS  # as Docker: adding ALL wins
    assert len(resolve_caps(["ALL"], ["KILL", "CHOWN"])) == 39
