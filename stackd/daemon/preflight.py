"""The checks a changing verb makes before it touches the host, so that input that cannot work
stops with every reason at once and leaves nothing half-made:

- ``check_host``: what the host lacks to run containers at all (root, overlayfs, namespaces,
  cgroups, nftables, conmon, an OCI runtime), as ``HostDriver.host_problems`` finds it;
- ``check_plan``: every image the plan needs that is not in the store and will not be built
  (one line per service), and every host port a new container would publish that a process on
  the host or another container already holds (``HostDriver.port_conflicts``; containers the
  same plan removes first do not count).

Each failed check raises one ``StackdError`` whose lines name the services and what to do
(exit code 1). Only asks the host; changes nothing.
"""

from __future__ import annotations

import anyio.to_thread

from stackd.drivers.host import HostDriver
from stackd.errors import PermanentDriverError, PlanError
from stackd.execute.dispatch import missing_image
from stackd.plan import Plan
from stackd.plan.model import CreateContainer, EnsureImage, RemoveContainer
from stackd.spec.models import Stack


async def check_host(host: HostDriver) -> None:
    problems = await anyio.to_thread.run_sync(host.host_problems)
    if problems:
        raise PermanentDriverError("\n".join(problems))


def missing_images(stack: Stack, the_plan: Plan) -> list[str]:
    """One line per service whose image the plan only checks for: the planner asks for a check
    only when the observed store lacks the image and it is not to be built."""
    return [missing_image(op.service, op.image, has_build=stack.services[op.service].build is not None)
            for op in the_plan.ops if isinstance(op, EnsureImage) and op.action == "check"]


def new_containers(stack: Stack, the_plan: Plan) -> list[tuple[str, str]]:
    """``(service, name)`` of every container the plan creates whose service publishes ports."""
    return [(op.service, op.name) for op in the_plan.ops
            if isinstance(op, CreateContainer) and any(p.published for p in stack.services[op.service].ports)]


async def check_plan(host: HostDriver, stack: Stack, the_plan: Plan) -> None:
    """Raise with every missing image and every taken port (see the module docstring)."""
    images = missing_images(stack, the_plan)
    creating = new_containers(stack, the_plan)
    taken: list[str] = []
    if creating:
        going = [op.name for op in the_plan.ops if isinstance(op, RemoveContainer)]
        taken = await anyio.to_thread.run_sync(lambda: host.port_conflicts(stack, creating, replacing=going))
    if images:
        raise PlanError("\n".join(images + taken))
    if taken:
        raise PermanentDriverError("\n".join(taken))
