"""The parts of a service: the models for ``ports``, ``volumes``, ``healthcheck``, ``deploy``, ``build``...

Each model binds one canonical (long-form) value of a service key and enforces the rules that can
be judged from that value alone (a tmpfs mount has no source, a soft ulimit is not above the hard
one, a healthcheck test starts with NONE, CMD or CMD-SHELL). Rules across keys or services belong
to ``stackd.spec.consistency``. ``stackd.spec.models`` re-exports every model. No I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from stackd.spec.modelbase import (
    IP,
    Bytes,
    Duration,
    IPv4,
    IPv6,
    KVMap,
    Model,
    Name,
    NumStr,
    Options,
    Published,
    Scalar,
    StrList,
    nulls_to_empty,
)


def _refs(v: Any) -> Any:
    """Secrets and configs: a bare name means ``{source: name}``."""
    if isinstance(v, list) and any(isinstance(i, str) for i in v):
        return [{"source": i} if isinstance(i, str) else i for i in v]
    return v


def _attachments(v: Any) -> Any:
    """Service networks: ``{name: null}`` and the list form ``[name]`` mean an attachment with no options."""
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return {name: {} for name in v}
    return nulls_to_empty(v)


class DependsOn(Model):
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = (
        "service_started")
    required: bool = True
    restart: bool = False


class Ulimit(Model):
    soft: int
    hard: int

    @model_validator(mode="after")
    def _order(self) -> Ulimit:
        if self.soft >= 0 and self.hard >= 0 and self.soft > self.hard:
            raise ValueError(f"the soft limit ({self.soft}) is above the hard limit ({self.hard})")
        return self


class FileRef(Model):
    """A service's use of a secret or config (``source`` names the top-level entry)."""

    source: str
    target: str | None = None
    uid: NumStr | None = None
    gid: NumStr | None = None
    mode: Annotated[int, Field(ge=0, le=0o7777)] | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _octal(cls, v: Any) -> Any:
        if isinstance(v, str) and re.fullmatch(r"0?[0-7]{1,4}|0o[0-7]{1,4}", v.strip()):
            return int(v.strip().removeprefix("0o"), 8)
        return v


FileRefs = Annotated[list[FileRef], BeforeValidator(_refs)]


class Build(Model):
    context: str | None = None
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    entitlements: list[str] = Field(default_factory=list)
    args: KVMap = Field(default_factory=dict)
    ssh: KVMap = Field(default_factory=dict)
    labels: KVMap = Field(default_factory=dict)
    cache_from: list[str] = Field(default_factory=list)
    cache_to: list[str] = Field(default_factory=list)
    no_cache: bool | None = None
    additional_contexts: KVMap = Field(default_factory=dict)
    network: str | None = None
    provenance: bool | str | None = None
    sbom: bool | str | None = None
    pull: bool | None = None
    target: str | None = None
    shm_size: Bytes | None = None
    extra_hosts: dict[str, list[str]] = Field(default_factory=dict)
    isolation: str | None = None
    privileged: bool | None = None
    secrets: FileRefs = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    ulimits: dict[str, Ulimit] = Field(default_factory=dict)
    platforms: list[str] = Field(default_factory=list)


class BlkioRate(Model):
    path: str
    rate: Bytes


class BlkioIops(Model):
    path: str
    rate: Annotated[int, Field(ge=0)]


class BlkioWeight(Model):
    path: str
    weight: Annotated[int, Field(ge=10, le=1000)]


class BlkioConfig(Model):
    device_read_bps: list[BlkioRate] = Field(default_factory=list)
    device_read_iops: list[BlkioIops] = Field(default_factory=list)
    device_write_bps: list[BlkioRate] = Field(default_factory=list)
    device_write_iops: list[BlkioIops] = Field(default_factory=list)
    weight: Annotated[int, Field(ge=10, le=1000)] | None = None
    weight_device: list[BlkioWeight] = Field(default_factory=list)


class CredentialSpec(Model):
    config: str | None = None
    file: str | None = None
    registry: str | None = None


class DeviceMapping(Model):
    source: str
    target: str | None = None
    permissions: str | None = None


class DeviceRequest(Model):
    capabilities: list[str] = Field(default_factory=list)
    count: int | Literal["all"] | None = None
    device_ids: list[str] = Field(default_factory=list)
    driver: str | None = None
    options: KVMap = Field(default_factory=dict)


class GenericResourceSpec(Model):
    kind: str | None = None
    value: float | None = None


class GenericResource(Model):
    discrete_resource_spec: GenericResourceSpec | None = None


class ResourceLimits(Model):
    cpus: Annotated[float, Field(ge=0)] | None = None
    memory: Bytes | None = None
    pids: Annotated[int, Field(ge=-1)] | None = None


class ResourceReservations(Model):
    cpus: Annotated[float, Field(ge=0)] | None = None
    memory: Bytes | None = None
    generic_resources: list[GenericResource] = Field(default_factory=list)
    devices: list[DeviceRequest] = Field(default_factory=list)


class Resources(Model):
    limits: ResourceLimits | None = None
    reservations: ResourceReservations | None = None


class RestartPolicy(Model):
    condition: Literal["none", "on-failure", "any"] | None = None
    delay: Duration | None = None
    max_attempts: Annotated[int, Field(ge=0)] | None = None
    window: Duration | None = None


class UpdateConfig(Model):
    parallelism: Annotated[int, Field(ge=0)] | None = None
    delay: Duration | None = None
    failure_action: Literal["continue", "pause", "rollback"] | None = None
    monitor: Duration | None = None
    max_failure_ratio: Annotated[float, Field(ge=0)] | None = None
    order: Literal["start-first", "stop-first"] | None = None


class PlacementPreference(Model):
    spread: str | None = None


class Placement(Model):
    constraints: list[str] = Field(default_factory=list)
    preferences: list[PlacementPreference] = Field(default_factory=list)
    max_replicas_per_node: Annotated[int, Field(ge=0)] | None = None


class Deploy(Model):
    mode: Literal["replicated", "global", "replicated-job", "global-job"] | None = None
    endpoint_mode: Literal["vip", "dnsrr"] | None = None
    replicas: Annotated[int, Field(ge=0)] | None = None
    labels: KVMap = Field(default_factory=dict)
    rollback_config: UpdateConfig | None = None
    update_config: UpdateConfig | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    placement: Placement | None = None


class ServiceHook(Model):
    command: list[str] | str
    user: str | None = None
    privileged: bool | None = None
    working_dir: str | None = None
    environment: KVMap = Field(default_factory=dict)


class Watch(Model):
    path: str
    action: Literal["rebuild", "sync", "restart", "sync+restart", "sync+exec"]
    target: str | None = None
    ignore: StrList = Field(default_factory=list)
    include: StrList = Field(default_factory=list)
    exec: ServiceHook | None = None
    initial_sync: bool | None = None


class Develop(Model):
    watch: list[Watch] = Field(default_factory=list)


class EnvFile(Model):
    path: str
    required: bool = True
    format: str | None = None


class Healthcheck(Model):
    test: list[str] | None = None
    disable: bool | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: Annotated[int, Field(ge=0)] | None = None
    start_period: Duration | None = None
    start_interval: Duration | None = None

    @field_validator("test")
    @classmethod
    def _kind(cls, v: list[str] | None) -> list[str] | None:
        if v and v[0] not in ("NONE", "CMD", "CMD-SHELL"):
            raise ValueError(f"the first item of `test` must be NONE, CMD or CMD-SHELL, got {v[0]!r}")
        return v


class Logging(Model):
    driver: str | None = None
    options: dict[str, NumStr | None] = Field(default_factory=dict)


class ServiceModelRef(Model):
    endpoint_var: str | None = None
    model_var: str | None = None


class ServiceNetwork(Model):
    """How a service joins one network (``services.X.networks.NAME``)."""

    aliases: list[str] = Field(default_factory=list)
    interface_name: str | None = None
    ipv4_address: IPv4 | None = None
    ipv6_address: IPv6 | None = None
    link_local_ips: list[IP] = Field(default_factory=list)
    mac_address: str | None = None
    driver_opts: Options = Field(default_factory=dict)
    priority: int | None = None
    gw_priority: int | None = None


Attachments = Annotated[dict[Name, ServiceNetwork], BeforeValidator(_attachments)]


class Port(Model):
    target: Annotated[int, Field(ge=1, le=65535)]
    published: Published | None = None
    host_ip: IP | None = None
    protocol: Literal["tcp", "udp"] = "tcp"
    mode: Literal["ingress", "host"] = "ingress"
    name: str | None = None
    app_protocol: str | None = None


class Provider(Model):
    type: str
    options: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)


class BindOptions(Model):
    propagation: Literal["shared", "slave", "private", "rshared", "rslave", "rprivate"] | None = None
    create_host_path: bool | None = None
    recursive: Literal["enabled", "disabled", "writable", "readonly"] | None = None
    selinux: Literal["z", "Z"] | None = None


class VolumeOptions(Model):
    labels: KVMap = Field(default_factory=dict)
    nocopy: bool | None = None
    subpath: str | None = None


class TmpfsOptions(Model):
    size: Bytes | None = None
    mode: Annotated[int, Field(ge=0)] | None = None


class ImageOptions(Model):
    subpath: str | None = None


class ServiceVolume(Model):
    """One mount of a service (long form)."""

    type: Literal["bind", "volume", "tmpfs", "npipe", "cluster", "image"]
    source: str | None = None
    target: str
    read_only: bool | None = None
    consistency: str | None = None
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None
    image: ImageOptions | None = None

    @model_validator(mode="after")
    def _coherent(self) -> ServiceVolume:
        if self.type in ("bind", "npipe", "image") and not self.source:
            raise ValueError(f"a `{self.type}` mount needs a `source`")
        if self.type == "tmpfs" and self.source:
            raise ValueError("a `tmpfs` mount has no `source`")
        for option in ("bind", "volume", "tmpfs", "image"):
            if getattr(self, option) is not None and option != self.type:
                raise ValueError(f"`{option}` options do not apply to a `{self.type}` mount")
        return self


__all__ = [
    "Attachments", "BindOptions", "BlkioConfig", "BlkioIops", "BlkioRate", "BlkioWeight", "Build",
    "CredentialSpec", "DependsOn", "Deploy", "Develop", "DeviceMapping", "DeviceRequest", "EnvFile",
    "FileRef", "FileRefs", "GenericResource", "GenericResourceSpec", "Healthcheck", "ImageOptions",
    "Logging", "Placement", "PlacementPreference", "Port", "Provider", "ResourceLimits",
    "ResourceReservations", "Resources", "RestartPolicy", "ServiceHook", "ServiceModelRef",
    "ServiceNetwork", "ServiceVolume", "TmpfsOptions", "Ulimit", "UpdateConfig", "VolumeOptions", "Watch",
]
