"""A plan: the operations that turn what is on the host into what the stack file asks for.

Every operation is a frozen dataclass with
- ``resource``: what it acts on (``service:web:1``, ``network:default``, ``volume:dbdata``,
  ``group:background``, ``image:web`` (keyed by the service that needs the image));
- ``id``: ``"<verb> <resource>"`` (``create service:web:1``), unique within a plan;
- ``cause``: why, in words a user understands (``config hash changed: environment``);
- ``after``: the ids of the operations that must finish first;
- the data the executor needs (host names, hashes to record, conditions to wait for). The
  executor reads a service's full settings from the same ``Stack`` the plan was made from.

``Plan.ops`` is in an order that respects ``after`` (each op comes after the ones it waits
for); ``render()`` is the stable text ``stack up --dry-run`` prints and the golden tests compare.
This module holds data and formatting only: no decisions (those are in ``planner``), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

Condition = Literal["service_started", "service_healthy", "service_completed_successfully"]


@dataclass(frozen=True, kw_only=True)
class Op:
    """Base of every operation."""

    verb: ClassVar[str] = ""
    resource: str
    cause: str
    after: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.verb} {self.resource}"

    def detail(self) -> str:
        """Short text shown in brackets after the id (a host name, an action)."""
        return ""


@dataclass(frozen=True, kw_only=True)
class CreateNetwork(Op):
    verb: ClassVar[str] = "create"
    network: str
    name: str
    config: dict[str, Any]
    config_hash: str

    def detail(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class RemoveNetwork(Op):
    verb: ClassVar[str] = "remove"
    network: str
    name: str

    def detail(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class CreateVolume(Op):
    verb: ClassVar[str] = "create"
    volume: str
    name: str
    config: dict[str, Any]

    def detail(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class RemoveVolume(Op):
    verb: ClassVar[str] = "remove"
    volume: str
    name: str

    def detail(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class CreateGroup(Op):
    verb: ClassVar[str] = "create"
    group: str
    config: dict[str, Any]
    config_hash: str


@dataclass(frozen=True, kw_only=True)
class UpdateGroup(Op):
    verb: ClassVar[str] = "update"
    group: str
    config: dict[str, Any]
    config_hash: str


@dataclass(frozen=True, kw_only=True)
class RemoveGroup(Op):
    verb: ClassVar[str] = "remove"
    group: str


@dataclass(frozen=True, kw_only=True)
class EnsureImage(Op):
    """``build``: build the image from the service's build section; ``check``: it must exist."""

    verb: ClassVar[str] = "ensure"
    service: str
    image: str
    action: Literal["build", "check"]

    def detail(self) -> str:
        return f"{self.action} {self.image}"


@dataclass(frozen=True)
class WaitFor:
    """Before starting, wait until ``containers`` of ``service`` meet ``condition``.

    When ``required`` is false, a dependency that fails or is missing is a warning, not an error.
    """

    service: str
    condition: Condition
    required: bool
    containers: tuple[str, ...]

    def render(self) -> str:
        text = f"{self.service} {self.condition}"
        return text if self.required else text + " (optional)"


@dataclass(frozen=True, kw_only=True)
class CreateContainer(Op):
    """``networks`` are host network names; ``config_parts`` are recorded for later plans."""

    verb: ClassVar[str] = "create"
    service: str
    number: int
    name: str
    image: str
    config_hash: str
    config_parts: dict[str, str]
    group: str | None = None
    networks: tuple[str, ...] = ()

    def detail(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class StartContainer(Op):
    verb: ClassVar[str] = "start"
    service: str
    number: int
    name: str
    wait: tuple[WaitFor, ...] = ()
    watch_exit: bool = True
    """Watch the container a moment after its start and fail when it exits at once (``up``
    reports that); the reconciler's starts do not, as it sees every exit itself."""

    def detail(self) -> str:
        if not self.wait:
            return self.name
        return f"{self.name}; wait {', '.join(w.render() for w in self.wait)}"


@dataclass(frozen=True, kw_only=True)
class StopContainer(Op):
    """``timeout``: seconds before the container is killed; None = the service's own grace period."""

    verb: ClassVar[str] = "stop"
    service: str
    number: int
    name: str
    timeout: float | None = None

    def detail(self) -> str:
        return self.name if self.timeout is None else f"{self.name}; timeout {self.timeout:g}s"


@dataclass(frozen=True, kw_only=True)
class RemoveContainer(Op):
    """``volumes``: also remove the container's anonymous volumes."""

    verb: ClassVar[str] = "remove"
    service: str
    number: int
    name: str
    volumes: bool = False

    def detail(self) -> str:
        return f"{self.name}; with anonymous volumes" if self.volumes else self.name


@dataclass(frozen=True)
class Plan:
    """The operations for one project, in an order that respects ``after``, plus warnings."""

    project: str
    ops: tuple[Op, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.ops

    def get(self, op_id: str) -> Op:
        """The operation with id ``op_id`` (KeyError if absent)."""
        for op in self.ops:
            if op.id == op_id:
                return op
        raise KeyError(op_id)

    def render(self) -> str:
        """Stable text: one line per operation (numbered), then one line per warning."""
        lines: list[str] = []
        if not self.ops:
            lines.append(f"nothing to do for {self.project}")
        else:
            count = len(self.ops)
            lines.append(f"plan for {self.project}: {count} operation{'s' if count != 1 else ''}")
            number = {op.id: i for i, op in enumerate(self.ops, 1)}
            for i, op in enumerate(self.ops, 1):
                text = f"#{i} {op.id}"
                detail = op.detail()
                if detail:
                    text += f" [{detail}]"
                if op.after:
                    refs = sorted(number.get(a, 0) for a in op.after)
                    text += " after " + " ".join(f"#{n}" for n in refs)
                lines.append(f"{text}: {op.cause}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{project, operations: [{op, id, resource, cause, after, ...}], warnings}``."""
        return {
            "project": self.project,
            "operations": [_op_dict(op) for op in self.ops],
            "warnings": list(self.warnings),
        }


def _op_dict(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"op": type(op).__name__, "id": op.id}
    for f in fields(op):
        out[f.name] = _jsonable(getattr(op, f.name))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, WaitFor):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
