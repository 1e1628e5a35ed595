"""Waiting for the conditions of ``depends_on``: a dependency's containers started, healthy, or
completed successfully.

``HealthWaiter`` runs a service's healthcheck itself, through ``HostDriver.exec_in``, on the
service's ``interval``/``timeout``/``retries``/``start_period``/``start_interval`` (Docker's
defaults where unset): the first passing probe makes the container healthy; ``retries`` failures
in a row after the start period make it unhealthy, and the error names the service, the
container and the last output. Container states are read with ``list_containers`` every
``poll_interval`` seconds of the injected clock (the host offers no way to be told of an exit).
A dependency that exits while awaited is reported with the last lines of its log.

Every probe's result is handed to ``HostDriver.record_health`` (``next_health`` applies Docker's
rules to the previous result), so that ``stack ps`` shows what the last probe found. There is no
daemon probing in the background yet, so ``refresh`` (what ``ps`` calls) probes once every
running container whose last result is older than its healthcheck's ``interval`` (or missing):
``ps`` is never staler than Docker's would be, and repeated ``ps`` calls within an interval cost
nothing. A failure is a ``WaitFailed``; this module changes nothing on the host except running
the probe commands inside the containers and recording their results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import anyio
import anyio.to_thread

from stackd.drivers.host import ContainerRecord, ExecResult, HealthRecord, HostDriver
from stackd.drivers.images.config import Healthcheck as ImageHealthcheck
from stackd.drivers.monitor.logs import read_logs
from stackd.errors import DriverError, StackdError
from stackd.execute.clock import Clock
from stackd.spec.models import Healthcheck, Stack
from stackd.spec.units import parse_duration

# Docker's defaults for a healthcheck's timing
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_INTERVAL = 5.0
OUTPUT_KEPT = 400
LOG_LINES = 5


class WaitFailed(StackdError):
    """A dependency condition cannot be met (the message names the service and why)."""


@dataclass(frozen=True)
class HealthSettings:
    argv: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0
    start_interval: float = DEFAULT_START_INTERVAL

    @classmethod
    def of(cls, check: Healthcheck | None, image: ImageHealthcheck | None = None) -> HealthSettings | None:
        """The settings of a container's healthcheck, Docker's way: the service's fields over those
        of its image's ``HEALTHCHECK``; ``None`` when neither has a test, or the service disables
        it (``disable: true``, ``test: [NONE]``) or the image does (``HEALTHCHECK NONE``)."""
        if check is not None and (check.disable or (check.test and check.test[0] == "NONE")):
            return None
        test = tuple(check.test) if check is not None and check.test else image.test if image else ()
        if not test or test[0] == "NONE":
            return None
        kind, *rest = test
        argv = tuple(rest) if kind == "CMD" else ("/bin/sh", "-c", " ".join(rest))
        if not argv:
            return None

        def seconds(value: str | None, nanoseconds: int, default: float) -> float:
            parsed = parse_duration(value) if value else nanoseconds / 1e9
            return parsed if parsed > 0 else default

        own = check or Healthcheck()
        theirs = image or ImageHealthcheck(test=())
        interval = seconds(own.interval, theirs.interval, DEFAULT_INTERVAL)
        # During the start period Docker probes every start_interval (5 s unless set); a check
        # that asks for a shorter interval is probed at that pace from the start instead, so a
        # quick service is seen healthy as soon as it is.
        start_interval = seconds(own.start_interval, theirs.start_interval, 0.0) or \
            min(interval, DEFAULT_START_INTERVAL)
        return cls(argv=argv, interval=interval,
                   timeout=seconds(own.timeout, theirs.timeout, DEFAULT_TIMEOUT),
                   retries=own.retries or theirs.retries or DEFAULT_RETRIES,
                   start_period=seconds(own.start_period, theirs.start_period, 0.0),
                   start_interval=start_interval)

    @classmethod
    def of_container(cls, stack: Stack, record: ContainerRecord) -> HealthSettings | None:
        """The settings of ``record``'s healthcheck (its service's over its image's)."""
        svc = stack.services.get(record.service)
        return cls.of(svc.healthcheck if svc is not None else None, record.image_healthcheck)


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time as hosts write it (``Z``, nanoseconds), ``None`` when there is none."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def next_health(prev: HealthRecord | None, passed: bool, output: str, *, counting: bool, retries: int,
                checked_at: str, started_at: str | None) -> HealthRecord:
    """The health after one probe (Docker's rules): a pass makes it healthy; a failure that
    counts (after the start period) lengthens the failing streak, and ``retries`` in a row make
    it unhealthy; until then it keeps its status (``starting`` before the first pass). Pure."""
    if passed:
        return HealthRecord("healthy", 0, output, checked_at, started_at)
    streak = (prev.failing_streak if prev is not None else 0) + (1 if counting else 0)
    kept = prev.status if prev is not None and prev.status != "none" else "starting"
    return HealthRecord("unhealthy" if streak >= retries else kept, streak, output, checked_at, started_at)


def _output(result: ExecResult) -> str:
    text = (result.stdout + result.stderr).decode("utf-8", errors="replace").strip()
    return text[-OUTPUT_KEPT:] if text else f"exit code {result.exit_code}"


class HealthWaiter:
    """Checks and waits for dependency conditions on one host."""

    def __init__(self, host: HostDriver, clock: Clock, *, poll_interval: float = 0.5) -> None:
        self.host, self.clock, self.poll_interval = host, clock, poll_interval

    async def records(self, project: str) -> dict[str, ContainerRecord]:
        found = await anyio.to_thread.run_sync(self.host.list_containers, project)
        return {r.name: r for r in found}

    @staticmethod
    def _present(records: dict[str, ContainerRecord], service: str,
                 container: str) -> ContainerRecord:
        record = records.get(container)
        if record is None:
            raise WaitFailed(f"service {service}: container {container} does not exist")
        return record

    async def started(self, project: str, service: str, containers: Sequence[str]) -> str:
        """Every container was started (it runs, is paused, or has already exited)."""
        if not containers:
            raise WaitFailed(f"service {service} has no container")
        records = await self.records(project)
        for name in containers:
            record = self._present(records, service, name)
            if record.state not in {"running", "paused", "exited"}:
                raise WaitFailed(f"service {service}: container {name} is {record.state}, not started")
        return "started"

    async def completed(self, project: str, service: str, containers: Sequence[str]) -> str:
        """Every container has exited with code 0 (waits while any runs)."""
        if not containers:
            raise WaitFailed(f"service {service} has no container")
        while True:
            records = await self.records(project)
            running = False
            for name in containers:
                record = self._present(records, service, name)
                if record.state in {"exited", "dead"}:
                    if record.exit_code != 0:
                        tail = await self.tail(name)
                        raise WaitFailed(f"service {service} didn't complete successfully: container "
                                         f"{name} exited with code {record.exit_code}{tail}")
                elif record.state == "created":
                    raise WaitFailed(f"service {service}: container {name} was never started")
                else:
                    running = True
            if not running:
                return "exited (0)"
            await self.clock.sleep(self.poll_interval)

    async def healthy(self, stack: Stack, service: str, containers: Sequence[str]) -> str:
        """Every container passes its healthcheck (its service's, over its image's)."""
        if not containers:
            raise WaitFailed(f"service {service} has no container")
        for name in containers:
            record = self._present(await self.records(stack.name), service, name)
            settings = HealthSettings.of_container(stack, record)
            if settings is None:
                raise WaitFailed(f"service {service} has no healthcheck, so it cannot become healthy "
                                 "(add a healthcheck or depend on it with condition: service_started)")
            await self._one_healthy(stack.name, service, name, settings)
        return "healthy"

    async def _one_healthy(self, project: str, service: str, name: str, hc: HealthSettings) -> None:
        began = self.clock.now()
        last = ""
        prev: HealthRecord | None = None
        first = True
        while True:
            record = self._present(await self.records(project), service, name)
            if record.state not in {"running", "paused"}:
                code = f" (code {record.exit_code})" if record.exit_code is not None else ""
                probe = f"; last probe output: {last}" if last else ""
                raise WaitFailed(f"service {service}: container {name} is {record.state}{code} and cannot "
                                 f"become healthy{probe}{await self.tail(name)}")
            if record.health == "healthy" and self._fresh(record.last_health, hc):
                return
            if first:
                prev, first = record.last_health, False
            passed, last = await self._probe(name, hc)
            starting = self.clock.now() - began < hc.start_period
            prev = next_health(prev, passed, last, counting=not starting, retries=hc.retries,
                               checked_at=self.clock.wall().isoformat(), started_at=record.started_at)
            await self._record(name, prev)
            if passed:
                return
            if prev.status == "unhealthy":
                raise WaitFailed(f"service {service} is unhealthy: container {name} failed its "
                                 f"healthcheck {prev.failing_streak} times in a row; last output: {last}")
            await self.clock.sleep(hc.start_interval if starting else hc.interval)

    def _fresh(self, last: HealthRecord | None, hc: HealthSettings) -> bool:
        """Whether a recorded result is recent enough to stand for a probe now (a health a host
        reports without a result, as a test host may, is taken as it is)."""
        if last is None:
            return True
        when = parse_time(last.checked_at)
        return when is not None and (self.clock.wall() - when).total_seconds() < hc.interval

    async def tail(self, name: str) -> str:
        """``; its last output:`` and the last lines of the container's log ("" without any)."""
        def read() -> list[str]:
            try:
                return [line.text for line in read_logs(Path(self.host.log_path(name)), tail=LOG_LINES)]
            except (OSError, ValueError, DriverError):
                return []

        lines = await anyio.to_thread.run_sync(read)
        return "; its last output:\n" + "\n".join(f"  {text}" for text in lines) if lines else ""

    async def _record(self, name: str, record: HealthRecord) -> None:
        with contextlib.suppress(DriverError):  # the container went meanwhile: nothing to keep
            await anyio.to_thread.run_sync(self.host.record_health, name, record)

    async def refresh(self, stack: Stack, records: Sequence[ContainerRecord]) -> list[ContainerRecord]:
        """``records`` with their health brought up to date: each running container of a service
        with a healthcheck whose last result is older than the check's interval is probed once
        (all at once), and the result recorded."""
        out = list(records)

        async def one(i: int, record: ContainerRecord, hc: HealthSettings) -> None:
            passed, output = await self._probe(record.name, hc)
            now = self.clock.wall()
            started = parse_time(record.started_at)
            counting = hc.start_period <= 0 or started is None or \
                (now - started).total_seconds() >= hc.start_period
            last = record.last_health if record.health != "none" else None
            result = next_health(last, passed, output, counting=counting, retries=hc.retries,
                                 checked_at=now.isoformat(), started_at=record.started_at)
            await self._record(record.name, result)
            out[i] = replace(record, health=result.status, last_health=result)

        async with anyio.create_task_group() as tg:
            for i, record in enumerate(records):
                hc = HealthSettings.of_container(stack, record)
                if record.state == "running" and hc is not None and not (
                        record.last_health is not None and self._fresh(record.last_health, hc)):
                    tg.start_soon(one, i, record, hc)
        return out

    async def _probe(self, name: str, hc: HealthSettings) -> tuple[bool, str]:
        def run() -> ExecResult:
            return self.host.exec_in(name, hc.argv, timeout=hc.timeout)

        try:
            result = await anyio.to_thread.run_sync(run)
        except DriverError as exc:
            return False, f"the probe could not run: {exc}"
        return result.exit_code == 0, _output(result)
