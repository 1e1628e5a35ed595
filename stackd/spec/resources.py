"""The top-level resources of a stack: ``networks``, ``volumes``, ``secrets``, ``configs`` and ``models``.

Each model binds one canonical declaration and enforces what can be judged from it alone (an
external network sets no driver, a secret has exactly one source). The deprecated
``external: {name: x}`` form is read as ``external: true, name: x``. Whether a service's use of a
resource names a declared one is checked by ``stackd.spec.consistency``. ``stackd.spec.models``
re-exports every model. No I/O: ``digest`` fields are filled by the loader, never read here.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, model_validator

from stackd.spec.modelbase import IP, KVMap, Model, Options, Subnet


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
    """A top-level secret. ``digest`` (and ``value``) are filled by the loader, never read from YAML."""

    name: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool | None = None
    labels: KVMap = Field(default_factory=dict)
    driver: str | None = None
    driver_opts: Options = Field(default_factory=dict)
    template_driver: str | None = None
    digest: str | None = None
    value: str | None = Field(default=None, exclude=True, repr=False)
    """For an ``environment:`` source: the variable's value as the loader saw it (``.env`` included),
    so the container gets what was digested. Filled by the loader; never dumped or printed."""

    @model_validator(mode="after")
    def _source(self) -> Secret:
        _one_source("secret", self, ("file", "environment", "external"))
        return self


class Config(_External):
    """A top-level config. ``digest`` (and ``value``) are filled by the loader, never read from YAML."""

    name: str | None = None
    content: str | None = None
    environment: str | None = None
    file: str | None = None
    external: bool | None = None
    labels: KVMap = Field(default_factory=dict)
    template_driver: str | None = None
    digest: str | None = None
    value: str | None = Field(default=None, exclude=True, repr=False)
    """For an ``environment:`` source: the variable's value as the loader saw it (``.env`` included),
    so the container gets what was digested. Filled by the loader; never dumped or printed."""

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


__all__ = ["Config", "Ipam", "IpamPool", "ModelDef", "Network", "Secret", "Volume"]
