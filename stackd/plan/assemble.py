"""Put a planner's operations into their final, stable order and check that they fit together.

The planners emit operations in a readable order (resources, then services in start order) but
an operation may wait for one emitted later (a container is stopped only after its dependents
are). ``assemble`` sorts them topologically by ``after``, breaking ties by emission order, so the
result is deterministic and every operation comes after the ones it waits for. A dangling
``after``, a duplicate id or a cycle is a bug in the planner and raises ``PlanError``. Pure.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from stackd.errors import PlanError
from stackd.plan.model import Op, Plan


def assemble(project: str, ops: Iterable[Op], warnings: Iterable[str] = ()) -> Plan:
    items = list(ops)
    index: dict[str, int] = {}
    for i, op in enumerate(items):
        if op.id in index:
            raise PlanError(f"internal planner error: duplicate operation {op.id}")
        index[op.id] = i
    waiting = [0] * len(items)
    followers: list[list[int]] = [[] for _ in items]
    for i, op in enumerate(items):
        for dep in set(op.after):
            if dep not in index:
                raise PlanError(f"internal planner error: {op.id} waits for unknown {dep}")
            waiting[i] += 1
            followers[index[dep]].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    ordered: list[Op] = []
    while ready:
        i = heapq.heappop(ready)
        ordered.append(items[i])
        for j in followers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(ordered) != len(items):
        stuck = sorted(items[i].id for i, n in enumerate(waiting) if n > 0)
        raise PlanError(f"internal planner error: operations wait for each other: {', '.join(stuck)}")
    return Plan(project=project, ops=tuple(ordered), warnings=tuple(warnings))
