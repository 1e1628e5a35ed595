"""Golden-text tests of the planner: the text ``stack up --dry-run`` / ``stack down --dry-run`` prints.

Each scenario's rendered plan is compared with ``golden/<scenario>.txt``. After an intended change,
rewrite the files with ``STACKD_UPDATE_GOLDEN=1 pytest tests/unit/plan`` and review the diff.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from stackd.plan import DownOptions, Observed, Plan, UpOptions, plan, plan_down
from tests.unit.plan.plan_fixtures import PROJECT, edit, sample, shuffled, stack, up_from_scratch

GOLDEN = Path(__file__).parent / "golden"


def empty_host() -> Plan:
    return plan(stack(), Observed.empty(PROJECT))


def nothing_changed() -> Plan:
    return plan(stack(), up_from_scratch(stack()).observed)


def db_environment_changed() -> Plan:
    """db recreated; web restarted because it declares ``restart: true`` on db."""
    host = up_from_scratch(stack())
    changed = edit(sample(), "services.db.environment.POSTGRES_USER", "admin")
    return plan(stack(changed), host.observed)


def web_ports_changed() -> Plan:
    """web recreated; sidecar (network_mode: service:web) recreated with it."""
    host = up_from_scratch(stack())
    changed = edit(sample(), "services.web.ports", [{"target": 80, "published": "9090"}])
    return plan(stack(changed), host.observed)


def secret_file_changed() -> Plan:
    host = up_from_scratch(stack())
    changed = edit(sample(), "secrets.dbpass.digest", "d2")
    return plan(stack(changed), host.observed)


def orphan_kept() -> Plan:
    host = up_from_scratch(stack())
    return plan(stack(edit(sample(), "services.worker", ...)), host.observed)


def orphan_removed() -> Plan:
    host = up_from_scratch(stack())
    return plan(stack(edit(sample(), "services.worker", ...)), host.observed, UpOptions(remove_orphans=True))


def scale_up() -> Plan:
    host = up_from_scratch(stack())
    return plan(stack(), host.observed, UpOptions(scale={"worker": 4}))


def scale_down() -> Plan:
    host = up_from_scratch(stack(edit(sample(), "services.worker.scale", 4)))
    return plan(stack(), host.observed)


def target_with_dependencies() -> Plan:
    return plan(stack(), Observed.empty(PROJECT), UpOptions(services=("worker",)))


def down() -> Plan:
    return plan_down(stack(), up_from_scratch(stack()).observed)


def down_volumes() -> Plan:
    return plan_down(stack(), up_from_scratch(stack()).observed, DownOptions(volumes=True, timeout=5))


def down_without_file() -> Plan:
    return plan_down(None, up_from_scratch(stack()).observed)


SCENARIOS: dict[str, Callable[[], Plan]] = {f.__name__: f for f in (
    empty_host, nothing_changed, db_environment_changed, web_ports_changed, secret_file_changed,
    orphan_kept, orphan_removed, scale_up, scale_down, target_with_dependencies, down, down_volumes,
    down_without_file)}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name: str) -> None:
    text = SCENARIOS[name]().render()
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("STACKD_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; run with STACKD_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_nothing_changed_is_one_line() -> None:
    assert nothing_changed().render() == f"nothing to do for {PROJECT}\n"


@pytest.mark.parametrize("seed", range(5))
def test_same_text_whatever_the_dict_and_container_order(seed: int) -> None:
    rng = random.Random(seed)
    base = up_from_scratch(stack()).observed
    changed = edit(sample(), "services.db.environment.POSTGRES_USER", "admin")
    want = plan(stack(changed), base, UpOptions(scale={"worker": 3})).render()
    containers = list(base.containers)
    rng.shuffle(containers)
    observed = base.model_copy(update={"containers": tuple(containers)})
    got = plan(stack(shuffled(changed, rng)), observed, UpOptions(scale={"worker": 3})).render()
    assert got == want
    assert plan(stack(shuffled(sample(), rng)), Observed.empty(PROJECT)).render() == empty_host().render()


def test_scenarios_converge() -> None:
    """Carrying out a scenario's plan leaves nothing to do for the same stack."""
    host = up_from_scratch(stack())
    changed = stack(edit(sample(), "services.db.environment.POSTGRES_USER", "admin"))
    host.apply(plan(changed, host.observed, UpOptions(scale={"worker": 3})))
    assert plan(changed, host.observed, UpOptions(scale={"worker": 3})).empty
    host.apply(plan_down(changed, host.observed, DownOptions(volumes=True)))
    assert not host.containers and not host.networks and not host.groups
    assert not host.volumes
