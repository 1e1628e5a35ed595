"""Pure parts of the image driver: names, digests, manifests and configs."""

from __future__ import annotations

import pytest

from stackd.drivers.images.config import parse_config
from stackd.drivers.images.digests import parse_digest
from stackd.drivers.images.errors import ImageError
from stackd.drivers.images.names import normalize_name
from stackd.drivers.images.oci import parse_manifest
from tests.unit.images.builders import canonical, sha


@pytest.mark.parametrize(("name", "key"), [
    ("nginx", "nginx:latest"),
    ("nginx:1.25", "nginx:1.25"),
    ("library/nginx", "library/nginx:latest"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("localhost:5000/app:v1.2-rc_3", "localhost:5000/app:v1.2-rc_3"),
    ("Registry.Example.com/team/my-app__x", "Registry.Example.com/team/my-app__x:latest"),
])
def test_names_get_a_default_tag_and_nothing_else(name: str, key: str) -> None:
    assert normalize_name(name) == key


@pytest.mark.parametrize(("name", "words"), [
    ("", "empty"),
    ("App", "lowercase"),
    ("app:", "invalid tag"),
    ("app:-x", "invalid tag"),
    ("app@sha256:" + "0" * 64, "by digest"),
    ("a//b", "invalid image name"),
    ("-app", "invalid image name"),
])
def test_invalid_names(name: str, words: str) -> None:
    with pytest.raises(ImageError, match=words):
        normalize_name(name)


def test_digests() -> None:
    good = "sha256:" + "ab" * 32
    assert parse_digest(good) == good
    with pytest.raises(ImageError, match="only sha256"):
        parse_digest("sha512:" + "ab" * 64)
    for bad in ("sha256:" + "AB" * 32, "sha256:abc", "sha256:../x", 7):
        with pytest.raises(ImageError, match="not a digest"):
            parse_digest(bad)


def config(**fields: object) -> bytes:
    return canonical({"rootfs": {"type": "layers", "diff_ids": [sha(b"")]}, **fields})


def test_config_fields_are_type_checked_and_named() -> None:
    ports: dict[str, object] = {"53/udp": {}, "80/tcp": {}}
    cfg = parse_config(config(config={"Env": ["A=1"], "Cmd": None, "ExposedPorts": ports}))
    assert cfg.env == ("A=1",) and cfg.cmd is None and cfg.exposed_ports == ("53/udp", "80/tcp")
    assert cfg.diff_ids == (sha(b""),)
    with pytest.raises(ImageError, match=r"config\.Env is not a list of strings"):
        parse_config(config(config={"Env": "A=1"}))
    with pytest.raises(ImageError, match=r"config\.Healthcheck\.Retries is not an integer"):
        parse_config(config(config={"Healthcheck": {"Test": ["NONE"], "Retries": "3"}}))
    with pytest.raises(ImageError, match=r"rootfs.diff_ids\[0\]"):
        parse_config(canonical({"rootfs": {"type": "layers", "diff_ids": ["md5:x"]}}))
    with pytest.raises(ImageError, match="rootfs is missing"):
        parse_config(b"{}")
    with pytest.raises(ImageError, match="not valid JSON"):
        parse_config(b"{")


def test_config_labels_cannot_be_changed() -> None:
    cfg = parse_config(config(config={"Labels": {"a": "b"}}))
    with pytest.raises(TypeError):
        cfg.labels["a"] = "c"  # type: ignore[index]


def test_manifest_checks() -> None:
    desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(b"c"), "size": 1}
    ok = parse_manifest(canonical({"schemaVersion": 2, "config": desc, "layers": [desc]}))
    assert ok.config.digest == sha(b"c") and len(ok.layers) == 1
    with pytest.raises(ImageError, match="schemaVersion"):
        parse_manifest(canonical({"schemaVersion": 1, "config": desc, "layers": []}))
    with pytest.raises(ImageError, match="is an image index"):
        parse_manifest(canonical({"schemaVersion": 2, "manifests": []}))
    with pytest.raises(ImageError, match=r"layers\[0\].size"):
        parse_manifest(canonical({"schemaVersion": 2, "config": desc, "layers": [{**desc, "size": -1}]}))
