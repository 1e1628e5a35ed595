"""Bootstrapping ``debian:bookworm-slim`` from Debian's archive into a temporary image store (root,
network to the archive). One bootstrap per test session: it takes half a minute."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackd.drivers.images.bootstrap import (
    LABEL_DATE,
    LABEL_MIRROR,
    LABEL_SLIM,
    LABEL_SUITE,
    LABEL_TOOL,
    LABEL_VARIANT,
    bootstrap_debian,
    parse_debian_ref,
)
from stackd.drivers.images.records import ImageRef
from stackd.drivers.images.store import ImageStore
from stackd.errors import DriverError
from tests.host.images.hostutil import need_root, need_tool

pytestmark = pytest.mark.host

PREFIX = "stkt-build-"


@dataclass(frozen=True)
class Bootstrapped:
    store: ImageStore
    ref: ImageRef

    @property
    def root(self) -> Path:
        (layer,) = self.ref.layer_dirs
        return layer


@pytest.fixture(scope="session")
def slim_bookworm() -> Iterator[Bootstrapped]:
    need_root()
    need_tool("mmdebstrap", "mmdebstrap")
    need_tool("mmtarfilter", "mmdebstrap")
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        store = ImageStore(root / "store")
        suite, slim = parse_debian_ref("debian:bookworm-slim") or ("", False)
        ref = bootstrap_debian(store, "debian:bookworm-slim", suite=suite, slim=slim, tmp_dir=root)
        yield Bootstrapped(store, ref)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_image_is_in_the_store_with_its_config_and_labels(slim_bookworm: Bootstrapped) -> None:
    ref = slim_bookworm.store.resolve("debian:bookworm-slim")
    assert ref == slim_bookworm.ref
    assert list(slim_bookworm.store.names()) == ["debian:bookworm-slim"]
    config = ref.config
    assert config.cmd == ("bash",)
    assert any(e.startswith("PATH=") and "/usr/bin" in e for e in config.env)
    assert len(config.diff_ids) == 1 and config.os == "linux"
    labels = config.labels
    assert (labels[LABEL_TOOL], labels[LABEL_SUITE], labels[LABEL_VARIANT], labels[LABEL_SLIM]) == (
        "mmdebstrap", "bookworm", "minbase", "true")
    assert labels[LABEL_MIRROR] == "http://deb.debian.org/debian"
    assert labels[LABEL_DATE] == config.created


def test_root_filesystem_is_bookworm_with_apt(slim_bookworm: Bootstrapped) -> None:
    root = slim_bookworm.root
    assert (root / "usr/bin/apt").is_file()
    assert "VERSION_CODENAME=bookworm" in (root / "etc/os-release").read_text().splitlines()
    sources = (root / "etc/apt/sources.list").read_text()
    for suite in ("bookworm main", "bookworm-updates main", "bookworm-security main"):
        assert suite in sources
    assert (root / "dev").is_dir() and not any((root / "dev").iterdir())
    assert (root / "etc/resolv.conf").read_text() == ""


def test_slim_keeps_only_copyright_files_as_documentation(slim_bookworm: Bootstrapped) -> None:
    doc = slim_bookworm.root / "usr/share/doc"
    packages = [p for p in doc.iterdir() if p.is_dir() and not p.is_symlink()]
    assert packages, "no package documentation directory at all"
    extra = [str(p.relative_to(doc)) for pkg in packages for p in pkg.iterdir() if p.name != "copyright"]
    assert extra == []
    assert all((pkg / "copyright").is_file() for pkg in packages if pkg.name != "usr-is-merged")
    for gone in ("usr/share/man", "usr/share/info", "usr/share/locale"):
        folder = slim_bookworm.root / gone
        assert not folder.exists() or not any(folder.iterdir()), gone


def test_dpkg_keeps_the_image_slim_for_later_installs(slim_bookworm: Bootstrapped) -> None:
    rules = (slim_bookworm.root / "etc/dpkg/dpkg.cfg.d/99mmdebstrap").read_text().splitlines()
    assert "path-exclude=/usr/share/doc/*" in rules and "path-include=/usr/share/doc/*/copyright" in rules


def test_a_failed_bootstrap_leaves_nothing(tmp_path: Path) -> None:
    need_root()
    need_tool("mmdebstrap", "mmdebstrap")
    store = ImageStore(tmp_path / "store")
    with pytest.raises(DriverError, match="mmdebstrap failed"):
        bootstrap_debian(store, "debian:nosuchsuite", suite="stkt-no-such-suite", slim=True, tmp_dir=tmp_path)
    assert store.names() == {}
    assert list(store.dir.iterdir()) == []
