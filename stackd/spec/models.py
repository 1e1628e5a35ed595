"""Frozen pydantic models of a validated stack: the whole Compose model plus stackd's own settings.

The models bind the *canonical* tree (see ``stackd.spec.canonical``): every short syntax has
already been turned into its long form, so each field here has one shape. Binding happens once,
at the end of loading (``stackd.spec.validate.bind``); no model is mutated afterwards. Field names
are the Compose keys, so a validation error's location is the YAML path. Unit-carrying values
(durations, byte sizes) stay as written and are checked with ``stackd.spec.units``. This module
holds ``Service``, ``Group`` and ``Stack``; the parts of a service live in
``stackd.spec.serviceparts``, the top-level resources in ``stackd.spec.resources`` and the value
types in ``stackd.spec.modelbase``; the models of the first two are re-exported here.

Field names used by graph/ and plan/ are fixed:
Stack.name, Stack.services, Stack.networks, Stack.volumes, Stack.secrets, Stack.configs,
Stack.groups; Service.name, Service.image, Service.build, Service.depends_on (dict of DependsOn),
Service.network_mode, Service.volumes_from, Service.profiles, Service.scale, Service.deploy,
Service.networks, Service.volumes, Service.ports, Service.environment, Service.env_file,
Service.secrets, Service.configs, Service.cgroup_parent, Service.restart.

Normalisation done here (and nowhere else): ``x-*`` keys are dropped at every model level; the
top-level ``version`` is dropped; ``x-stackd.groups`` becomes ``Stack.groups``, with the implicit
``default`` group added when some service runs in it (no ``cgroup_parent``, or an absolute cgroup
path); a service is named after its key; a service without ``networks`` and without
``network_mode`` joins the implicit ``default`` network, which is then declared; a ``null``
network/volume declaration or service network attachment becomes an empty one. Cross-references
(depends_on, networks, volumes...) are checked by ``stackd.spec.consistency``, not here. No I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from stackd.spec.modelbase import (
    Bytes,
    Command,
    Duration,
    KVMap,
    MicrosOrDuration,
    Model,
    Name,
    NumStr,
    Options,
    PullPolicy,
    Restart,
    StrList,
    Swap,
    nulls_to_empty,
)
from stackd.spec.resources import Config, Ipam, IpamPool, ModelDef, Network, Secret, Volume
from stackd.spec.serviceparts import (
    Attachments,
    BindOptions,
    BlkioConfig,
    BlkioIops,
    BlkioRate,
    BlkioWeight,
    Build,
    CredentialSpec,
    DependsOn,
    Deploy,
    Develop,
    DeviceMapping,
    DeviceRequest,
    EnvFile,
    FileRef,
    FileRefs,
    GenericResource,
    GenericResourceSpec,
    Healthcheck,
    ImageOptions,
    Logging,
    Placement,
    PlacementPreference,
    Port,
    Provider,
    ResourceLimits,
    ResourceReservations,
    Resources,
    RestartPolicy,
    ServiceHook,
    ServiceModelRef,
    ServiceNetwork,
    ServiceVolume,
    TmpfsOptions,
    Ulimit,
    UpdateConfig,
    VolumeOptions,
    Watch,
)
from stackd.spec.units import parse_bytes

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
    configs: FileRefs = Field(default_factory=list)
    container_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")] | None = None
    cpu_count: Annotated[int, Field(ge=0)] | None = None
    cpu_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    cpu_period: Annotated[int, Field(ge=0)] | None = None
    cpu_quota: int | None = None
    cpu_rt_period: MicrosOrDuration | None = None
    cpu_rt_runtime: MicrosOrDuration | None = None
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
    memswap_limit: Swap | None = None
    models: list[str] | dict[str, ServiceModelRef] = Field(default_factory=list)
    network_mode: str | None = None
    networks: Attachments = Field(default_factory=dict)
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
    pull_policy: PullPolicy | None = None
    pull_refresh_after: str | None = None
    read_only: bool | None = None
    restart: Restart | None = None
    runtime: str | None = None
    scale: Annotated[int, Field(ge=0)] | None = None
    secrets: FileRefs = Field(default_factory=list)
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
        return group_of(self.cgroup_parent)


def group_of(cgroup_parent: object) -> str:
    """The group a ``cgroup_parent`` value puts a service in (an absolute cgroup path means ``default``)."""
    if isinstance(cgroup_parent, str) and cgroup_parent and "/" not in cgroup_parent:
        return cgroup_parent
    return "default"

# ---------------------------------------------------------------------------------------- top level


class Group(Model):
    """A named cgroup group of the stack (``x-stackd.groups.NAME``)."""

    cpu_weight: Annotated[int, Field(ge=1, le=10000)] | None = None
    cpus: Annotated[float, Field(gt=0)] | None = None  # in CPUs, e.g. 1.5
    memory: Annotated[int, BeforeValidator(parse_bytes)] | None = None  # bytes
    pids: Annotated[int, Field(ge=1)] | None = None


# the networks of a service that names none (shared by all of them: input data, never changed)
_JOINS_DEFAULT: dict[str, Any] = {"default": {}}

GroupName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")]


class Stack(Model):
    """The whole validated stack. ``name`` is the project name."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    services: dict[Name, Service] = Field(default_factory=dict)
    networks: Annotated[dict[Name, Network], BeforeValidator(nulls_to_empty)] = Field(default_factory=dict)
    volumes: Annotated[dict[Name, Volume], BeforeValidator(nulls_to_empty)] = Field(default_factory=dict)
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
        if isinstance(ext, dict) and ext.get("groups") is not None:  # a null section is an empty one
            data["groups"] = ext["groups"]
        services = data.get("services")
        if not isinstance(services, dict):
            return data
        named: dict[str, Any] = {}
        uses_default = in_default_group = False
        for key, given in services.items():
            svc = given
            if isinstance(given, dict):
                svc = {**given, "name": key}
                if svc.get("network_mode") is None and not svc.get("networks"):
                    svc["networks"] = _JOINS_DEFAULT
                nets = svc.get("networks")
                uses_default = uses_default or (isinstance(nets, dict | list) and "default" in nets)
                in_default_group = in_default_group or group_of(svc.get("cgroup_parent")) == "default"
            named[key] = svc
        data["services"] = named
        networks = data.get("networks")
        if uses_default and (networks is None or (isinstance(networks, dict) and "default" not in networks)):
            data["networks"] = {**(networks or {}), "default": {}}
        groups = data.get("groups")
        if in_default_group and (groups is None or (isinstance(groups, dict) and "default" not in groups)):
            data["groups"] = {**(groups or {}), "default": {}}
        return data


__all__ = [
    "BindOptions", "BlkioConfig", "BlkioIops", "BlkioRate", "BlkioWeight", "Build", "Config",
    "CredentialSpec", "DependsOn", "Deploy", "Develop", "DeviceMapping", "DeviceRequest", "EnvFile",
    "FileRef", "GenericResource", "GenericResourceSpec", "Group", "Healthcheck", "ImageOptions",
    "Ipam", "IpamPool", "Logging", "Model", "ModelDef", "Network", "Placement", "PlacementPreference", "Port",
    "Provider", "ResourceLimits", "ResourceReservations", "Resources", "RestartPolicy", "Secret", "Service",
    "ServiceHook", "ServiceModelRef", "ServiceNetwork", "ServiceVolume", "Stack", "TmpfsOptions", "Ulimit",
    "UpdateConfig", "Volume", "VolumeOptions", "Watch", "group_of",
]
