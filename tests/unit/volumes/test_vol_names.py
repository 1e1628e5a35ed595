"""Volume names: Docker's rule, and nothing that could leave the volumes directory."""

from __future__ import annotations

import pytest

from stackd.drivers.volumes import VolumeError, check_name


@pytest.mark.parametrize("name", ["demo_dbdata", "a1", "My.vol-2_x", "0" * 255])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a", "..", ".", "../etc", "a/b", "/abs", ".hidden", "-dash", "_under",
                                  "sp ace", "nul\0", "é-vol", "x" * 256, "a\nb"])
def test_bad_names(name: str) -> None:
    with pytest.raises(VolumeError, match="invalid volume name"):
        check_name(name)
