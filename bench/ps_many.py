"""How fast ``stack ps`` answers when the daemon keeps many containers (default 500).

Run as root: ``python bench/ps_many.py [--containers 500] [--batch 0] [-n 5]``. Prints numbers,
asserts nothing; the target it prints (``stack ps`` under 0.2 s with 500 containers) is only
compared, never enforced.

It uses the harness of ``daemon_idle.py``: a daemon of its own (own data root and run dir under a
temporary directory), the busybox image and stack files of ``up_many.py``, one project of N
services of one container each, brought up with ``stack up -d`` through the daemon (all at once,
or ``--batch B`` services more per ``up -d``; each ``up -d`` is timed). Once every container runs
and ``--settle`` seconds have passed, it times, ``-n`` times each (median):

- ``stack -f FILE -p P ps``: the whole process, as a user in the project's directory runs it
  (interpreter start, imports, loading the file, the API call, printing);
- ``stack -p P ps``: the same without a file (the daemon's kept stack is used);
- the API call alone: ``GET /v1/projects/P/containers`` through ``stackd.cli.client.Daemon``;
- ``stack ps --no-daemon``: the same rows looked up in-process, for comparison;
- ``stack --version``: what starting the CLI costs before any work.

Then ``stack down`` is timed, and the daemon is stopped; everything is taken down also after a
failure or Ctrl-C, and the host is compared before and after.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compose_peers import sh, stack_binary
from daemon_idle import Harness, free_subnet, measure, report_profile, rss_mb

from stackd.cli.client import project_path

TARGET_PS = 0.2


def timed(what: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        what()
        out.append(time.perf_counter() - start)
    return out


def show(values: list[float]) -> str:
    return (f"{1000 * statistics.median(values):8.1f} ms median  (min {1000 * min(values):.1f}, "
            f"max {1000 * max(values):.1f}; n={len(values)})")


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--containers", type=int, default=500, help="services, one container each (500)")
    parser.add_argument("--batch", type=int, default=0,
                        help="bring the services up this many more per `up -d` (0: all at once)")
    parser.add_argument("-n", "--runs", type=int, default=5, help="timings of each kind (median; 5)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the daemon while the API calls are timed (daemon_idle.py --profile)")
    parser.add_argument("--top", type=int, default=25, help="functions shown with --profile (25)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds to wait once every container runs, before timing (5)")
    args = parser.parse_args()
    if args.containers < 1 or args.runs < 1 or args.batch < 0:
        sys.exit("need --containers >= 1, -n >= 1, --batch >= 0")
    measure("psmany", args, run)


def run(h: Harness, args: argparse.Namespace, rows: list[tuple[str, str]]) -> None:
    project = f"psmany{os.getpid()}"
    prof_out = h.work / "daemon.prof"
    pid = h.start_daemon([sys.executable, str(Path(__file__).resolve().parent / "daemon_idle.py"),
                          "--profiled-daemon", str(prof_out)] if args.profile else None)
    h.import_image()
    memory_before = mem_available_mb()
    steps = list(range(args.batch, args.containers, args.batch)) if args.batch else []
    ups: list[tuple[int, float]] = []
    subnet = free_subnet(args.containers)
    print(f"the project's network: {subnet}", flush=True)
    h.phase = "up"
    for n in [*steps, args.containers]:
        h.add_project(project, n, subnet=subnet)
        seconds = h.up(project)
        ups.append((n, seconds))
        print(f"up -d to {n} services: {seconds:.1f}s", flush=True)
    running = h.settle(args.containers, args.settle)
    h.phase = "ps"
    memory_used = memory_before - mem_available_mb()
    daemon_rss = rss_mb(pid)

    file_ps = [stack_binary(), "-f", str(h.projects[project]), "-p", project, "ps"]
    name_ps = [stack_binary(), "-p", project, "ps"]
    no_daemon_env = {**h.env, "STACK_NO_DAEMON": "1"}
    lines = sh(file_ps, h.env).splitlines()  # once, untimed: the bytecode cache is written
    api_rows = h.daemon.get(project_path(project, "containers"))
    print(f"stack ps printed {len(lines)} lines; the API answered {len(api_rows)} rows", flush=True)
    t_file = timed(lambda: sh(file_ps, h.env), args.runs)
    t_name = timed(lambda: sh(name_ps, h.env), args.runs)
    if args.profile:
        os.kill(pid, signal.SIGUSR1)
    t_api = timed(lambda: h.daemon.get(project_path(project, "containers")), args.runs)
    if args.profile:
        os.kill(pid, signal.SIGUSR2)
    t_local = timed(lambda: sh(file_ps, no_daemon_env), args.runs)
    t_version = timed(lambda: subprocess.run([stack_binary(), "--version"], env=h.env, check=True,
                                             capture_output=True), args.runs)
    start = time.perf_counter()
    h.phase = "down"
    h.stack(project, "down", "--progress", "quiet")
    down = time.perf_counter() - start
    h.phase = "after down"
    time.sleep(1)

    ps = statistics.median(t_file)
    rows += [
        ("containers", f"{args.containers} in one project (running after up: {running})"),
        ("up -d", ", ".join(f"{n}: {s:.1f}s" for n, s in ups) + f" (total {sum(s for _, s in ups):.1f}s)"),
        ("memory with them up", f"{memory_used:.0f} MB more in use on the host; "
                                f"stackd RSS {daemon_rss:.0f} MB"),
        ("stack -f FILE -p P ps", show(t_file)),
        ("stack -p P ps (no file)", show(t_name)),
        ("API GET .../containers", show(t_api)),
        ("stack ps --no-daemon", show(t_local)),
        ("stack --version", show(t_version)),
        ("down", f"{down:.1f}s"),
        ("stackd RSS peaks", h.peaks_text()),
        (f"target: stack ps < {TARGET_PS:g}s", f"{ps:.3f}s: {'met' if ps < TARGET_PS else 'missed'}"
         + ("" if args.containers == 500 else " (not this run's size)")),
    ]
    if args.profile:
        for _ in range(100):
            if prof_out.with_suffix(".json").exists():
                break
            time.sleep(0.1)
        print(f"\nprofile of the daemon while the API call was timed {args.runs} times "
              "(passes running meanwhile included):")
        report_profile(prof_out, args.top)


if __name__ == "__main__":
    main()
