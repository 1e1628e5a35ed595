"""Measure image builds: the three example images (nginx, postgres, redis) built cold and again
from the cache, by stackd's builder and, where podman runs on this machine, by ``podman build``.

Prints numbers and ratios, asserts nothing: ``python bench/build_images.py [--repeat N]
[--no-podman]``. Needs root and Debian's archive: ``debian:bookworm-slim`` is bootstrapped
once into a temporary image store (its time is printed on its own). podman cannot pull that
image here, so it is exported from stackd's store and ``podman load``-ed; podman keeps its
storage and configuration in the same temporary directory (cgroupfs, runc, file events, the
nofile limit this machine allows), so the host's podman setup is not touched.

podman builds with ``--network=host``, as stackd's RUN steps run in the host's network namespace
(same work, and no netavark firewall tables left on the host). "cold" means an empty build cache
with the base image present (podman: ``--no-cache``);
"cached" means the same build again with nothing changed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stackd.drivers.builder import BuildCache, BuildEvent, DebianBootstrap, build_image, find_image
from stackd.drivers.builder.mounts import unmount_under
from stackd.drivers.images import export_archive
from stackd.drivers.images.store import ImageStore
from stackd.drivers.runtime import OciRuntime, detect

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = ("nginx", "postgres", "redis")
BASE = "debian:bookworm-slim"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
"""


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def quiet(_event: BuildEvent) -> None:
    pass


class Podman:
    """``podman`` with its storage, run state and configuration under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        conf = root / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.base = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run"),
                     "--storage-driver", "overlay"]

    def __call__(self, *args: str) -> None:
        subprocess.run([*self.base, *args], env=self.env, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def works(self) -> str:
        """Empty when podman can build here, else why not."""
        if shutil.which("podman") is None:
            return "podman is not installed (apt-get install podman)"
        try:
            self("info")
        except subprocess.CalledProcessError as exc:
            return f"podman info failed: {exc.stderr.decode(errors='replace').strip()[:300]}"
        return ""

    def teardown(self) -> None:
        subprocess.run([*self.base, "system", "reset", "--force"], env=self.env, check=False,
                       stdin=subprocess.DEVNULL, capture_output=True)


def median(values: list[float]) -> str:
    return f"{statistics.median(values):7.3f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="cold and cached builds per image (median)")
    parser.add_argument("--no-podman", action="store_true", help="measure stackd only")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("this benchmark needs root (overlay mounts, the OCI runtime, mmdebstrap)")
    tmp = Path(tempfile.mkdtemp(prefix="stackd-bench-build-"))
    try:
        run(tmp, args.repeat, not args.no_podman)
    finally:
        unmount_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, repeat: int, with_podman: bool) -> None:
    store = ImageStore(tmp / "data")
    runtime = OciRuntime(detect(), root=tmp / "runtime")
    print(f"runtime: {runtime.info.name} {runtime.info.version}; {repeat} run(s) per measurement")
    boot = timed(lambda: find_image(store, BASE, [DebianBootstrap(tmp_dir=tmp)], quiet))
    print(f"bootstrap {BASE}: {boot:.1f}s (once, not part of the builds below)\n")
    cache = BuildCache(store)

    def stackd(name: str) -> None:
        build_image(store, runtime, context=REPO / "examples" / name, tags=[f"bench/{name}:latest"],
                    progress=quiet, sources=[])

    def forget(name: str) -> None:
        cache.clear()
        if f"bench/{name}:latest" in store.names():
            store.remove(f"bench/{name}:latest")
        store.gc()

    ours: dict[str, tuple[list[float], list[float]]] = {}
    for name in EXAMPLES:
        cold, cached = [], []
        for _ in range(repeat):
            forget(name)
            cold.append(timed(partial(stackd, name)))
            cached.append(timed(partial(stackd, name)))
        ours[name] = (cold, cached)
    def every() -> None:
        for name in EXAMPLES:
            stackd(name)

    all_cached = [timed(every) for _ in range(max(repeat, 3))]

    theirs: dict[str, tuple[list[float], list[float]]] = {}
    podman_note = "skipped (--no-podman)"
    if with_podman:
        podman = Podman(tmp / "podman")
        podman_note = podman.works()
        if not podman_note:
            try:
                archive = export_archive(store, BASE, tmp / "base.tar")
                podman("load", "-i", str(archive))
                for name in EXAMPLES:
                    context = str(REPO / "examples" / name)
                    tag = f"localhost/bench/{name}:latest"
                    build = partial(podman, "build", "--network=host", "--pull=never", "-t", tag)
                    cold = [timed(partial(build, "--no-cache", context)) for _ in range(repeat)]
                    cached = [timed(partial(build, context)) for _ in range(repeat)]
                    theirs[name] = (cold, cached)
            except subprocess.CalledProcessError as exc:
                podman_note = f"podman build failed: {exc.stderr.decode(errors='replace').strip()[-300:]}"
                theirs.clear()
            finally:
                podman.teardown()

    print(f"{'image':10} {'stackd cold':>12} {'podman cold':>12} {'ratio':>6}   "
          f"{'stackd cached':>13} {'podman cached':>13} {'ratio':>6}")
    for name in EXAMPLES:
        cold, cached = ours[name]
        line = f"{name:10} {median(cold):>12} "
        if name in theirs:
            p_cold, p_cached = theirs[name]
            line += (f"{median(p_cold):>12} {statistics.median(p_cold) / statistics.median(cold):5.2f}x   "
                     f"{median(cached):>13} {median(p_cached):>13} "
                     f"{statistics.median(p_cached) / statistics.median(cached):5.1f}x")
        else:
            line += f"{'-':>12} {'':>6}   {median(cached):>13} {'-':>13}"
        print(line)
    print(f"\nall three again, nothing changed: {median(all_cached)} (stackd)")
    if not theirs:
        print(f"podman: {podman_note}")
    print("ratio = podman time / stackd time (above 1: stackd is faster)")


if __name__ == "__main__":
    main()
