"""SIGKILL of the daemon at a random moment of ``stack up -d``: the next daemon finishes the work.

Each trial starts ``stack up -d`` of a chain of five services (one waits for the first one's
healthcheck), kills the daemon after a random delay within a normal ``up``'s duration (measured
first), starts a new daemon and checks that the stack converges by itself: one running container
per service, nothing made twice (container directories, runtime containers, cgroups, veths,
namespaces), and every container that ran at the moment of the kill still the same process.
When the kill came before the daemon recorded the new desired state, nothing of the stack may
exist and a second ``up`` (what the user does after a failed command) must bring it up. Then
``down`` leaves nothing of the project on the host.

``STKF_TRIALS`` (default 20) sets the number of trials; ``STKF_SEED`` the first trial's seed
(printed, with each trial's delay, so that a failure can be replayed).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.faults import leftovers
from tests.faults.harness import Project, Stackd, wait_for
from tests.faults.stacks import SLEEPER, service

pytestmark = pytest.mark.faults

SERVICES = ("s1", "s2", "s3", "s4", "s5")
CONVERGE_TIMEOUT = 60.0
CGROUP_HIERARCHIES = ("memory", "pids", "cpu")


def chain() -> dict[str, Any]:
    """s1 (healthcheck) <- s2 (service_healthy) <- s3 <- s4 <- s5, all ``restart: always``."""
    services: dict[str, Any] = {}
    for i, name in enumerate(SERVICES):
        one = service(SLEEPER)
        if i == 0:
            one["healthcheck"] = {"test": ["CMD", "true"], "interval": "200ms", "timeout": "2s", "retries": 3}
        elif i == 1:
            one["depends_on"] = {SERVICES[0]: {"condition": "service_healthy"}}
        else:
            one["depends_on"] = [SERVICES[i - 1]]
        services[name] = one
    return services


@dataclass(frozen=True)
class Timing:
    """A normal ``up -d``: when its first progress line came and when it ended (seconds)."""

    first_line: float
    duration: float


def measure_up(project: Project) -> Timing:
    start = time.monotonic()
    client = project.popen("up", "-d", "--progress", "json")  # progress goes to stderr
    assert client.stderr is not None
    first, lines = None, []
    for line in client.stderr:
        first = first if first is not None else time.monotonic() - start
        lines.append(line)
    code = client.wait(timeout=120)
    duration = time.monotonic() - start
    assert code == 0, "up failed:\n" + "".join(lines)
    return Timing(first if first is not None else 0.0, duration)


def kept(stackd: Stackd, project: Project) -> bool:
    """Whether the daemon keeps ``project`` (``stack ls``)."""
    return any(line.split()[:1] == [project.name] for line in stackd.cli("ls").out.splitlines())


def expected(project: Project) -> set[str]:
    return {f"{project.name}-{s}-1" for s in SERVICES}


def converged(project: Project) -> bool:
    runtime = project.runtime_containers()
    return (set(runtime) == expected(project) and all(c["status"] == "running" for c in runtime.values())
            and set(project.container_dirs()) == expected(project))


def ps_converged(project: Project) -> dict[str, list[dict[str, Any]]] | None:
    rows = project.ps()
    ok = set(rows) == set(SERVICES) and all(len(r) == 1 and r[0]["state"] == "running" for r in rows.values())
    return rows if ok else None


def check_single(project: Project) -> None:
    """Nothing of the stack exists twice on the host."""
    names = expected(project)
    for hierarchy in CGROUP_HIERARCHIES:
        found = project.container_cgroups(hierarchy)
        assert sorted(c.split("/")[-1] for c in found) == sorted(names), f"{hierarchy} cgroups: {found}"
    assert project.netns() == sorted(f"stk-{n}" for n in names), f"namespaces: {project.netns()}"
    veths = {project.veth(n) for n in names}
    assert set(project.bridge_ports()) == veths, f"links on {project.bridge()}: {project.bridge_ports()}"


def diagnosis(project: Project, since: int) -> str:
    """What the daemon said since event ``since``, its log's end and the project's files."""
    events = "\n".join(f"  {e['id']} {e['time']} {e['kind']} {e['resource']}: {e['message']}"
                       for e in project.events(since))
    left = "\n".join(f"  {p}" for name in project.container_dirs()
                     for p in sorted((project.stackd.dirs.data_root / "containers" / name).rglob("*")))
    return f"--- events\n{events}\n--- files left\n{left}\n--- stackd log\n{project.stackd.log_tail()}"


def trial(stackd: Stackd, project: Project, seed: int, timing: Timing) -> str:
    rng = random.Random(seed)
    delay = rng.uniform(timing.first_line * 0.8, timing.duration)
    first_event = project.last_event_id()
    client = project.popen("up", "-d", "--progress", "quiet")
    time.sleep(delay)
    before = project.runtime_containers()
    killed = stackd.kill()
    try:
        client.wait(timeout=60)
    except subprocess.TimeoutExpired:
        client.kill()
        raise AssertionError(f"stack up did not end within 60s of the daemon's death ({killed})") from None
    running_before = {n: c for n, c in before.items() if c["status"] == "running"}
    started = time.monotonic()
    if stackd.pid() is None:
        stackd.start()
        answered = f"new daemon answered in {time.monotonic() - started:.2f}s"
    else:  # the client had not reached the killed daemon yet: it started one itself
        answered = f"the client started a daemon itself (exit {client.returncode})"
    was_kept = kept(stackd, project)
    if not was_kept:
        assert not before and not project.runtime_containers() and not project.container_dirs(), (
            "the daemon was killed before it kept the stack, yet containers exist: "
            f"{project.runtime_containers()} {project.container_dirs()}")
        project.up()
    wait_for(f"seed {seed}: the stack converges after the kill at {delay:.2f}s",
             lambda: converged(project), timeout=CONVERGE_TIMEOUT, every=0.1)
    took = time.monotonic() - started
    rows = wait_for("stack ps shows one running container per service", lambda: ps_converged(project),
                    timeout=20.0, every=0.2)
    after = project.runtime_containers()
    restarted = {n: (c["pid"], after[n]["pid"]) for n, c in running_before.items()
                 if (c["pid"], c["created"]) != (after[n]["pid"], after[n]["created"])}
    assert not restarted, f"seed {seed}: restarted though running at the kill (pids): {restarted}"
    assert all(rows[s][0]["pid"] == after[f"{project.name}-{s}-1"]["pid"] for s in SERVICES), rows
    check_single(project)
    trouble = [f"{e['kind']} {e['resource']}: {e['message']}" for e in project.events(first_event)
               if e["kind"] in ("error", "failed", "drift")]
    down = time.monotonic()
    ran = project.down(check=False)
    down = time.monotonic() - down
    assert ran.code == 0, f"seed {seed}: down failed:\n{ran}\n{diagnosis(project, first_event)}"
    left = leftovers.settle(project)
    assert not left, f"seed {seed}: left on the host after down: {left}"
    return (f"seed {seed}: killed at {delay:.2f}s with {len(running_before)} running, "
            f"{'kept' if was_kept else 'not kept yet (up again)'}; {answered}, "
            f"converged {took:.2f}s after its start; down {down:.2f}s"
            + "".join(f"\n    event: {t}" for t in trouble))


def test_kill_daemon_during_up(running_stackd: Stackd, project: Project) -> None:
    trials = int(os.environ.get("STKF_TRIALS", "20"))
    base = int(os.environ.get("STKF_SEED", str(random.SystemRandom().randrange(1_000_000))))
    print(f"\nkill-during-up: {trials} trials, first seed {base} (replay: STKF_SEED=<seed> STKF_TRIALS=1)")
    project.write(chain())
    for _ in range(2):  # the first up warms the caches; the second is the normal one
        timing = measure_up(project)
        assert ps_converged(project)
        project.down()
    print(f"a normal up -d: first progress at {timing.first_line:.2f}s, done at {timing.duration:.2f}s")
    for i in range(trials):
        print(trial(running_stackd, project, base + i, timing), flush=True)
