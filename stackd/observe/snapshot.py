"""``observe(project, host)``: what the host holds for one project, as the planner's ``Observed``.

Built only from the host's read-only questions (``list_containers``, ``list_networks``,
``list_volumes``, ``list_groups``, and ``image_id`` for the image references asked about); each
driver record becomes the planner's frozen model. Nothing here changes the host, and nothing
decides what should be done about what is found (that is the planner's).
"""

from __future__ import annotations

from collections.abc import Iterable

from stackd.drivers.host import ContainerRecord, HostDriver, ResourceRecord
from stackd.plan.observed import Observed, ObservedContainer, ObservedGroup, ObservedNetwork, ObservedVolume


def container(record: ContainerRecord) -> ObservedContainer:
    return ObservedContainer(name=record.name, service=record.service, number=record.number,
                             config_hash=record.config_hash, state=record.state, exit_code=record.exit_code,
                             image_id=record.image_id, group=record.group,
                             config_parts=dict(record.config_parts))


def network(record: ResourceRecord) -> ObservedNetwork:
    return ObservedNetwork(name=record.name, config_hash=record.config_hash)


def volume(record: ResourceRecord) -> ObservedVolume:
    return ObservedVolume(name=record.name)


def group(record: ResourceRecord) -> ObservedGroup:
    """A group is observed by its key (``background``), not its host path."""
    return ObservedGroup(name=record.key, config_hash=record.config_hash)


def observe(project: str, host: HostDriver, *, images: Iterable[str] = (),
            records: Iterable[ContainerRecord] | None = None) -> Observed:
    """The snapshot of ``project`` on ``host``; ``images``: references whose current id to include
    (those that do not resolve are left out); ``records``: the project's containers when the
    caller has just listed them. Blocking: call it from a worker thread."""
    found = host.list_containers(project) if records is None else records
    containers = [container(r) for r in found if r.project == project]
    resolved: dict[str, str] = {}
    for ref in sorted(set(images)):
        image_id = host.image_id(ref)
        if image_id is not None:
            resolved[ref] = image_id
    return Observed(
        project=project,
        containers=tuple(sorted(containers, key=lambda c: c.name)),
        networks=tuple(sorted((network(r) for r in host.list_networks(project)), key=lambda n: n.name)),
        volumes=tuple(sorted((volume(r) for r in host.list_volumes(project)), key=lambda v: v.name)),
        groups=tuple(sorted((group(r) for r in host.list_groups(project)), key=lambda g: g.name)),
        images=resolved)
