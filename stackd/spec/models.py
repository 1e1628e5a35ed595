"""Frozen pydantic models of a validated stack: the whole Compose model plus stackd's own settings.

The models bind the *canonical* tree (see ``stackd.spec.canonical``): every short syntax has
already been turned into its long form, so each field here has one shape. Binding happens once,
at the end of loading (``stackd.spec.validate.bind``); no model is mutated afterwards. Field names
are the Compose keys, so a validation error's location is the YAML path. Unit-carrying values
(durations, byte sizes) stay as written and are checked with ``stackd.spec.units``.

Field names used by graph/ and plan/ are fixed:
Stack.name, Stack.services, Stack.networks, Stack.volumes, Stack.secrets, Stack.configs,
Stack.groups; Service.name, Service.image, Service.build, Service.depends_on (dict of DependsOn),
Service.network_mode, Service.volumes_from, Service.profiles, Service.scale, Service.deploy,
Service.networks, Service.volumes, Service.ports, Service.environment, Service.env_file,
Service.secrets, Service.configs, Service.cgroup_parent, Service.restart.

Normalisation done here (and nowhere else): ``x-*`` keys are dropped at every model level; the
top-level ``version`` is dropped; ``x-stackd.groups`` becomes ``Stack.groups`` (with an implicit
``default`` group); a service is named after its key; a service without ``networks`` and without
``network_mode`` joins the implicit ``default`` network, which is then declared; a ``null``
network/volume declaration or service network attachment becomes an empty one. Cross-references
(depends_on, networks, volumes...) are checked by ``validate``, not here. No I/O.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from stackd.spec.units import parse_bytes, parse_duration

# ---------------------------------------------------------------------------------------- value types


def _duration(v: Any) -> Any:
    if not isinstance(v, str):
        raise ValueError(f"expected a duration such as `30s` or `1m30s`, got {v!r}"
                         + (" (a unit is missing)" if isinstance(v, int | float) else ""))
    parse_duration(v)
    return v


def _bytes(v: Any) -> Any:
    parse_bytes(v)
    return v


def _swap(v: Any) -> Any:
    return v if v in (-1, "-1") else _bytes(v)


def _micros_or_duration(v: Any) -> Any:
    if isinstance(v, str) and not re.fullmatch(r"-?[0-9]+", v.strip()):
        parse_duration(v)
    return v


def _ip(kind: str) -> Any:
    def check(v: str) -> str:
        text = v[1:-1] if v.startswith("[") and v.endswith("]") else v
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f"expected an {kind} address, got {v!r}") from None
        if kind not in ("IP", f"IPv{addr.version}"):
            raise ValueError(f"expected an {kind} address, got {v!r}")
        return v
    return check


def _subnet(v: str) -> str:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise ValueError(f"expected a subnet in CIDR notation such as `10.5.0.0/16`, got {v!r}") from None
    return v


def _restart(v: str) -> str:
    if not re.fullmatch(r"no|always|unless-stopped|on-failure(:[0-9]+)?", v):
        raise ValueError(f"expected one of `no`, `always`, `on-failure[:N]`, `unless-stopped`, got {v!r}")
    return v


_PULL = re.compile(r"always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+")


def _pull_policy(v: str) -> str:
    if not _PULL.fullmatch(v):
        raise ValueError("expected one of `always`, `never`, `missing`, `build`, `refresh`, `daily`, "
                         f"`weekly`, `every_<duration>`, got {v!r}")
    return v


def _published(v: str) -> str:
    m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", v)
    low, high = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, -1)
    if not low <= high <= 65535:
        raise ValueError(f"expected a host port (0-65535) or a range such as `8000-8010`, got {v!r}")
    return v


def _text(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return v


def _kv(v: Any) -> Any:
    """Accept the list form ``["K=V", "K"]`` and scalar values (for maps the canonical stage leaves as is)."""
    if isinstance(v, list) and all(isinstance(i, str) for i in v):
        out: dict[str, Any] = {}
        for item in v:
            key, sep, value = item.partition("=")
            out[key] = value if sep else None
        return out
    if isinstance(v, dict) and not all(x is None or isinstance(x, str) for x in v.values()):
        return {k: _text(x) for k, x in v.items()}
    return v


def _str_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


def _refs(v: Any) -> Any:
    if isinstance(v, list) and any(isinstance(i, str) for i in v):
        return [{"source": i} if isinstance(i, str) else i for i in v]
    return v


def _nulls_to_empty(v: Any) -> Any:
    if isinstance(v, dict) and any(x is None for x in v.values()):
        return {k: ({} if x is None else x) for k, x in v.items()}
    return v


def _attachments(v: Any) -> Any:
    """Service networks: ``{name: null}`` and the list form ``[name]`` mean an attachment with no options."""
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return {name: {} for name in v}
    return _nulls_to_empty(v)


Duration = Annotated[str, BeforeValidator(_duration)]
Bytes = Annotated[int | str, BeforeValidator(_bytes)]
NumStr = Annotated[str, Field(coerce_numbers_to_str=True)]
KVMap = Annotated[dict[str, str | None], BeforeValidator(_kv)]
StrList = Annotated[list[str], BeforeValidator(_str_list)]
Options = dict[str, Annotated[str, Field(coerce_numbers_to_str=True)]]
IPv4 = Annotated[str, AfterValidator(_ip("IPv4"))]
IPv6 = Annotated[str, AfterValidator(_ip("IPv6"))]
IP = Annotated[str, AfterValidator(_ip("IP"))]
Subnet = Annotated[str, AfterValidator(_subnet)]
Name = Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]+$")]
Command = list[str] | None
Scalar = str | int | float | bool

# ---------------------------------------------------------------------------------------- base


class Model(BaseModel):
    """Frozen, no unknown keys; ``x-*`` extension keys are accepted and dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, protected_namespaces=())

    _PREPARES: ClassVar[bool] = False  # True when the class overrides ``_prepare``

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if data.__class__ is not dict and not isinstance(data, dict):
            return data
        if cls._PREPARES:
            data = cls._prepare(data)
        for key in data:
            if key.__class__ is str and key.startswith("x-"):
                return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        return data


class _External(Model):
    """Top-level resources: ``external: {name: x}`` (deprecated form) means ``external: true, name: x``."""

    _PREPARES: ClassVar[bool] = True

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        ext = data.get("external")
        if isinstance(ext, dict) and set(ext) <= {"name"}:
            data = {**data, "external": True}
            if "name" in ext and "name" not in data:
                data["name"] = ext["name"]
        return data

# ---------------------------------------------------------------------------------------- service parts


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
    secrets: Annotated[list[FileRef], BeforeValidator(_refs)] = Field(default_factory=list)
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


class Port(Model):
    target: Annotated[int, Field(ge=1, le=65535)]
    published: Annotated[NumStr, AfterValidator(_published)] | None = None
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

# ---------------------------------------------------------------------------------------- service


class Service(Model):
    """One service; ``name`` is its key under ``services`` (injected while binding, never written).

    ``extends`` is resolved while loading; a leftover one is dropped here.
    """

    _PREPARES: ClassVar[bool] = True

    name: str
    annotations: KVMap = Field(default_factory=dict)
    attach: bool | None = None
    blkio_config: BlkioConfig | None = None
    build: Build | None = None
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    cgroup: Literal["host", "private"] | None = None
    cgroup_parent: str | None = None
    command: Command = None
    configs: Annotated[list[FileRef], BeforeValidator(_refs)] = Field(default_factory=list)
    container_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")] | None = None
    cpu_count: Annotated[int, Field(ge=0)] | None = None
    cpu_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    cpu_period: Annotated[int, Field(ge=0)] | None = None
    cpu_quota: int | None = None
    cpu_rt_period: Annotated[int | str, BeforeValidator(_micros_or_duration)] | None = None
    cpu_rt_runtime: Annotated[int | str, BeforeValidator(_micros_or_duration)] | None = None
    cpu_shares: Annotated[int, Field(ge=0)] | None = None
    cpus: Annotated[float, Field(ge=0)] | None = None
    cpuset: str | None = None
    credential_spec: CredentialSpec | None = None
    depends_on: dict[str, DependsOn] = Field(default_factory=dict)
    deploy: Deploy | None = None
    develop: Develop | None = None
    device_cgroup_rules: list[str] = Field(default_factory=list)
    devices: list[str | DeviceMapping] = Field(default_factory=list)
    dns: StrList = Field(default_factory=list)
    dns_opt: StrList = Field(default_factory=list)
    dns_search: StrList = Field(default_factory=list)
    domainname: str | None = None
    entrypoint: Command = None
    env_file: list[EnvFile] = Field(default_factory=list)
    environment: KVMap = Field(default_factory=dict)
    expose: list[NumStr] = Field(default_factory=list)
    external_links: list[str] = Field(default_factory=list)
    extra_hosts: dict[str, list[str]] = Field(default_factory=dict)
    gpus: Literal["all"] | list[DeviceRequest] | None = None
    group_add: list[NumStr] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    image: str | None = None
    init: bool | None = None
    ipc: str | None = None
    isolation: str | None = None
    label_file: StrList = Field(default_factory=list)
    labels: KVMap = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list)
    logging: Logging | None = None
    mac_address: str | None = None
    mem_limit: Bytes | None = None
    mem_reservation: Bytes | None = None
    mem_swappiness: Annotated[int, Field(ge=0, le=100)] | None = None
    memswap_limit: Annotated[int | str, BeforeValidator(_swap)] | None = None
    models: list[str] | dict[str, ServiceModelRef] = Field(default_factory=list)
    network_mode: str | None = None
    networks: Annotated[dict[Name, ServiceNetwork], BeforeValidator(_attachments)] = Field(
        default_factory=dict)
    oom_kill_disable: bool | None = None
    oom_score_adj: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    pid: str | None = None
    pids_limit: Annotated[int, Field(ge=-1)] | None = None
    platform: str | None = None
    ports: list[Port] = Field(default_factory=list)
    post_start: list[ServiceHook] = Field(default_factory=list)
    pre_stop: list[ServiceHook] = Field(default_factory=list)
    privileged: bool | None = None
    profiles: list[str] = Field(default_factory=list)
    provider: Provider | None = None
    pull_policy: Annotated[str, AfterValidator(_pull_policy)] | None = None
    pull_refresh_after: str | None = None
    read_only: bool | None = None
    restart: Annotated[str, AfterValidator(_restart)] | None = None
    runtime: str | None = None
    scale: Annotated[int, Field(ge=0)] | None = None
    secrets: Annotated[list[FileRef], BeforeValidator(_refs)] = Field(default_factory=list)
    security_opt: list[str] = Field(default_factory=list)
    shm_size: Bytes | None = None
    stdin_open: bool | None = None
    stop_grace_period: Duration | None = None
    stop_signal: str | None = None
    storage_opt: Options = Field(default_factory=dict)
    sysctls: KVMap = Field(default_factory=dict)
    tmpfs: StrList = Field(default_factory=list)
    tty: bool | None = None
    ulimits: dict[str, Ulimit] = Field(default_factory=dict)
    use_api_socket: bool | None = None
    user: str | None = None
    userns_mode: str | None = None
    uts: str | None = None
    volumes: list[ServiceVolume] = Field(default_factory=list)
    volumes_from: list[str] = Field(default_factory=list)
    working_dir: str | None = None

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k != "extends"} if "extends" in data else data

    @property
    def replicas(self) -> int:
        """How many containers the service runs: ``scale``, else ``deploy.replicas``, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1

    @property
    def group(self) -> str:
        """The stackd group of the service: ``cgroup_parent`` when it names one, else ``default``."""
        parent = self.cgroup_parent
        return parent if parent and "/" not in parent else "default"

# ---------------------------------------------------------------------------------------- top level


class IpamPool(Model):
    subnet: Subnet | None = None
    ip_range: Subnet | None = None
    gateway: IP | None = None
    aux_addresses: dict[str, IP] = Field(default_factory=dict)


class Ipam(Model):
    driver: str | None = None
    config: list[IpamPool] = Field(default_factory=list)
    options: Options = Field(default_factory=dict)


class Network(_External):
    name: str | None = None
    driver: str | None = None
    driver_opts: Options = Field(default_factory=dict)
    ipam: Ipam | None = None
    external: bool | None = None
    internal: bool | None = None
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    attachable: bool | None = None
    labels: KVMap = Field(default_factory=dict)

    @model_validator(mode="after")
    def _external_alone(self) -> Network:
        if self.external:
            clash = [k for k in ("driver", "driver_opts", "ipam", "internal") if getattr(self, k)]
            if clash:
                raise ValueError(f"an external network cannot also set {', '.join(f'`{k}`' for k in clash)}")
        return self


class Volume(_External):
    name: str | None = None
    driver: str | None = None
    driver_opts: Options = Field(default_factory=dict)
    external: bool | None = None
    labels: KVMap = Field(default_factory=dict)

    @model_validator(mode="after")
    def _external_alone(self) -> Volume:
        if self.external:
            clash = [k for k in ("driver", "driver_opts") if getattr(self, k)]
            if clash:
                raise ValueError(f"an external volume cannot also set {', '.join(f'`{k}`' for k in clash)}")
        return self


def _one_source(kind: str, obj: Any, keys: tuple[str, ...]) -> None:
    given = [f"`{k}`" for k in keys if getattr(obj, k) not in (None, False)]
    if len(given) != 1:
        names = [f"`{k}`" for k in keys]
        what = f"{', '.join(names[:-1])} or {names[-1]}"
        if given:
            raise ValueError(f"a {kind} takes exactly one of {what}, got {' and '.join(given)}")
        raise ValueError(f"a {kind} needs one of {what}")


class Secret(_External):
    """A top-level secret. ``digest`` is filled by the loader from the content, never read from YAML."""

    name: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool | None = None
    labels: KVMap = Field(default_factory=dict)
    driver: str | None = None
    driver_opts: Options = Field(default_factory=dict)
    template_driver: str | None = None
    digest: str | None = None

    @model_validator(mode="after")
    def _source(self) -> Secret:
        _one_source("secret", self, ("file", "environment", "external"))
        return self


class Config(_External):
    """A top-level config. ``digest`` is filled by the loader from the content, never read from YAML."""

    name: str | None = None
    content: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool | None = None
    labels: KVMap = Field(default_factory=dict)
    template_driver: str | None = None
    digest: str | None = None

    @model_validator(mode="after")
    def _source(self) -> Config:
        _one_source("config", self, ("file", "content", "environment", "external"))
        return self


class ModelDef(Model):
    """A top-level ``models`` entry (language models; accepted, not run by stackd)."""

    name: str | None = None
    model: str
    context_size: Annotated[int, Field(ge=0)] | None = None
    runtime_flags: list[str] = Field(default_factory=list)


class Group(Model):
    """A named cgroup group of the stack (``x-stackd.groups.NAME``)."""

    cpu_weight: Annotated[int, Field(ge=1, le=10000)] | None = None
    cpus: Annotated[float, Field(gt=0)] | None = None  # in CPUs, e.g. 1.5
    memory: Annotated[int, BeforeValidator(parse_bytes)] | None = None  # bytes
    pids: Annotated[int, Field(ge=1)] | None = None


GroupName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")]


class Stack(Model):
    """The whole validated stack. ``name`` is the project name."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    services: dict[Name, Service] = Field(default_factory=dict)
    networks: Annotated[dict[Name, Network], BeforeValidator(_nulls_to_empty)] = Field(default_factory=dict)
    volumes: Annotated[dict[Name, Volume], BeforeValidator(_nulls_to_empty)] = Field(default_factory=dict)
    secrets: dict[Name, Secret] = Field(default_factory=dict)
    configs: dict[Name, Config] = Field(default_factory=dict)
    models: dict[Name, ModelDef] = Field(default_factory=dict)
    groups: dict[GroupName, Group] = Field(default_factory=dict)

    # keys of the Compose file that are not fields: accepted and dropped (validate warns about them)
    IGNORED_KEYS: ClassVar[tuple[str, ...]] = ("version", "include")
    _PREPARES: ClassVar[bool] = True
    _SECTIONS: ClassVar[tuple[str, ...]] = ("services", "networks", "volumes", "secrets", "configs", "models")

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in data.items()
                if k not in cls.IGNORED_KEYS and not (v is None and k in cls._SECTIONS)}
        ext = data.pop("x-stackd", None)
        if isinstance(ext, dict) and "groups" in ext:
            data["groups"] = ext["groups"]
        services = data.get("services")
        if not isinstance(services, dict):
            return data
        named: dict[str, Any] = {}
        uses_default = False
        for key, given in services.items():
            svc = given
            if isinstance(given, dict):
                svc = {**given, "name": key}
                if svc.get("network_mode") is None and not svc.get("networks"):
                    svc["networks"] = {"default": None}
                nets = svc.get("networks")
                uses_default = uses_default or (isinstance(nets, dict | list) and "default" in nets)
            named[key] = svc
        data["services"] = named
        networks = data.get("networks")
        if uses_default and (networks is None or (isinstance(networks, dict) and "default" not in networks)):
            data["networks"] = {**(networks or {}), "default": {}}
        return data

    @field_validator("groups")
    @classmethod
    def _default_group(cls, v: dict[str, Group]) -> dict[str, Group]:
        return v if "default" in v else {**v, "default": Group()}


__all__ = [
    "BindOptions", "BlkioConfig", "BlkioIops", "BlkioRate", "BlkioWeight", "Build", "Config",
    "CredentialSpec", "DependsOn", "Deploy", "Develop", "DeviceMapping", "DeviceRequest", "EnvFile",
    "FileRef", "GenericResource", "GenericResourceSpec", "Group", "Healthcheck", "ImageOptions",
    "Ipam", "IpamPool", "Logging", "Model", "ModelDef", "Network", "Placement", "PlacementPreference", "Port",
    "Provider", "ResourceLimits", "ResourceReservations", "Resources", "RestartPolicy", "Secret", "Service",
    "ServiceHook", "ServiceModelRef", "ServiceNetwork", "ServiceVolume", "Stack", "TmpfsOptions", "Ulimit",
    "UpdateConfig", "Volume", "VolumeOptions", "Watch",
]
