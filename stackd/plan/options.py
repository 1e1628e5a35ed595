"""The options of ``stack up`` and ``stack down`` as the planner sees them.

One class per verb, named after it (``up`` / ``UpOptions``). Plain frozen data: parsing argv
into these is the CLI's job, acting on them is the planner's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class UpOptions:
    """``services``: targets (empty = every service); ``scale``: replicas per service (wins over
    ``scale:``/``deploy.replicas``); ``no_deps``: do not pull in the targets' dependencies;
    ``force_recreate``/``no_recreate``: always/never recreate existing containers; ``build``:
    build every image that has a build section; ``no_build``: never build (missing images fail).
    """

    services: tuple[str, ...] = ()
    remove_orphans: bool = False
    force_recreate: bool = False
    no_recreate: bool = False
    no_deps: bool = False
    scale: Mapping[str, int] = field(default_factory=dict)
    build: bool = False
    no_build: bool = False
    restartable: frozenset[str] | None = None


@dataclass(frozen=True, kw_only=True)
class DownOptions:
    """``volumes``: also remove named volumes and the containers' anonymous volumes;
    ``timeout``: seconds to wait for a container to stop before killing it (None = its own).
    """

    remove_orphans: bool = False
    volumes: bool = False
    timeout: float | None = None
