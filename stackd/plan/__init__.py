"""The planner: desired state (a ``Stack``) plus observed state (``Observed``) → a ``Plan``.

Pure and deterministic; imports ``stackd.spec`` and ``stackd.graph`` only and never touches the
host (the executor carries plans out).
"""

from stackd.plan.down import plan_down
from stackd.plan.hashing import group_hash, hash_parts, network_hash, service_hash
from stackd.plan.model import (
    CreateContainer,
    CreateGroup,
    CreateNetwork,
    CreateVolume,
    EnsureImage,
    Op,
    Plan,
    RemoveContainer,
    RemoveGroup,
    RemoveNetwork,
    RemoveVolume,
    StartContainer,
    StopContainer,
    UpdateGroup,
    WaitFor,
)
from stackd.plan.observed import Observed, ObservedContainer, ObservedGroup, ObservedNetwork, ObservedVolume
from stackd.plan.options import DownOptions, UpOptions
from stackd.plan.planner import plan

__all__ = [
    "CreateContainer",
    "CreateGroup",
    "CreateNetwork",
    "CreateVolume",
    "DownOptions",
    "EnsureImage",
    "Observed",
    "ObservedContainer",
    "ObservedGroup",
    "ObservedNetwork",
    "ObservedVolume",
    "Op",
    "Plan",
    "RemoveContainer",
    "RemoveGroup",
    "RemoveNetwork",
    "RemoveVolume",
    "StartContainer",
    "StopContainer",
    "UpOptions",
    "UpdateGroup",
    "WaitFor",
    "group_hash",
    "hash_parts",
    "network_hash",
    "plan",
    "plan_down",
    "service_hash",
]
