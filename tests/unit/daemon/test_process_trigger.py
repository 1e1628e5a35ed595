"""Host events wake only the kept project whose container, bridge, veth or nft table they name;
a change to a table asks for a check of that table; events that may have been lost wake all."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio

from stackd.daemon.process import owners, trigger
from stackd.drivers.containers.drift import LimitWatch
from stackd.drivers.containers.info import Attachment, ContainerInfo
from stackd.drivers.fakehost import FakeHost
from stackd.drivers.host import ContainerRecord
from stackd.drivers.network.names import Naming
from stackd.drivers.watch import Changes
from stackd.reconcile import Reconciler
from stackd.reconcile.loop import _Project
from stackd.spec.models import Stack
from stackd.store import Store

NAMING = Naming()


class _Networks:
    def bridge(self, network: str) -> str:
        return NAMING.bridge("", network)


@dataclass(frozen=True)
class _Host:
    """What of ``RealHost`` the mapping reads: its naming, bridge names and container records."""

    naming: Naming = NAMING
    networks: _Networks = field(default_factory=_Networks)
    infos: tuple[ContainerInfo, ...] = ()

    def container_infos(self) -> list[ContainerInfo]:
        return list(self.infos)


def _kept(project: str) -> _Project:
    state = _Project(project)
    state.stack = Stack.model_validate({"name": project, "services": {"web": {"image": "web:1"}}})
    state.records = [ContainerRecord(name=f"{project}-web-1", project=project, service="web", number=1,
                                     config_hash="h", addresses={"default": "10.0.0.2"})]
    state.wake = anyio.Event()
    return state


def _world(tmp_path: Path) -> tuple[Reconciler, Any]:
    reconciler = Reconciler(FakeHost(), Store(tmp_path / "s.db"))
    reconciler.projects = {p: _kept(p) for p in ("aaa", "bbb")}
    return reconciler, cast(Any, _Host())


def _woken(reconciler: Reconciler) -> dict[str, tuple[bool, bool]]:
    return {p: (s.table, s.deep) for p, s in reconciler.projects.items() if s.wake.is_set()}


def test_each_host_name_belongs_to_its_project(tmp_path: Path) -> None:
    reconciler, host = _world(tmp_path)
    known = owners(reconciler, host)
    assert known["aaa-web-1"] == "aaa" and known[NAMING.table("bbb")] == "bbb"
    assert known[NAMING.bridge("", "aaa_default")] == "aaa"
    assert known[NAMING.veth("bbb-web-1", "bbb_default")] == "bbb"


def test_events_wake_only_the_project_they_concern(tmp_path: Path) -> None:
    async def main() -> None:
        reconciler, host = _world(tmp_path)
        for s in reconciler.projects.values():
            s.table = s.deep = False
        trigger(reconciler, host, Changes(exited=frozenset({"aaa-web-1"})))
        assert _woken(reconciler) == {"aaa": (False, False)}
        reconciler.projects["aaa"].wake = anyio.Event()
        trigger(reconciler, host, Changes(links=frozenset({NAMING.veth("bbb-web-1", "bbb_default"),
                                                           "stkv00000000"})))  # the second: nobody's
        assert _woken(reconciler) == {"bbb": (True, False)}  # a link event: links and table looked at
        reconciler.projects["bbb"].wake = anyio.Event()
        trigger(reconciler, host, Changes(tables=frozenset({NAMING.table("aaa"), "stackd-other"})))
        assert _woken(reconciler) == {"aaa": (True, False)}  # a table check, not a deep pass
        for s in reconciler.projects.values():
            s.wake, s.table = anyio.Event(), False
        trigger(reconciler, host, Changes(written=frozenset({"bbb-web-1", "zzz-web-1"})))
        assert _woken(reconciler) == {"bbb": (False, False)}  # a limit written: a cheap pass
        reconciler.projects["bbb"].wake = anyio.Event()
        trigger(reconciler, host, Changes(written=frozenset({LimitWatch.group_key("aaa", "default"),
                                                             LimitWatch.group_key("zzz", "default")})))
        assert _woken(reconciler) == {"aaa": (False, False)}  # a group's limit, the same
        trigger(reconciler, host, Changes(lost=True))
        assert set(_woken(reconciler)) == {"aaa", "bbb"}

    anyio.run(main)


def test_a_container_up_just_made_is_known_before_a_pass_looked_at_it(tmp_path: Path) -> None:
    """``up`` returns before the reconciler's next pass has seen what it made: an event about
    such a container's veth, or its network's bridge, still wakes its project (the host's
    records say whose it is)."""
    async def main() -> None:
        reconciler, _ = _world(tmp_path)
        fresh = ContainerInfo.from_json(json.dumps({
            "name": "bbb-new-1", "project": "bbb", "service": "new", "number": 1, "image_id": "i",
            "image": "new:1", "cgroups_path": "/stackd/bbb/default/bbb-new-1", "hostname": "new",
            "attachments": [asdict(Attachment("default", "bbb_default", "10.0.0.3"))]}).encode())
        stray = dataclasses.replace(fresh, name="zzz-new-1", project="zzz")  # not kept here
        host = cast(Any, _Host(infos=(fresh, stray)))
        assert owners(reconciler, host)["bbb-new-1"] == "bbb" and "zzz-new-1" not in owners(reconciler, host)
        for s in reconciler.projects.values():
            s.table = s.deep = False
        trigger(reconciler, host, Changes(links=frozenset({NAMING.veth("bbb-new-1", "bbb_default"),
                                                           NAMING.veth("zzz-new-1", "bbb_default")})))
        assert _woken(reconciler) == {"bbb": (True, False)}
        reconciler.projects["ccc"] = _kept("ccc")
        reconciler.projects["ccc"].stack = None  # kept, not looked at yet
        fresh = dataclasses.replace(fresh, name="ccc-new-1", project="ccc", attachments=(
            Attachment("default", "ccc_default", "10.0.1.3"),))
        host = cast(Any, _Host(infos=(fresh,)))
        trigger(reconciler, host, Changes(links=frozenset({NAMING.bridge("", "ccc_default")})))
        assert reconciler.projects["ccc"].wake.is_set()  # its bridge lost its address, say

    anyio.run(main)
