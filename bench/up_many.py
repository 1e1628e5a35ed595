"""Time ``stack up -d`` and ``stack down`` for one stack of many trivial containers (default 50
services of one container each, from a busybox image made here).

Run as root: ``python bench/up_many.py [--containers 50] [-n 3] [--no-daemon]``. Through the daemon
by default (started before the runs, stopped at the end). Prints numbers, asserts nothing;
the target it prints (``up -d`` under 3 s for 50 containers) is only compared, never enforced.
The image is ``/bin/busybox`` (Debian's busybox-static) in one layer, written as a ``docker save``
archive and added with ``stack image import`` to a store in a temporary data root; the stack runs
with its own ``STACKD_DATA_ROOT``/``STACKD_RUN_DIR`` and project name, so it touches nothing else
stackd owns. Each container runs ``sleep`` under a shell that exits on SIGTERM, so ``down`` measures
stopping and removing, not a grace period. The host is compared before and after (as in
``compose_peers.py``) and whatever differs is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compose_peers import Failed, HostState, report_left, sh, stack_binary, stop_stackd, user_env

BUSYBOX = Path("/bin/busybox")
IMAGE = "stackd-bench/busybox:1"
TARGET_UP = 3.0
COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def busybox_archive(path: Path) -> Path:
    """A ``docker save`` archive of one layer: busybox and the applets the containers use."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "tmp", "proc", "sys", "dev", "etc"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tf.addfile(info)
        tf.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "sleep"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(info)
    blob = layer.getvalue()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(blob).hexdigest()}"]},
    }).encode()
    with tarfile.open(path, "w") as tf:
        _add(tf, "layer.tar", blob)
        _add(tf, "config.json", config)
        _add(tf, "manifest.json", json.dumps([{"Config": "config.json", "RepoTags": [IMAGE],
                                               "Layers": ["layer.tar"]}]).encode())
    return path


def stack_file(path: Path, n: int) -> Path:
    services = {f"s{i:03d}": {"image": IMAGE, "command": COMMAND} for i in range(1, n + 1)}
    path.write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--containers", type=int, default=50, help="services, one container each (50)")
    parser.add_argument("-n", "--runs", type=int, default=3, help="up/down cycles (median; default 3)")
    parser.add_argument("--no-daemon", action="store_true",
                        help="run up and down in the stack process (default: through the daemon, "
                             "started before the runs)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("this benchmark needs root (containers, networks, cgroups)")
    if not BUSYBOX.is_file():
        sys.exit(f"{BUSYBOX} is missing (apt-get install busybox-static)")
    project = f"many{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="stackd-bench-many-"))
    before = HostState.take(work)
    env = user_env(STACKD_DATA_ROOT=str(work / "data"), STACKD_RUN_DIR=str(work / "run"),
                   PYTHONPYCACHEPREFIX=str(work / "pycache"))
    if args.no_daemon:
        env["STACK_NO_DAEMON"] = "1"
    base = [stack_binary(), "-f", str(stack_file(work / "stack.yaml", args.containers)), "-p", project]
    ups: list[float] = []
    downs: list[float] = []
    problems: list[str] = []
    try:
        sh([stack_binary(), "image", "import", str(busybox_archive(work / "busybox.tar"))], env)
        sh([*base, "config", "-q"], env)  # Python's bytecode cache is written once, before measuring
        if not args.no_daemon:
            sh([*base, "ls"], env)  # the daemon starts outside the measured runs
        for i in range(1, args.runs + 1):
            start = time.perf_counter()
            sh([*base, "up", "-d", "--progress", "quiet"], env)
            ups.append(time.perf_counter() - start)
            running = sum(1 for line in sh([*base, "ps", "--format", "json"], env).splitlines()
                          if json.loads(line).get("state") == "running")
            if running != args.containers:
                problems.append(f"run {i}: {running} of {args.containers} containers running after up -d")
            start, failure = time.perf_counter(), None
            try:
                sh([*base, "down", "--progress", "quiet"], env)
            except Failed as exc:  # timed all the same; a second down takes away what is left
                failure = exc
            downs.append(time.perf_counter() - start)
            if failure is not None:
                problems.append(f"run {i}: down failed: {failure}")
                sh([*base, "down", "--progress", "quiet"], env)
    except Failed as exc:
        problems.append(f"failed: {exc}")
    finally:
        try:
            sh([*base, "down", "-v", "--progress", "quiet"], env)
        except Failed as exc:
            problems.append(f"cleanup: {exc}")
        stop_stackd(work / "run")
        report_left(before, HostState.take(work), work, project)
        shutil.rmtree(work, ignore_errors=True)
    for problem in problems:
        print(f"problem: {problem}")
    if ups:
        up = statistics.median(ups)
        failed = sum(1 for p in problems if "down failed" in p)
        down = f"{statistics.median(downs):.2f}s" if downs else "-"
        down += f" ({failed} of {len(downs)} downs failed, timed to the failure)" if failed else ""
        print(f"{args.containers} containers, median of {len(ups)}: up -d {up:.2f}s, down {down}; "
              f"runs: up {' '.join(f'{u:.2f}' for u in ups)}, down {' '.join(f'{d:.2f}' for d in downs)}")
        verdict = ("met" if up < TARGET_UP else "missed") if args.containers == 50 else "not this run's size"
        print(f"target: up -d under {TARGET_UP:.0f}s for 50 containers: {verdict}")


if __name__ == "__main__":
    main()
