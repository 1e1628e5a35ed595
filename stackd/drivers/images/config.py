"""The OCI image config as stackd uses it: a frozen ``ImageConfig`` parsed from the config blob,
and the ``docker image inspect``-shaped view of an image.

The config blob is the JSON document the OCI image spec calls "image configuration" (with
Docker's ``Healthcheck`` extension). Parsing checks the type of every field it reads and names
the field when one is wrong. Pure: no I/O, no store access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from stackd.drivers.images.digests import Digest, parse_digest
from stackd.drivers.images.errors import ImageError
from stackd.drivers.images.oci import load_json


@dataclass(frozen=True)
class Healthcheck:
    """Docker's image healthcheck; durations in nanoseconds as in the config (0 = default)."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ImageConfig:
    """What a runtime needs from an image config, plus the layer diff ids (bottom first)."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    stop_signal: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    created: str | None = None
    author: str = ""
    architecture: str = ""
    os: str = ""
    diff_ids: tuple[Digest, ...] = ()


def _strings(raw: Any, what: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise ImageError(f"{what} is not a list of strings")
    return tuple(raw)


def _text(raw: Any, what: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ImageError(f"{what} is not a string")
    return raw


def _keys(raw: Any, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ImageError(f"{what} is not an object")
    return tuple(sorted(raw))


def _int(raw: Any, what: str) -> int:
    if raw is None:
        return 0
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ImageError(f"{what} is not an integer")
    return raw


def _healthcheck(raw: Any, what: str) -> Healthcheck | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ImageError(f"{what} is not an object")
    return Healthcheck(
        test=_strings(raw.get("Test"), f"{what}.Test") or (),
        interval=_int(raw.get("Interval"), f"{what}.Interval"),
        timeout=_int(raw.get("Timeout"), f"{what}.Timeout"),
        start_period=_int(raw.get("StartPeriod"), f"{what}.StartPeriod"),
        start_interval=_int(raw.get("StartInterval"), f"{what}.StartInterval"),
        retries=_int(raw.get("Retries"), f"{what}.Retries"),
    )


def parse_config(data: bytes, what: str = "image config") -> ImageConfig:
    """Parse an image config blob; ``ImageError`` naming the field when one has the wrong type."""
    raw = load_json(data, what)
    cfg = raw.get("config") or {}
    if not isinstance(cfg, dict):
        raise ImageError(f"{what}: config is not an object")
    rootfs = raw.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise ImageError(f"{what}: rootfs is missing or its type is not 'layers'")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list):
        raise ImageError(f"{what}: rootfs.diff_ids is missing or not a list")
    labels = cfg.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ImageError(f"{what}: config.Labels is not a map of strings")
    return ImageConfig(
        env=_strings(cfg.get("Env"), f"{what}: config.Env") or (),
        cmd=_strings(cfg.get("Cmd"), f"{what}: config.Cmd"),
        entrypoint=_strings(cfg.get("Entrypoint"), f"{what}: config.Entrypoint"),
        working_dir=_text(cfg.get("WorkingDir"), f"{what}: config.WorkingDir"),
        user=_text(cfg.get("User"), f"{what}: config.User"),
        exposed_ports=_keys(cfg.get("ExposedPorts"), f"{what}: config.ExposedPorts"),
        volumes=_keys(cfg.get("Volumes"), f"{what}: config.Volumes"),
        healthcheck=_healthcheck(cfg.get("Healthcheck"), f"{what}: config.Healthcheck"),
        stop_signal=_text(cfg.get("StopSignal"), f"{what}: config.StopSignal"),
        labels=MappingProxyType(dict(labels)),
        created=_text(raw.get("created"), f"{what}: created") or None,
        author=_text(raw.get("author"), f"{what}: author"),
        architecture=_text(raw.get("architecture"), f"{what}: architecture"),
        os=_text(raw.get("os"), f"{what}: os"),
        diff_ids=tuple(parse_digest(d, f"{what}: rootfs.diff_ids[{i}]") for i, d in enumerate(diff_ids)),
    )


def _healthcheck_json(h: Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": list(h.test)}
    for key, value in (("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period),
                       ("StartInterval", h.start_interval), ("Retries", h.retries)):
        if value:
            out[key] = value
    return out


def inspect_json(image_id: Digest, names: list[str], digest: Digest, config: ImageConfig,
                 size: int) -> dict[str, Any]:
    """The ``docker image inspect`` view of one image (``Id`` is the config digest)."""
    return {
        "Id": image_id,
        "RepoTags": sorted(names),
        "RepoDigests": [],
        "ManifestDigest": digest,
        "Created": config.created,
        "Author": config.author,
        "Architecture": config.architecture,
        "Os": config.os,
        "Config": {
            "Env": list(config.env),
            "Cmd": None if config.cmd is None else list(config.cmd),
            "Entrypoint": None if config.entrypoint is None else list(config.entrypoint),
            "WorkingDir": config.working_dir,
            "User": config.user,
            "ExposedPorts": {p: {} for p in config.exposed_ports} or None,
            "Volumes": {v: {} for v in config.volumes} or None,
            "Healthcheck": None if config.healthcheck is None else _healthcheck_json(config.healthcheck),
            "StopSignal": config.stop_signal,
            "Labels": dict(config.labels) or None,
        },
        "RootFS": {"Type": "layers", "Layers": list(config.diff_ids)},
        "Size": size,
    }
