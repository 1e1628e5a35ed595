"""Waiting for the conditions of ``depends_on``: a dependency's containers started, healthy, or
completed successfully.

``HealthWaiter`` runs a service's healthcheck itself, through ``HostDriver.exec_in``, on the
service's ``interval``/``timeout``/``retries``/``start_period``/``start_interval`` (Docker's
defaults where unset): the first passing probe makes the container healthy; ``retries`` failures
in a row after the start period make it unhealthy, and the error names the service, the
container and the last output. Container states are read with ``list_containers`` every
``poll_interval`` seconds of the injected clock (the host offers no way to be told of an exit).
A failure is a ``WaitFailed``; this module changes nothing on the host except running the probe
commands inside the containers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread

from stackd.drivers.host import ContainerRecord, ExecResult, HostDriver
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
    def of(cls, check: Healthcheck | None) -> HealthSettings | None:
        """The settings of a service's healthcheck; ``None`` when it has none, disables it, or
        leaves its test to the image."""
        if check is None or check.disable or not check.test or check.test[0] == "NONE":
            return None
        kind, *rest = check.test
        argv = tuple(rest) if kind == "CMD" else ("/bin/sh", "-c", " ".join(rest))
        if not argv:
            return None

        def seconds(value: str | None, default: float) -> float:
            parsed = parse_duration(value) if value else 0.0
            return parsed if parsed > 0 else default

        return cls(argv=argv, interval=seconds(check.interval, DEFAULT_INTERVAL),
                   timeout=seconds(check.timeout, DEFAULT_TIMEOUT),
                   retries=check.retries or DEFAULT_RETRIES,
                   start_period=parse_duration(check.start_period) if check.start_period else 0.0,
                   start_interval=seconds(check.start_interval, DEFAULT_START_INTERVAL))


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
                        raise WaitFailed(f"service {service} didn't complete successfully: container "
                                         f"{name} exited with code {record.exit_code}")
                elif record.state == "created":
                    raise WaitFailed(f"service {service}: container {name} was never started")
                else:
                    running = True
            if not running:
                return "exited (0)"
            await self.clock.sleep(self.poll_interval)

    async def healthy(self, stack: Stack, service: str, containers: Sequence[str]) -> str:
        """Every container passes the service's healthcheck."""
        if not containers:
            raise WaitFailed(f"service {service} has no container")
        settings = HealthSettings.of(stack.services[service].healthcheck)
        if settings is None:
            raise WaitFailed(f"service {service} has no healthcheck, so it cannot become healthy "
                             "(add a healthcheck or depend on it with condition: service_started)")
        for name in containers:
            await self._one_healthy(stack.name, service, name, settings)
        return "healthy"

    async def _one_healthy(self, project: str, service: str, name: str, hc: HealthSettings) -> None:
        began = self.clock.now()
        failures = 0
        last = ""
        while True:
            record = self._present(await self.records(project), service, name)
            if record.state not in {"running", "paused"}:
                code = f" (code {record.exit_code})" if record.exit_code is not None else ""
                raise WaitFailed(f"service {service}: container {name} is {record.state}{code} "
                                 "and cannot become healthy" + (f"; last output: {last}" if last else ""))
            if record.health == "healthy":
                return
            passed, last = await self._probe(name, hc)
            if passed:
                return
            starting = self.clock.now() - began < hc.start_period
            if not starting:
                failures += 1
                if failures >= hc.retries:
                    raise WaitFailed(f"service {service} is unhealthy: container {name} failed its "
                                     f"healthcheck {failures} times in a row; last output: {last}")
            await self.clock.sleep(hc.start_interval if starting else hc.interval)

    async def _probe(self, name: str, hc: HealthSettings) -> tuple[bool, str]:
        def run() -> ExecResult:
            return self.host.exec_in(name, hc.argv, timeout=hc.timeout)

        try:
            result = await anyio.to_thread.run_sync(run)
        except DriverError as exc:
            return False, f"the probe could not run: {exc}"
        return result.exit_code == 0, _output(result)
