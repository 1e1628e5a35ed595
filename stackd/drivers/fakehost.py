"""``FakeHost``: a strict in-memory ``HostDriver`` for the unit tests of execute, observe and the
service layer (no root, no kernel objects, no time).

Strict means it refuses what the real host would refuse, so that a wrong plan or a wrong
executor fails loudly: creating a container twice, or before its image, networks, volumes or
group exist; starting a running container; stopping or killing one that is not running;
removing a running one; exec in a stopped one. Removing what is absent is not an error (the
``HostDriver`` contract).

Tests steer it: ``fail(method, target)`` injects a failure, ``exits_on_start`` makes a service's
containers exit by themselves (at once, or after some ``list_containers`` calls), ``script_exec``
scripts the results of ``exec_in`` (healthchecks), ``set_state``/``set_health``/``set_restarting``
change a container behind stackd's back, ``write_log`` appends to a container's log (k8s-file
format, when a ``log_dir`` is given), ``script_usage`` feeds ``container_stats``, ``occupy``
makes a host port busy as a listening process would (containers publishing it are refused, as
are two containers publishing the same port), ``drift`` schedules a repair that the next
``repair_drift`` reports (once), ``problems`` lists what the host lacks (``host_problems``)
and ``image_healthchecks`` gives images a ``HEALTHCHECK``. It records every call in ``calls``
(stops' arguments in ``stopped_with``, ``None`` for a signal left to the driver; commands in
``execs``) and counts calls in flight (``max_in_flight``); ``hook`` runs at
the start of every call, outside the lock, so a test can hold calls to see how many run at
once. Thread-safe: the executor calls it from worker threads. It never touches the host.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import threading
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.containers import ports as port_rules
from stackd.drivers.containers.info import PortInfo
from stackd.drivers.host import (
    ContainerRecord,
    ContainerState,
    ExecResult,
    Health,
    HealthRecord,
    Repair,
    ResourceRecord,
)
from stackd.drivers.images.config import Healthcheck as ImageHealthcheck
from stackd.errors import DriverError, PermanentDriverError
from stackd.plan import names
from stackd.spec.models import Stack

_SIGNALS = {"SIGKILL": 9, "KILL": 9, "9": 9, "SIGTERM": 15, "TERM": 15, "15": 15, "SIGINT": 2, "INT": 2,
            "SIGQUIT": 3, "SIGHUP": 1, "SIGUSR1": 10, "SIGUSR2": 12}
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class _Failure:
    error: DriverError
    times: int | None  # None: every call


@dataclass
class _Exit:
    code: int
    after_lists: int


class FakeHost:
    """An in-memory host (implements ``stackd.drivers.host.HostDriver``)."""

    def __init__(self, *, images: Mapping[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.images: dict[str, str] = dict(images or {})
        self.log_dir = log_dir
        self.containers: dict[str, ContainerRecord] = {}
        self.networks: dict[tuple[str, str], ResourceRecord] = {}  # (project, host name)
        self.volumes: dict[tuple[str, str], ResourceRecord] = {}  # (project, host name)
        self.groups: dict[tuple[str, str], ResourceRecord] = {}  # (project, key)
        self.calls: list[tuple[str, str]] = []
        self.stopped_with: dict[str, tuple[float, str | None]] = {}  # container -> (timeout, signal)
        self.execs: list[tuple[str, tuple[str, ...]]] = []  # (container, argv) of every exec_in
        self.in_flight = 0
        self.max_in_flight = 0
        self.hook: Callable[[str, str], None] | None = None
        self._lock = threading.RLock()
        self._failures: dict[tuple[str, str | None], _Failure] = {}
        self._exits: dict[str, _Exit] = {}  # service or container name -> how it exits
        self._countdown: dict[str, int] = {}  # running container -> list calls left before it exits
        self._exec: dict[str, list[ExecResult]] = {}  # service or container name -> results
        self._usage: dict[str, list[CgroupUsage]] = {}
        self._ticks = itertools.count(1)
        self._busy: list[port_rules.Socket] = []
        self._published: dict[str, tuple[PortInfo, ...]] = {}  # container -> the ports it publishes
        self.problems: list[str] = []
        self.image_healthchecks: dict[str, ImageHealthcheck] = {}  # image reference -> its HEALTHCHECK
        self._pids = itertools.count(1000)
        self._drift: list[tuple[str | None, Repair]] = []  # (project or None: any stack, repair)

    # ------------------------------------------------------------------------------ steering

    def fail(self, method: str, target: str | None = None, error: DriverError | None = None,
             times: int | None = 1) -> None:
        """Make ``method`` (on ``target`` — a container, network, volume, group or image name —
        or on anything) raise ``error`` for the next ``times`` calls (``None``: always)."""
        err = error or PermanentDriverError(f"injected failure: {method} {target or ''}".strip())
        self._failures[(method, target)] = _Failure(err, times)

    def exits_on_start(self, target: str, code: int = 0, *, after_lists: int = 0) -> None:
        """Containers of service (or with name) ``target`` exit with ``code`` by themselves once
        started: at once, or after ``after_lists`` calls of ``list_containers``."""
        self._exits[target] = _Exit(code, after_lists)

    def script_exec(self, target: str, *results: ExecResult) -> None:
        """``exec_in`` in containers of service (or with name) ``target`` returns ``results`` in
        order, the last one again and again (default: exit code 0, no output)."""
        self._exec[target] = list(results)

    def script_usage(self, name: str, *usage: CgroupUsage) -> None:
        """``container_stats(name)`` returns ``usage`` in order, the last one again and again."""
        self._usage[name] = list(usage)

    def set_state(self, name: str, state: ContainerState, exit_code: int | None = None) -> None:
        with self._lock:
            self._replace(name, state=state, exit_code=exit_code,
                          pid=self.containers[name].pid if state == "running" else None)

    def set_health(self, name: str, health: Health) -> None:
        with self._lock:
            self._replace(name, health=health)

    def set_restarting(self, name: str, restarting: bool = True) -> None:
        with self._lock:
            self._replace(name, restarting=restarting)

    def occupy(self, port: int, protocol: str = "tcp", address: str = "0.0.0.0") -> None:
        """A process of the host listens on ``address:port`` from now on."""
        self._busy.append(port_rules.Socket(protocol, address, port))

    def write_log(self, name: str, text: str, stream: str = "stdout", when: datetime | None = None) -> None:
        """Append a line to the log of container ``name`` (needs ``log_dir``), written ``when``
        (default: now, on the real clock, as the container monitor would stamp it)."""
        if self.log_dir is None:
            raise ValueError("FakeHost(log_dir=...) is needed to write logs")
        stamp = (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with open(self.log_path(name), "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {stream} F {text}\n")

    def drift(self, resource: str, what: str, why: str, project: str | None = None) -> None:
        """The next ``repair_drift`` (of ``project``'s stack, or of any when ``None``) reports
        ``Repair(resource, what, why)``, once."""
        self._drift.append((project, Repair(resource, what, why)))

    def calls_of(self, method: str) -> list[str]:
        return [target for m, target in self.calls if m == method]

    # ------------------------------------------------------------------------------ internals

    def _now(self) -> datetime:
        return _EPOCH + timedelta(seconds=next(self._ticks))

    @contextmanager
    def _call(self, method: str, target: str) -> Iterator[None]:
        with self._lock:
            self.calls.append((method, target))
            for key in ((method, target), (method, None)):
                failure = self._failures.get(key)
                if failure is None:
                    continue
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        del self._failures[key]
                raise failure.error
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hook is not None:
                self.hook(method, target)
            with self._lock:
                yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def _replace(self, name: str, **changes: object) -> None:
        self.containers[name] = dataclasses.replace(self.containers[name], **changes)  # type: ignore[arg-type]

    def _get(self, name: str) -> ContainerRecord:
        record = self.containers.get(name)
        if record is None:
            raise PermanentDriverError(f"no such container: {name}")
        return record

    def _scripted(self, table: Mapping[str, object], record: ContainerRecord) -> object | None:
        return table.get(record.name, table.get(record.service))

    def _exited(self, name: str, code: int) -> None:
        self._replace(name, state="exited", exit_code=code, pid=None, finished_at=self._now().isoformat())
        self._countdown.pop(name, None)

    # ------------------------------------------------------------------------------ the host

    def host_problems(self) -> list[str]:
        with self._call("host_problems", ""):
            return list(self.problems)

    def port_conflicts(self, stack: Stack, containers: Sequence[tuple[str, str]], *,
                       replacing: Collection[str] = ()) -> list[str]:
        with self._call("port_conflicts", stack.name):
            return self._conflicts(stack, containers, replacing)

    def _conflicts(self, stack: Stack, containers: Sequence[tuple[str, str]],
                   replacing: Collection[str]) -> list[str]:
        going = set(replacing) | {name for _, name in containers}
        owners = {n: f"container {n}" + ("" if c.project == stack.name else f" of stack {c.project}")
                  for n, c in self.containers.items() if n not in going}
        claims = [port_rules.Claim(owners[n], p) for n, ports in self._published.items() if n in owners
                  for p in ports]
        return port_rules.stack_conflicts(stack, containers, claims=claims, sockets=self._busy)

    # ------------------------------------------------------------------------------ images

    def image_id(self, ref: str) -> str | None:
        with self._call("image_id", ref):
            return self.images.get(ref)

    def build_image(self, stack: Stack, service: str, ref: str) -> str:
        with self._call("build_image", ref):
            if service not in stack.services:
                raise PermanentDriverError(f"no such service: {service}")
            digest = hashlib.sha256(f"{ref}:{next(self._ticks)}".encode()).hexdigest()
            self.images[ref] = f"sha256:{digest}"
            return self.images[ref]

    # ------------------------------------------------------------------------------ groups

    def ensure_group(self, stack: Stack, group: str, config_hash: str) -> None:
        with self._call("ensure_group", group):
            if group not in stack.groups:
                raise PermanentDriverError(f"group {group} is not declared")
            self.groups[(stack.name, group)] = ResourceRecord(
                key=group, name=f"/stackd/{stack.name}/{group}", config_hash=config_hash)

    def remove_group(self, project: str, group: str) -> None:
        with self._call("remove_group", group):
            members = [c.name for c in self.containers.values() if c.project == project and c.group == group]
            if members:
                raise PermanentDriverError(f"group {group} still holds containers: {', '.join(members)}")
            self.groups.pop((project, group), None)

    def list_groups(self, project: str) -> list[ResourceRecord]:
        with self._call("list_groups", project):
            return [r for (p, _), r in sorted(self.groups.items()) if p == project]

    # ------------------------------------------------------------------------------ networks

    def ensure_network(self, stack: Stack, key: str, name: str, config_hash: str) -> None:
        with self._call("ensure_network", name):
            self.networks[(stack.name, name)] = ResourceRecord(key=key, name=name, config_hash=config_hash)

    def remove_network(self, project: str, name: str) -> None:
        with self._call("remove_network", name):
            users = [c.name for c in self.containers.values() if name in c.addresses]
            if users:
                raise PermanentDriverError(f"network {name} is still used by {', '.join(sorted(users))}")
            self.networks.pop((project, name), None)

    def list_networks(self, project: str) -> list[ResourceRecord]:
        with self._call("list_networks", project):
            return [r for (p, _), r in sorted(self.networks.items()) if p == project]

    # ------------------------------------------------------------------------------ volumes

    def ensure_volume(self, stack: Stack, key: str, name: str) -> None:
        with self._call("ensure_volume", name):
            self.volumes[(stack.name, name)] = ResourceRecord(key=key, name=name)

    def remove_volume(self, project: str, name: str) -> None:
        with self._call("remove_volume", name):
            self.volumes.pop((project, name), None)

    def list_volumes(self, project: str) -> list[ResourceRecord]:
        with self._call("list_volumes", project):
            return [r for (p, _), r in sorted(self.volumes.items()) if p == project]

    # ------------------------------------------------------------------------------ containers

    def create_container(self, stack: Stack, service: str, number: int, name: str, *, image: str,
                         config_hash: str, config_parts: Mapping[str, str]) -> None:
        with self._call("create_container", name):
            if name in self.containers:
                raise PermanentDriverError(f"container {name} already exists")
            svc = stack.services.get(service)
            if svc is None:
                raise PermanentDriverError(f"no such service: {service}")
            image_id = self.images.get(image)
            if image_id is None:
                raise PermanentDriverError(f"image {image} not found")
            addresses = {}
            for i, key in enumerate(names.service_networks(svc)):
                host_name = names.network_name(stack, key)
                external = names.is_external(names.stack_networks(stack).get(key))
                if not external and (stack.name, host_name) not in self.networks:
                    raise PermanentDriverError(f"network {host_name} does not exist")
                addresses[host_name] = f"10.0.{i}.{number + 1}"
            for key in names.service_volumes(svc):
                host_name = names.volume_name(stack, key)
                declared = (stack.name, host_name) in self.volumes
                if not declared and not names.is_external(stack.volumes.get(key)):
                    raise PermanentDriverError(f"volume {host_name} does not exist")
            group = names.service_group(svc)
            if group and (stack.name, group) not in self.groups:
                raise PermanentDriverError(f"group {group} does not exist")
            taken = self._conflicts(stack, [(service, name)], ())
            if taken:
                raise PermanentDriverError("\n".join(taken))
            ports = self._published[name] = port_rules.published_by(stack, service)
            self.containers[name] = ContainerRecord(
                name=name, project=stack.name, service=service, number=number, config_hash=config_hash,
                config_parts=dict(config_parts), image_id=image_id, group=group, addresses=addresses,
                ports=tuple(p.render() for p in ports), image_healthcheck=self.image_healthchecks.get(image))

    def start_container(self, name: str, *, watch_exit: bool = True) -> None:
        with self._call("start_container", name):
            record = self._get(name)
            if record.state in {"running", "paused"}:
                raise PermanentDriverError(f"container {name} is already running")
            self._replace(name, state="running", exit_code=None, pid=next(self._pids),
                          started_at=self._now().isoformat(), finished_at=None, last_health=None,
                          health="none" if record.last_health else record.health, restarting=False,
                          restarts=record.restarts + (1 if record.started_at else 0))
            script = self._scripted(self._exits, record)
            if isinstance(script, _Exit):
                if script.after_lists <= 0:
                    self._exited(name, script.code)
                else:
                    self._countdown[name] = script.after_lists

    def stop_container(self, name: str, *, timeout: float, signal: str | None = None) -> None:
        with self._call("stop_container", name):
            record = self._get(name)
            if record.state not in {"running", "paused"}:
                raise PermanentDriverError(f"container {name} is not running ({record.state})")
            self.stopped_with[name] = (timeout, signal)
            self._exited(name, 0)

    def kill_container(self, name: str, signal: str) -> None:
        with self._call("kill_container", name):
            record = self._get(name)
            if record.state not in {"running", "paused"}:
                raise PermanentDriverError(f"container {name} is not running ({record.state})")
            number = _SIGNALS.get(signal.upper())
            if number is None:
                raise PermanentDriverError(f"unknown signal {signal}")
            self._exited(name, 128 + number)

    def remove_container(self, name: str, *, volumes: bool) -> None:
        with self._call("remove_container", name):
            record = self.containers.get(name)
            if record is None:
                return
            if record.state in {"running", "paused"}:
                raise PermanentDriverError(f"container {name} is running: stop it first")
            del self.containers[name]
            self._published.pop(name, None)

    def list_containers(self, project: str | None = None) -> list[ContainerRecord]:
        with self._call("list_containers", project or ""):
            for name in list(self._countdown):
                self._countdown[name] -= 1
                if self._countdown[name] <= 0:
                    script = self._scripted(self._exits, self.containers[name])
                    self._exited(name, script.code if isinstance(script, _Exit) else 0)
            return [c for _, c in sorted(self.containers.items()) if project is None or c.project == project]

    def exec_in(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                user: str | None = None, timeout: float | None = None) -> ExecResult:
        with self._call("exec_in", name):
            self.execs.append((name, tuple(argv)))
            record = self._get(name)
            if record.state != "running":
                raise PermanentDriverError(f"container {name} is not running")
            script = self._exec.get(record.name, self._exec.get(record.service))
            if not script:
                return ExecResult(0, b"", b"")
            return script.pop(0) if len(script) > 1 else script[0]

    def log_path(self, name: str) -> str:
        base = self.log_dir if self.log_dir is not None else Path("/nonexistent/stackd-fake-logs")
        return str(base / f"{name}.log")

    def record_health(self, name: str, record: HealthRecord) -> None:
        with self._call("record_health", name):
            self._get(name)
            self._replace(name, health=record.status, last_health=record)

    # ------------------------------------------------------------------------------ usage

    def container_stats(self, name: str) -> CgroupUsage | None:
        with self._call("container_stats", name):
            if name not in self.containers:
                return None
            script = self._usage.get(name)
            if not script:
                return CgroupUsage()
            return script.pop(0) if len(script) > 1 else script[0]

    def group_stats(self, project: str, group: str) -> CgroupUsage | None:
        """What ``script_usage("group:<group>", ...)`` gave (an empty usage by default)."""
        with self._call("group_stats", group):
            if (project, group) not in self.groups:
                return None
            script = self._usage.get(f"group:{group}")
            if not script:
                return CgroupUsage()
            return script.pop(0) if len(script) > 1 else script[0]

    # ------------------------------------------------------------------------------ drift

    def stamp(self, project: str) -> Hashable | None:
        """None (a fake host cannot tell): every pass is a whole one."""
        return None

    def repair_drift(self, stack: Stack, *, deep: bool = False, table: bool = False,
                     links: bool = True) -> list[Repair]:
        with self._call("repair_drift", stack.name):
            due = [r for p, r in self._drift if p in (None, stack.name)]
            self._drift = [(p, r) for p, r in self._drift if p not in (None, stack.name)]
            return due
