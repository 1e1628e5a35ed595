"""Frozen pydantic models of a validated stack (the Compose model plus stackd's own settings).

The models bind the *canonical* tree (see ``stackd.spec.canonical``): every short syntax has
already been turned into its long form, so each field here has exactly one shape. Binding
happens once, at the end of loading; no model is mutated afterwards.

NOTE: this is the seed of the model. Field names used by graph/ and plan/ are fixed:
Stack.name, Stack.services, Stack.networks, Stack.volumes, Stack.secrets, Stack.configs,
Stack.groups; Service.name, Service.image, Service.build, Service.depends_on (dict of DependsOn),
Service.network_mode, Service.volumes_from, Service.profiles, Service.scale, Service.deploy,
Service.networks, Service.volumes, Service.ports, Service.environment, Service.env_file,
Service.secrets, Service.configs, Service.cgroup_parent, Service.restart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DependsOn(Model):
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = (
        "service_started")
    required: bool = True
    restart: bool = False


class Group(Model):
    """A named cgroup group of the stack (``x-stackd.groups.NAME``)."""

    cpu_weight: int | None = Field(default=None, ge=1, le=10000)
    cpu_quota: float | None = Field(default=None, gt=0)  # in CPUs, e.g. 1.5
    memory: int | None = None  # bytes
    pids: int | None = Field(default=None, ge=1)


class Service(Model):
    name: str
    image: str | None = None
    build: dict[str, Any] | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str | None] = {}
    env_file: list[dict[str, Any]] = []
    depends_on: dict[str, DependsOn] = {}
    network_mode: str | None = None
    networks: dict[str, dict[str, Any] | None] = {}
    volumes: list[dict[str, Any]] = []
    volumes_from: list[str] = []
    ports: list[dict[str, Any]] = []
    secrets: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    profiles: list[str] = []
    scale: int | None = None
    deploy: dict[str, Any] | None = None
    restart: str | None = None
    cgroup_parent: str | None = None


class Stack(Model):
    name: str
    services: dict[str, Service] = {}
    networks: dict[str, dict[str, Any] | None] = {}
    volumes: dict[str, dict[str, Any] | None] = {}
    secrets: dict[str, dict[str, Any]] = {}
    configs: dict[str, dict[str, Any]] = {}
    groups: dict[str, Group] = {}
