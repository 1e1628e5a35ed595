"""The ``stackd`` process: one per host, holding the pid file's lock, serving the API on a unix
socket, running the reconciler and feeding it the host's events.

``Paths.from_env`` says where things are (``$STACKD_RUN_DIR``, default /run/stackd: the socket
``stackd.sock`` and the pid file ``stackd.pid``; the data root for the store). ``PidFile``
holds an exclusive ``flock`` on the pid file for the process's life: a second daemon is refused
with the first one's pid, and a daemon killed with SIGKILL leaves a file whose lock is gone, so
the next one starts without help. The socket lives in the root-only run directory and is made
``0600``. ``serve`` runs until SIGTERM or SIGINT; the containers are left running (they belong
to their monitors, not to the daemon) and the next daemon adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import uvicorn

from stackd.daemon.api import make_app
from stackd.daemon.manager import Manager
from stackd.drivers.containers.drift import LimitWatch
from stackd.drivers.containers.paths import DATA_ENV, DEFAULT_DATA_ROOT, DEFAULT_RUN_DIR, RUN_ENV
from stackd.drivers.realhost import RealHost
from stackd.drivers.watch import Changes, HostWatch, next_changes
from stackd.errors import StackdError
from stackd.plan import names as plan_names
from stackd.reconcile import Reconciler, Settings

log = logging.getLogger("stackd")

SOCKET_NAME = "stackd.sock"
PID_NAME = "stackd.pid"


@dataclass(frozen=True)
class Paths:
    data_root: Path
    run_dir: Path

    @property
    def socket(self) -> Path:
        return self.run_dir / SOCKET_NAME

    @property
    def pid_file(self) -> Path:
        return self.run_dir / PID_NAME

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        return cls(Path(env.get(DATA_ENV) or DEFAULT_DATA_ROOT), Path(env.get(RUN_ENV) or DEFAULT_RUN_DIR))


class AlreadyRunning(StackdError):
    """Another stackd holds the pid file."""


@contextlib.contextmanager
def pid_file(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock and our pid in it while the block runs (see the module docstring)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise AlreadyRunning(f"stackd already runs (pid {other}, {path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(fd)


def _quiet_child_signals() -> None:
    """In a child forked without exec (pyroute2 forks helpers into network namespaces): forget
    the daemon's signal handling. The event loop's wakeup socket is shared with the parent
    after a fork, so a SIGTERM sent to the child would otherwise reach the parent's loop as if
    the daemon itself had been told to stop."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


os.register_at_fork(after_in_child=_quiet_child_signals)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (the daemon handles SIGTERM and SIGINT itself),
    and with its housekeeping loop woken once a second instead of ten times (the daemon is idle
    most of its life; ``stop`` wakes it at once)."""

    TICK = 1.0

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._wake.set()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # uvicorn counts tenths: its once-a-second work runs each tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.TICK)
            should_exit = await self.on_tick(counter)


def owners(reconciler: Reconciler, host: RealHost) -> dict[str, str]:
    """Which kept project each of its containers, bridges, veths, groups (as ``LimitWatch`` names
    them) and nft table belongs to (by host name), from what the latest passes saw and from the
    host's records of containers (one that ``up`` just made, before a pass looked at it): host
    events about anything else (another daemon's objects, links going away with a container
    being removed) wake nobody."""
    found: dict[str, str] = {}
    for info in host.container_infos():
        if info.project in reconciler.projects:
            found[info.name] = info.project
            found.update({host.naming.veth(info.name, a.network): info.project for a in info.attachments})
            found.update({host.networks.bridge(a.network): info.project for a in info.attachments})
    for project, state in list(reconciler.projects.items()):
        found[host.naming.table(project)] = project
        stack = state.stack
        if stack is None:
            continue
        networks = {key: plan_names.network_name(stack, key) for key in plan_names.stack_networks(stack)}
        found.update({host.networks.bridge(n): project for n in networks.values()})
        found.update({LimitWatch.group_key(project, group): project for group in stack.groups})
        for record in state.records:
            found[record.name] = project
            found.update({host.naming.veth(record.name, networks.get(key, key)): project
                          for key in record.addresses})
    return found


def trigger(reconciler: Reconciler, host: RealHost, changes: Changes) -> None:
    """Wake the passes that ``changes`` concern (see ``owners``); a change to a project's nft
    table asks for a check of the table, and events that may have been lost wake everyone."""
    if changes.lost:
        reconciler.trigger(None, table=True)
        return
    known = owners(reconciler, host)
    for name in changes.exited:
        project = known.get(name) or next((p for p in reconciler.projects if name.startswith(f"{p}-")), None)
        if project is not None:
            reconciler.trigger(project)
    for name in changes.links:
        if name in known:
            reconciler.trigger(known[name], table=True)  # the pass then looks at the links
    for name in changes.tables:
        if name in known:
            reconciler.trigger(known[name], table=True)
    for name in changes.written:  # a cgroup limit written: the pass reads that container's (group's) again
        if name in known:
            reconciler.trigger(known[name])


async def _watch(reconciler: Reconciler, host: RealHost) -> None:
    watch = HostWatch(host.layout, host.naming, written=host.drift_repair.limit_watch)
    await anyio.to_thread.run_sync(watch.open)
    for source, why in watch.off.items():
        log.warning("host events of %s are not watched (%s): the resync finds them", source, why)
    try:
        while True:
            changes = await next_changes(watch, None)
            if changes:
                trigger(reconciler, host, changes)
    finally:
        watch.close()


TRIM_EVERY = 10.0
"""Seconds between two ``malloc_trim`` calls (``_give_back_memory``)."""


async def _give_back_memory(every: float = TRIM_EVERY) -> None:
    """Now and then, hand the memory glibc's allocator holds free back to the kernel: a pass
    over many containers, or a verb, makes many short-lived objects, and the freed pages stay
    in the process otherwise (a trim costs well under a millisecond; not glibc: nothing)."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    while True:
        await anyio.sleep(every)
        await anyio.to_thread.run_sync(trim, 0)


async def serve(paths: Paths, *, settings: Settings | None = None,
                ready: Callable[[str], None] = lambda _: None) -> None:
    """Run the daemon until SIGTERM or SIGINT (see the module docstring)."""
    host = RealHost(paths.data_root, paths.run_dir)
    reconciler = Reconciler(host, host.store, settings=settings)
    app = make_app(Manager(host, host.store, reconciler))
    with contextlib.suppress(FileNotFoundError):
        paths.socket.unlink()  # left by a daemon that was killed: we hold the pid file now
    config = uvicorn.Config(app, uds=str(paths.socket), log_level="warning", lifespan="off",
                            access_log=False, timeout_graceful_shutdown=2)
    server = _Server(config)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(reconciler.run)
            tg.start_soon(_watch, reconciler, host)
            tg.start_soon(_give_back_memory)

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for received in signals:
                        log.info("stopping on %s; the containers keep running",
                                 signal.Signals(received).name)
                        server.stop()
                        return

            tg.start_soon(stop_on_signal)

            async def announce() -> None:
                while not server.started:
                    await anyio.sleep(0.01)
                os.chmod(paths.socket, 0o600)
                ready(str(paths.socket))

            tg.start_soon(announce)
            await server.serve()
            tg.cancel_scope.cancel()
    finally:
        with contextlib.suppress(OSError):
            paths.socket.unlink()
        host.close()
