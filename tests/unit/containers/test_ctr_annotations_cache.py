"""A container's annotations are read from its OCI config once while the file is unchanged (it
holds the seccomp profile and the daemon lists containers on every pass), and again when it
changes; without a cache the file is read each time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stackd.drivers.containers import listing
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.runtime import bundle as bundle_module


def _write(layout: HostLayout, name: str, annotations: dict[str, str], mtime: int,
           resources: dict[str, object] | None = None) -> None:
    bundle = layout.container(name).bundle
    bundle.mkdir(parents=True, exist_ok=True)
    config = bundle / "config.json"
    config.write_text(json.dumps({"ociVersion": "1.0.2", "annotations": annotations,
                                  "linux": {"resources": resources or {}}}))
    os.utime(config, ns=(mtime, mtime))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The bundles whose config is read (and parsed) from now on."""
    found: list[Path] = []
    real = bundle_module.read_config

    def counting(bundle: Path) -> dict[str, object]:
        found.append(bundle)
        return real(bundle)

    monkeypatch.setattr(listing, "read_config", counting)
    return found


def test_an_unchanged_config_is_not_read_again(tmp_path: Path, reads: list[Path]) -> None:
    layout = HostLayout(tmp_path / "data", tmp_path / "run")
    cache: listing.ConfigCache = {}
    _write(layout, "demo-web-1", {"io.stackd.service": "web"}, 1_000_000_000)
    first = listing.annotations_of(layout, "demo-web-1", cache)
    first["changed by the caller"] = "x"  # a copy: the cache keeps its own
    assert listing.annotations_of(layout, "demo-web-1", cache) == {"io.stackd.service": "web"}
    assert len(reads) == 1
    _write(layout, "demo-web-1", {"io.stackd.service": "api"}, 2_000_000_000)
    assert listing.annotations_of(layout, "demo-web-1", cache) == {"io.stackd.service": "api"}
    assert len(reads) == 2
    listing.annotations_of(layout, "demo-web-1")
    listing.annotations_of(layout, "demo-web-1")
    assert len(reads) == 4  # no cache: read every time
    assert listing.annotations_of(layout, "gone", cache) == {}


def test_one_read_serves_the_annotations_and_the_limits(tmp_path: Path, reads: list[Path]) -> None:
    """The listing (annotations) and drift repair (``linux.resources``) share one cache: the
    config, seccomp profile and all, is parsed once for both."""
    from stackd.drivers.containers.drift import DriftRepair

    layout = HostLayout(tmp_path / "data", tmp_path / "run")
    cache: listing.ConfigCache = {}
    _write(layout, "demo-web-1", {"io.stackd.service": "web"}, 1_000_000_000, {"pids": {"limit": 50}})
    assert listing.annotations_of(layout, "demo-web-1", cache) == {"io.stackd.service": "web"}
    drift = DriftRepair(layout, None, None, None, configs=cache)  # type: ignore[arg-type]
    assert drift._resources("demo-web-1") == {"pids": {"limit": 50}}
    assert len(reads) == 1
    assert listing.config_of(layout, "gone", cache) is None and drift._resources("gone") is None
    drift.limit_watch.close()
