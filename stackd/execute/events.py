"""What the executor tells its caller while it works: ``Event``s, one per change of an operation's
status (``waiting`` for dependencies' conditions, ``working`` on the host call, ``done``, ``error``).

Events are plain data; rendering them (Compose-style lines, plain lines, JSON) is the CLI's job.
``describe`` gives the kind and host name of what an operation acts on, for display. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from stackd.plan.model import CreateGroup, EnsureImage, Op, RemoveGroup, UpdateGroup

Status = Literal["waiting", "working", "done", "error"]

KINDS = {"service": "Container", "network": "Network", "volume": "Volume", "group": "Group",
         "image": "Image"}


@dataclass(frozen=True)
class Event:
    """``resource``: the plan's resource id (``service:web:1``); ``name``: what users know it by
    (``demo-web-1``); ``action``: the operation's verb (``create``, ``start``, ``stop``, ``remove``,
    ``update``, ``build``, ``check``, ``kill``) or ``wait`` for a dependency condition; ``message``:
    the cause, the condition reached or the error."""

    resource: str
    action: str
    status: Status
    message: str
    time: datetime
    name: str = ""

    @property
    def kind(self) -> str:
        """``Container``, ``Network``, ``Volume``, ``Group`` or ``Image``."""
        return KINDS.get(self.resource.split(":", 1)[0], self.resource.split(":", 1)[0].capitalize())

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "resource": self.resource, "kind": self.kind,
                "name": self.name, "action": self.action, "status": self.status, "message": self.message}


def describe(op: Op) -> tuple[str, str]:
    """(action, display name) of an operation."""
    if isinstance(op, EnsureImage):
        return op.action, op.image
    if isinstance(op, CreateGroup | UpdateGroup | RemoveGroup):
        return op.verb, op.group
    name = getattr(op, "name", "")
    return op.verb, name if isinstance(name, str) and name else op.resource
