"""Frozen models of what exists on the host for one project (the planner's second input).

``observe/`` fills them from the drivers; the planner only reads them. Collections are tuples
so that a snapshot cannot change after it was taken. Names are host names (container
``demo-web-1``, network ``demo_default``, volume ``demo_dbdata``); a group is named by its key.
An empty ``config_hash`` means "unknown" (a resource stackd did not label): it is never
recreated for a hash mismatch. This module holds data only: no logic that decides anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ContainerState = Literal["created", "running", "paused", "exited", "dead"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObservedContainer(_Frozen):
    """One container of the project, as its labels and runtime state describe it.

    ``config_parts`` are the per-key hashes recorded at creation (``hashing.hash_parts``); empty
    means unknown, and a changed ``config_hash`` is then reported without naming keys.
    """

    name: str
    service: str
    number: int
    config_hash: str
    state: ContainerState
    exit_code: int | None = None
    image_id: str | None = None
    group: str | None = None
    config_parts: dict[str, str] = {}


class ObservedNetwork(_Frozen):
    name: str
    config_hash: str = ""


class ObservedVolume(_Frozen):
    name: str


class ObservedGroup(_Frozen):
    name: str
    config_hash: str = ""


class Observed(_Frozen):
    """Everything of one project on the host.

    ``images`` maps an image reference to the id it currently resolves to in the local image
    store (only the references the project uses need be present). A container whose
    ``image_id`` differs from its reference's current id was made from an older image.
    """

    project: str
    containers: tuple[ObservedContainer, ...] = ()
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()
    groups: tuple[ObservedGroup, ...] = ()
    images: dict[str, str] = {}

    @classmethod
    def empty(cls, project: str) -> Observed:
        """A host on which the project has nothing yet."""
        return cls(project=project)
