"""What the daemon costs while nothing happens: CPU and memory of ``stackd`` (and of its ``nft
monitor`` child) keeping N running trivial containers (default 100).

Run as root: ``python bench/daemon_idle.py [--containers 100] [--projects 1] [--duration 60]
[--settle 10] [--profile]``. Prints numbers, asserts nothing; the target it prints (under 1 % of
one core and under 100 MB RSS with 100 running containers) is only compared, never enforced.

A daemon is started here as ``stack`` starts it (``python -OO -m stackd.cli.daemon``) with its
own ``STACKD_DATA_ROOT`` and ``STACKD_RUN_DIR`` under a temporary directory; the busybox image
and the stack files are those of ``up_many.py``, the containers are spread over ``--projects``
projects (``idle<pid>p<k>``) and brought up with ``stack up -d`` through that daemon. Once every
container runs and ``--settle`` seconds have passed, the daemon is sampled every ``--interval``
seconds for ``--duration`` seconds from ``/proc``: CPU from ``utime + stime`` (and, apart,
``cutime + cstime``: the CPU of the children it ran and reaped in the window, e.g. the OCI
runtime's ``list``), per thread (the event loop's thread against the worker threads), ``VmRSS``
of the daemon and of ``nft``.

``--profile`` starts the daemon through this script instead (``--profiled-daemon``, not for
direct use): the daemon itself is unchanged, but during the window its event-loop thread runs
under ``cProfile`` and so does every call it hands to a worker thread (``anyio.to_thread``), and
each reconciling pass and its pieces (listing the containers, drift repair, observing, planning)
are timed; ``tracemalloc`` runs from the daemon's start, and the Python memory live at the end
of the window is shown by package and by line. The profile's own overhead inflates the CPU and
memory numbers of such a run; measure without it.

Everything is taken down at the end (``stack down -v`` of every project, then SIGTERM to the
daemon), also after a failure or Ctrl-C, and the host is compared before and after.
``ps_many.py`` uses the same harness (``Harness``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import ipaddress
import json
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from compose_peers import Failed, HostState, report_left, sh, stack_binary, user_env
from up_many import BUSYBOX, busybox_archive, stack_file

from stackd.cli.client import Daemon, daemon_command
from stackd.drivers.network.names import Naming

REPO = Path(__file__).resolve().parent.parent
TARGET_CPU = 1.0  # percent of one core
TARGET_RSS = 100.0  # MB
TICK = os.sysconf("SC_CLK_TCK")
DAEMON_START_TIMEOUT = 30.0
DAEMON_STOP_TIMEOUT = 30.0


# ------------------------------------------------------------------------------- the harness


class Harness:
    """A daemon of the bench's own, the busybox image and the projects brought up through it.

    ``with Harness.open("prefix") as h`` gives a work directory with its own data root and run
    dir; leaving the block (also on an error or Ctrl-C) takes every project down, stops the
    daemon and prints what is left on the host."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.data, self.run = work / "data", work / "run"
        self.env = user_env(STACKD_DATA_ROOT=str(self.data), STACKD_RUN_DIR=str(self.run),
                            PYTHONPYCACHEPREFIX=str(work / "pycache"))
        self.projects: dict[str, Path] = {}  # project -> its stack file
        self.proc: subprocess.Popen[bytes] | None = None
        self.problems: list[str] = []
        self.during: HostState | None = None  # the host while the projects run (``mark``)
        self.phase = "start"  # what the daemon is doing, for ``peaks``
        self.peaks: dict[str, float] = {}  # phase -> highest RSS of the daemon seen in it (MB)

    @classmethod
    @contextlib.contextmanager
    def open(cls, prefix: str) -> Iterator[Harness]:
        if os.geteuid() != 0:
            sys.exit("this benchmark needs root (containers, networks, cgroups)")
        if not BUSYBOX.is_file():
            sys.exit(f"{BUSYBOX} is missing (apt-get install busybox-static)")
        work = Path(tempfile.mkdtemp(prefix=f"stackd-bench-{prefix}-"))
        before = HostState.take(work)
        harness = cls(work)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            yield harness
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave containers
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                harness.teardown()
                for problem in harness.problems:
                    print(f"problem: {problem}")
                after = HostState.take(work)
                report_left(before, after, work, f"{prefix}{os.getpid()}")  # the projects' names
                if harness.during is not None:
                    ours = harness.names()
                    stayed = sorted(i for i in (harness.during.items - before.items) & after.items
                                    if i.split(" ", 1)[-1] in ours or any(p in i for p in harness.projects))
                    for item in stayed:
                        print(f"host check: appeared while the projects ran and is still there: {item}")
                    if not stayed:
                        print("host check: nothing that appeared while the projects ran is still there")
                shutil.rmtree(work, ignore_errors=True)
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, previous)

    # ------------------------------------------------------------------ the daemon

    @property
    def daemon(self) -> Daemon:
        return Daemon(str(self.run / "stackd.sock"))

    def start_daemon(self, argv: list[str] | None = None) -> int:
        """Start the daemon (``argv``: instead of ``daemon_command()``); its pid."""
        self.data.mkdir(parents=True, exist_ok=True)
        command = argv or daemon_command()  # as ``stack`` starts it
        with open(self.data / "stackd.log", "ab") as log:
            self.proc = proc = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=log, start_new_session=True)
        deadline = time.monotonic() + DAEMON_START_TIMEOUT
        while not self.daemon.alive():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Failed(f"stackd did not come up: {self.log_tail()}")
            time.sleep(0.05)
        threading.Thread(target=self._watch_rss, args=(proc,), daemon=True).start()
        return proc.pid

    def _watch_rss(self, proc: subprocess.Popen[bytes]) -> None:
        while proc.poll() is None:
            with contextlib.suppress(OSError):
                rss = rss_mb(proc.pid)
                self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            time.sleep(0.25)

    def peaks_text(self) -> str:
        return ", ".join(f"{phase} {mb:.0f}" for phase, mb in self.peaks.items()) + " (MB)"

    def stop_daemon(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(DAEMON_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.problems.append(f"stackd did not stop {DAEMON_STOP_TIMEOUT:g}s after SIGTERM: killed")
                proc.kill()
                proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM):
            self.problems.append(f"stackd exited {proc.returncode}: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.data / "stackd.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    # ------------------------------------------------------------------ projects

    def stack(self, project: str, *argv: str, timeout: float = 1800, daemon: bool = True) -> str:
        env = self.env if daemon else {**self.env, "STACK_NO_DAEMON": "1"}
        return sh([stack_binary(), "-f", str(self.projects[project]), "-p", project, *argv], env, timeout)

    def import_image(self) -> None:
        sh([stack_binary(), "image", "import", str(busybox_archive(self.work / "busybox.tar"))], self.env)

    def add_project(self, project: str, services: int, *, subnet: str | None = None) -> None:
        """``up_many.py``'s stack of ``services``; on a default network of ``subnet`` when given
        (the default network gets a /24, too small for more than 253 containers)."""
        path = stack_file(self.work / f"{project}.yaml", services)
        if subnet is not None:
            doc = yaml.safe_load(path.read_text())
            doc["networks"] = {"default": {"ipam": {"config": [{"subnet": subnet}]}}}
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.projects[project] = path

    def up(self, project: str) -> float:
        """``stack up -d`` of ``project`` through the daemon; seconds it took."""
        start = time.perf_counter()
        self.stack(project, "up", "-d", "--progress", "quiet")
        return time.perf_counter() - start

    def running(self, project: str) -> int:
        rows = [json.loads(line) for line in self.stack(project, "ps", "--format", "json").splitlines()
                if line.strip()]
        return sum(1 for row in rows if row.get("state") == "running")

    def mark(self) -> None:
        """Note the host as it is with the projects up: what appeared since must go with them."""
        self.during = HostState.take(self.work)

    def settle(self, expected: int, seconds: float) -> int:
        """After the projects' ``up``: count the running containers (fewer than ``expected`` is a
        problem), note the host (``mark``) and let the daemon settle; the count."""
        running = sum(self.running(p) for p in self.projects)
        if running != expected:
            self.problems.append(f"{running} of {expected} containers running after up -d")
        self.mark()
        self.phase = "settle"
        time.sleep(seconds)
        return running

    def names(self) -> set[str]:
        """The bridge, veth and netns names of this run's containers (on the default network)."""
        naming, out = Naming(), set()
        for project, path in self.projects.items():
            services = yaml.safe_load(path.read_text()).get("services", {})
            for network in ("default", f"{project}_default"):
                out.add(naming.bridge(project, network))
                for service in services:
                    container = f"{project}-{service}-1"
                    out |= {naming.veth(container, network), naming.netns(container)}
        return out

    def teardown(self) -> None:
        """``down -v`` of every project (in-process when the daemon is gone), then stop the daemon."""
        self.phase = "teardown"
        alive = self.proc is not None and self.proc.poll() is None
        for project in self.projects:
            try:
                self.stack(project, "down", "-v", "--progress", "quiet", daemon=alive)
            except Failed as exc:
                self.problems.append(f"down of {project}: {exc}")
                with contextlib.suppress(Failed):
                    self.stack(project, "down", "-v", "--progress", "quiet", daemon=alive)
        self.stop_daemon()
        if (self.run / "stackd.pid").exists():  # a daemon started by a `stack` command, not by us
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((self.run / "stackd.pid").read_text().split()[0]), signal.SIGTERM)
                time.sleep(2)


def free_subnet(addresses: int) -> str:
    """A private IPv4 subnet with room for ``addresses`` that no route of the host overlaps."""
    prefix = min(24, 32 - (addresses + 3 - 1).bit_length())
    used = []
    for line in subprocess.run(["ip", "-o", "-4", "route", "show", "table", "all"], capture_output=True,
                               text=True, check=False).stdout.splitlines():
        with contextlib.suppress(ValueError, IndexError):
            used.append(ipaddress.ip_network(line.split()[0], strict=False))
    for candidate in ipaddress.ip_network("10.208.0.0/12").subnets(new_prefix=prefix):
        if not any(candidate.overlaps(u) for u in used if u.prefixlen > 0):
            return str(candidate)
    raise Failed(f"no free /{prefix} in 10.208.0.0/12")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ------------------------------------------------------------------------------- /proc


def _stat(path: Path) -> list[str]:
    """The fields of a ``stat`` file after the command name (field 3 of proc(5) is [0])."""
    text = path.read_text()
    return text[text.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError):
                if int(_stat(Path("/proc", entry, "stat"))[1]) == pid:
                    found.append(int(entry))
    return found


def comm(pid: int) -> str:
    try:
        return Path("/proc", str(pid), "comm").read_text().strip()
    except OSError:
        return "?"


def rss_mb(pid: int) -> float:
    for line in Path("/proc", str(pid), "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of a process: its own (all threads), of its reaped children, per thread."""

    own: float
    reaped: float
    threads: dict[int, float]

    @classmethod
    def of(cls, pid: int) -> Cpu:
        f = _stat(Path("/proc", str(pid), "stat"))
        threads = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                t = _stat(Path("/proc", str(pid), "task", tid, "stat"))
                threads[int(tid)] = (int(t[11]) + int(t[12])) / TICK
        return cls((int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK, threads)


@dataclass
class Samples:
    """What ``sample`` saw of the daemon and its nft child."""

    seconds: float = 0.0
    cpu: float = 0.0  # percent of one core, own threads
    reaped: float = 0.0  # percent of one core, children reaped in the window
    peak: float = 0.0  # highest own CPU over one interval
    main_thread: float = 0.0  # percent of one core
    other_threads: float = 0.0
    threads: int = 0
    rss: list[float] = field(default_factory=list)
    nft_cpu: float | None = None
    nft_rss: list[float] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


def sample(pid: int, duration: float, interval: float) -> Samples:
    """Sample ``pid`` for ``duration`` seconds (see the module docstring)."""
    nft = next((c for c in children(pid) if comm(c) == "nft"), None)
    out = Samples(children=sorted(f"{comm(c)} {c}" for c in children(pid)))
    start, first = time.monotonic(), Cpu.of(pid)
    nft_first = Cpu.of(nft) if nft is not None else None
    last, last_t = first, start
    while True:
        time.sleep(max(0.0, min(interval, start + duration - time.monotonic())))
        now, cpu = time.monotonic(), Cpu.of(pid)
        out.peak = max(out.peak, 100 * (cpu.own - last.own) / max(now - last_t, 1e-6))
        last, last_t = cpu, now
        out.rss.append(rss_mb(pid))
        if nft is not None:
            with contextlib.suppress(OSError):
                out.nft_rss.append(rss_mb(nft))
        if now - start >= duration:
            break
    out.seconds = last_t - start
    out.cpu = 100 * (last.own - first.own) / out.seconds
    out.reaped = 100 * (last.reaped - first.reaped) / out.seconds
    out.main_thread = 100 * (last.threads.get(pid, 0) - first.threads.get(pid, 0)) / out.seconds
    out.other_threads = out.cpu - out.main_thread
    out.threads = len(last.threads)
    if nft is not None and nft_first is not None:
        with contextlib.suppress(OSError):
            out.nft_cpu = 100 * (Cpu.of(nft).own - nft_first.own) / out.seconds
    return out


# ------------------------------------------------------------------------------- the profiled daemon


class _Profiler:
    """cProfile over the daemon's event-loop thread and over every call it hands to a worker
    thread, plus timers around the pieces of a pass; on between SIGUSR1 and SIGUSR2."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.on = False
        self.lock = threading.Lock()
        self.main = cProfile.Profile()
        self.workers: list[cProfile.Profile] = []
        self.timers: dict[str, list[float]] = {}  # name -> [calls, wall, thread cpu]
        self.local = threading.local()

    def time(self, name: str, wall: float, cpu: float) -> None:
        if self.on:
            with self.lock:
                t = self.timers.setdefault(name, [0, 0.0, 0.0])
                t[0] += 1
                t[1] += wall
                t[2] += cpu

    def timed(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            w, c = time.perf_counter(), time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.time(name, time.perf_counter() - w, time.thread_time() - c)
        return call

    def in_worker(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` profiled in the worker thread that runs it (no nesting)."""
        code = getattr(func, "__code__", None)
        where = f" ({Path(code.co_filename).name}:{code.co_firstlineno})" if code is not None else ""
        name = f"to_thread {getattr(func, '__qualname__', repr(func))}{where}"

        def call(*args: Any) -> Any:
            if not self.on or getattr(self.local, "busy", False):
                return func(*args)
            prof = cProfile.Profile()
            self.local.busy = True
            w, c = time.perf_counter(), time.thread_time()
            prof.enable()
            try:
                return func(*args)
            finally:
                prof.disable()
                self.local.busy = False
                self.time(name, time.perf_counter() - w, time.thread_time() - c)
                with self.lock:
                    self.workers.append(prof)
        return call

    def start(self, *_: object) -> None:
        self.on = True
        self.main.enable()

    def stop(self, *_: object) -> None:
        self.main.disable()
        self.on = False
        with self.lock:
            self.main.dump_stats(str(self.out.with_suffix(".loop")))
            stats = pstats.Stats(self.main)
            for prof in self.workers:
                stats.add(prof)
            stats.dump_stats(str(self.out))
            if tracemalloc.is_tracing():
                self.out.with_suffix(".mem").write_text(memory_report(tracemalloc.take_snapshot()))
            self.out.with_suffix(".json").write_text(json.dumps(self.timers))


def memory_report(snapshot: tracemalloc.Snapshot, top: int = 15) -> str:
    """Python memory live now, by package and by line (what ``tracemalloc`` saw since the start)."""
    by_file = snapshot.statistics("filename")
    total = sum(s.size for s in by_file)
    packages: dict[str, int] = {}
    for s in by_file:
        name = s.traceback[0].filename
        key = re.sub(r"^.*/site-packages/([^/]+)/.*$", r"\1", name)
        key = re.sub(r"^.*/(stackd)/(\w+)/.*$", r"\1.\2", key)
        key = re.sub(r"^/usr/lib/python3[.\d]*/.*$", "stdlib", key)
        packages[key] = packages.get(key, 0) + s.size
    lines = [f"Python memory live (tracemalloc, traced since the daemon started): {total / 2**20:.1f} MB",
             "  by package:"]
    lines += [f"  {size / 2**20:8.1f} MB  {name}" for name, size in
              sorted(packages.items(), key=lambda kv: -kv[1])[:top]]
    lines.append("  by line:")
    for s in snapshot.statistics("lineno")[:top]:
        frame = s.traceback[0]
        where = re.sub(r"^.*/site-packages/", "", frame.filename).replace(str(REPO) + "/", "")
        lines.append(f"  {s.size / 2**20:8.1f} MB  {s.count:8d} blocks  {where}:{frame.lineno}")
    return "\n".join(lines)


def profiled_daemon(out: Path) -> None:
    """Run the daemon with ``_Profiler`` hooked in (the bench's ``--profile``)."""
    import anyio.to_thread

    from stackd.cli.daemon import main as daemon_main
    from stackd.drivers.realhost import RealHost
    from stackd.reconcile import loop, passes

    tracemalloc.start()
    prof = _Profiler(out)
    real_run_sync = anyio.to_thread.run_sync

    async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await real_run_sync(prof.in_worker(func), *args, **kwargs)

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    real_pass = getattr(loop, "run_pass")  # noqa: B009 (not exported; replaced for the window)

    async def run_pass(*args: Any, **kwargs: Any) -> Any:
        w = time.perf_counter()
        try:
            return await real_pass(*args, **kwargs)
        finally:
            prof.time("pass (wall, awaits included)", time.perf_counter() - w, 0.0)

    setattr(loop, "run_pass", run_pass)  # noqa: B010
    for owner, name, label in ((passes, "plan", "pass: plan"), (passes, "observe", "pass: observe"),
                               (passes, "restart_plan", "pass: restart_plan"),
                               (RealHost, "list_containers", "RealHost.list_containers"),
                               (RealHost, "repair_drift", "RealHost.repair_drift")):
        setattr(owner, name, prof.timed(label, getattr(owner, name)))
    signal.signal(signal.SIGUSR1, prof.start)
    signal.signal(signal.SIGUSR2, prof.stop)
    daemon_main([])


def report_profile(out: Path, top: int) -> None:
    with contextlib.suppress(OSError):
        print("\n" + out.with_suffix(".mem").read_text())
    timers: dict[str, list[float]] = json.loads(out.with_suffix(".json").read_text())
    print("\ntimed pieces in the window (wall and CPU of the calling thread, ms):")
    print(f"  {'piece':58} {'calls':>6} {'wall/call':>10} {'cpu/call':>9} {'cpu total':>10}")
    for name, (calls, wall, cpu) in sorted(timers.items(), key=lambda kv: -kv[1][2] or -kv[1][1]):
        print(f"  {name[:58]:58} {int(calls):6d} {1000 * wall / calls:10.2f} {1000 * cpu / calls:9.2f} "
              f"{1000 * cpu:10.1f}")
    for key, only, which in (("tottime", "", out), ("cumulative", "/stackd/", out),
                             ("tottime", "", out.with_suffix(".loop")),
                             ("cumulative", "", out.with_suffix(".loop"))):
        text = io.StringIO()
        stats = pstats.Stats(str(which), stream=text)
        table: dict[Any, Any] = getattr(stats, "stats")  # noqa: B009 (the idle wait is no cost)
        for idle in [k for k in table if k[2] in ("<method 'poll' of 'select.epoll' objects>",
                                                   "_run_once", "select", "run_forever")]:
            del table[idle]
        stats.sort_stats(key).print_stats(*([only] if only else []), top)
        body = text.getvalue().replace(str(REPO) + "/", "")
        body = re.sub(r"/\S*/site-packages/", "", body)
        what = "event loop + worker calls" if which == out else "the event loop's thread alone"
        print(f"\ncProfile, by {key}{' (stackd only)' if only else ''}: {what}, "
              f"first {top}, waiting for events left out:")
        print(body[body.find("   ncalls"):].rstrip())


# ------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--containers", type=int, default=100, help="running containers in all (100)")
    parser.add_argument("--projects", type=int, default=1, help="projects they are spread over (1)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds sampled (60)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples (1)")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds to wait once every container runs, before sampling (10)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the daemon in the window and print where its time goes")
    parser.add_argument("--top", type=int, default=25, help="functions shown with --profile (25)")
    parser.add_argument("--profiled-daemon", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profiled_daemon is not None:
        profiled_daemon(args.profiled_daemon)
        return
    if args.containers < 1 or args.projects < 1 or args.projects > args.containers:
        sys.exit("need --containers >= --projects >= 1")
    measure("idle", args, run)


def measure(name: str, args: argparse.Namespace,
            run: Callable[[Harness, argparse.Namespace, list[tuple[str, str]]], None]) -> None:
    """Run a bench in a ``Harness`` of its own (torn down whatever happens) and print the rows
    it gathered as a summary."""
    rows: list[tuple[str, str]] = []
    with Harness.open(name) as h:
        try:
            run(h, args, rows)
        except Failed as exc:
            h.problems.append(f"failed: {exc}")
    if rows:
        print("\nsummary")
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"  {k:{width}}  {v}")


def run(h: Harness, args: argparse.Namespace, rows: list[tuple[str, str]]) -> None:
    prof_out = h.work / "daemon.prof"
    argv = [sys.executable, str(Path(__file__).resolve()), "--profiled-daemon", str(prof_out)] \
        if args.profile else None
    pid = h.start_daemon(argv)
    started_rss = rss_mb(pid)
    h.import_image()
    per, extra = divmod(args.containers, args.projects)
    for k in range(args.projects):
        h.add_project(f"idle{os.getpid()}p{k + 1}", per + (1 if k < extra else 0))
    start = time.perf_counter()
    h.phase = "up"
    for project in h.projects:
        h.up(project)
    up = time.perf_counter() - start
    running = h.settle(args.containers, args.settle)
    print(f"up -d of {args.containers} containers in {args.projects} project(s): {up:.1f}s; "
          f"{running} running")
    h.phase = "window"
    log_size = (h.data / "stackd.log").stat().st_size
    last_event = _last_event(h)
    if args.profile:
        os.kill(pid, signal.SIGUSR1)
    print(f"sampling stackd (pid {pid}) for {args.duration:g}s ...")
    s = sample(pid, args.duration, args.interval)
    if args.profile:
        os.kill(pid, signal.SIGUSR2)
        for _ in range(100):
            if prof_out.with_suffix(".json").exists():
                break
            time.sleep(0.1)
    h.phase = "after"
    events = _last_event(h) - last_event
    with open(h.data / "stackd.log", "rb") as f:
        f.seek(log_size)
        said = [line for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    print(f"children of stackd: {', '.join(s.children) or 'none'}")
    for line in said[:10]:
        print(f"stackd log in the window: {line}")
    cpu_met = s.cpu + s.reaped < TARGET_CPU
    rss_met = max(s.rss) < TARGET_RSS
    rows += [
        ("containers / projects", f"{args.containers} / {args.projects} (running: {running})"),
        ("up -d (all projects)", f"{up:.1f}s"),
        ("window", f"{s.seconds:.1f}s after {args.settle:g}s settling, {len(s.rss)} samples"
                   + (" (profiled: CPU inflated)" if args.profile else "")),
        ("stackd CPU", f"{s.cpu:.2f}% of one core (event-loop thread {s.main_thread:.2f}%, "
                       f"other threads {s.other_threads:.2f}%; {s.threads} threads); "
                       f"peak {s.peak:.1f}% over {args.interval:g}s"),
        ("children reaped, CPU", f"{s.reaped:.2f}% of one core (runtime calls and the like)"),
        ("stackd RSS", f"{min(s.rss):.1f} .. {max(s.rss):.1f} MB (median {statistics.median(s.rss):.1f}; "
                       f"{started_rss:.1f} MB when it started)"),
        ("stackd RSS peaks", h.peaks_text()),
        ("nft monitor", "not running" if s.nft_cpu is None else
         f"CPU {s.nft_cpu:.2f}%, RSS {max(s.nft_rss, default=0):.1f} MB"),
        ("events journaled in window", str(events)),
        ("stackd log lines in window", str(len(said))),
        ("target: CPU < 1% (own + children)", f"{s.cpu + s.reaped:.2f}%: {'met' if cpu_met else 'missed'}"
         + ("" if args.containers == 100 else " (not this run's size)")),
        ("target: RSS < 100 MB", f"{max(s.rss):.1f} MB: {'met' if rss_met else 'missed'}"),
    ]
    if args.profile:
        report_profile(prof_out, args.top)


def _last_event(h: Harness) -> int:
    """The id of the newest journaled event (every project)."""
    last = 0
    for line in h.daemon.stream("GET", "/v1/events", query={"follow": "false"}):
        last = max(last, int(line.get("id", 0)))
    return last


if __name__ == "__main__":
    main()
