"""Debian bootstrap, the parts that need no network: which references it serves, the mmdebstrap
command line, the image config it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackd.drivers.images.bootstrap import (
    LABEL_DATE,
    LABEL_MIRROR,
    LABEL_SLIM,
    LABEL_SUITE,
    LABEL_TOOL,
    LABEL_VARIANT,
    SLIM_DPKG_OPTIONS,
    bootstrap_debian,
    debian_sources,
    image_config,
    mmdebstrap_command,
    parse_debian_ref,
)
from stackd.drivers.images.config import parse_config
from stackd.drivers.images.digests import Digest
from stackd.drivers.images.store import ImageStore
from stackd.errors import PermanentDriverError


@pytest.mark.parametrize(("ref", "expected"), [
    ("debian:bookworm", ("bookworm", False)),
    ("debian:bookworm-slim", ("bookworm", True)),
    ("debian:12", ("bookworm", False)),
    ("debian:12-slim", ("bookworm", True)),
    ("debian:11", ("bullseye", False)),
    ("debian:13-slim", ("trixie", True)),
    ("debian:stable", ("stable", False)),
    ("debian:stable-slim", ("stable", True)),
    ("debian:testing", ("testing", False)),
    ("debian:sid-slim", ("sid", True)),
    ("debian", ("stable", False)),
    ("debian:latest", ("stable", False)),
    ("docker.io/library/debian:trixie", ("trixie", False)),
    ("library/debian:12", ("bookworm", False)),
    ("debian:12.5", None),
    ("debian:bookworm-20240110", None),
    ("debian:latest-slim", None),
    ("debian:jessie", None),
    ("ubuntu:22.04", None),
    ("example.org/debian:12", None),
    ("debian@sha256:" + "0" * 64, None),
])
def test_parse_debian_ref(ref: str, expected: tuple[str, bool] | None) -> None:
    assert parse_debian_ref(ref) == expected


def test_sources_have_updates_and_security_except_for_unstable() -> None:
    assert debian_sources("bookworm") == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]
    assert debian_sources("sid", "http://mirror/debian") == ["deb http://mirror/debian sid main"]


def test_slim_command_excludes_docs_and_keeps_copyright() -> None:
    cmd = mmdebstrap_command("bookworm", True, tool="/usr/bin/mmdebstrap", hook_dirs=[Path("/hooks")])
    assert cmd[:6] == ["/usr/bin/mmdebstrap", "--variant=minbase", "--mode=auto", "--format=tar", "--quiet",
                       "--hook-dir=/hooks"]
    dpkg = [c.removeprefix("--dpkgopt=") for c in cmd if c.startswith("--dpkgopt=")]
    assert dpkg == list(SLIM_DPKG_OPTIONS)
    assert dpkg.index("path-include=/usr/share/doc/*/copyright") > dpkg.index("path-exclude=/usr/share/doc/*")
    assert not any(c.startswith("--include=") for c in cmd)
    hooks = [c for c in cmd if c.startswith("--customize-hook=")]
    assert len(hooks) == 2 and "copyright" in hooks[0] and "resolv.conf" in hooks[1]
    suite_at = cmd.index("bookworm")
    assert cmd[suite_at + 1] == "-" and cmd[suite_at + 2:] == debian_sources("bookworm")


def test_standard_command_adds_packages_and_keeps_docs() -> None:
    cmd = mmdebstrap_command("trixie", False, mirror="http://m/debian", security_mirror="http://m/sec")
    assert "--include=ca-certificates,netbase" in cmd
    assert not any(c.startswith("--dpkgopt=") for c in cmd)
    assert cmd[-3:] == ["deb http://m/debian trixie main", "deb http://m/debian trixie-updates main",
                        "deb http://m/sec trixie-security main"]


def test_image_config_is_a_valid_one_layer_config_with_labels() -> None:
    diff_id = Digest("sha256:" + "a" * 64)
    blob = image_config(diff_id, suite="bookworm", slim=True, mirror="http://deb.debian.org/debian",
                        created="2026-01-02T03:04:05Z", tool_version="1.3.5", command=["mmdebstrap", "x y"])
    config = parse_config(blob)
    assert config.diff_ids == (diff_id,)
    assert config.cmd == ("bash",)
    assert config.env == ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    assert config.created == "2026-01-02T03:04:05Z" and config.os == "linux"
    assert {k: config.labels[k] for k in (LABEL_TOOL, LABEL_SUITE, LABEL_VARIANT, LABEL_SLIM, LABEL_DATE,
                                          LABEL_MIRROR)} == {
        LABEL_TOOL: "mmdebstrap", LABEL_SUITE: "bookworm", LABEL_VARIANT: "minbase", LABEL_SLIM: "true",
        LABEL_DATE: "2026-01-02T03:04:05Z", LABEL_MIRROR: "http://deb.debian.org/debian"}
    assert json.loads(blob)["history"][0]["created_by"] == "mmdebstrap 'x y'"


def test_bootstrap_refuses_suites_and_mirrors_that_are_not_plain_words(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    with pytest.raises(PermanentDriverError, match="cannot bootstrap suite 'book worm'"):
        bootstrap_debian(store, "debian:x", suite="book worm", slim=True)
    with pytest.raises(PermanentDriverError, match="a mirror a URL"):
        bootstrap_debian(store, "debian:x", suite="bookworm", slim=True, mirror="deb.debian.org main")
    assert not store.dir.exists()
