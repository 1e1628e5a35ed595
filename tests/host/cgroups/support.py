"""Helpers for the cgroup host tests: put child processes into cgroups, and tear everything down.

The teardown here deliberately does not use the driver under test: it kills every process found in
the test's cgroups (they are all the test's own children, the root name is random), removes every
directory below the test root bottom-up in every hierarchy, and reports what it could not remove.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PREFIX = "stkt-cg-"


# joins the cgroups named before "--", then becomes the command after it (same pid)
_JOIN_THEN_EXEC = """
import os, sys
cut = sys.argv.index("--")
for cgroup in sys.argv[1:cut]:
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
        procs.write(str(os.getpid()))
os.execvp(sys.argv[cut + 1], sys.argv[cut + 1:])
"""


def spawn(argv: Sequence[str], cgroups: Sequence[Path], children: list[subprocess.Popen[str]],
          ) -> subprocess.Popen[str]:
    """Start ``argv`` inside ``cgroups`` (joined before it runs anything of its own); it is recorded
    in ``children`` for the finalizer."""
    launcher = [sys.executable, "-I", "-S", "-c", _JOIN_THEN_EXEC, *map(str, cgroups), "--", *argv]
    child = subprocess.Popen(launcher, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children.append(child)
    return child


def python(code: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", code]


def kill_children(children: list[subprocess.Popen[str]]) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.communicate(timeout=10)


def _tree(path: Path) -> list[Path]:
    """``path`` and all directories below it, children first."""
    if not path.is_dir():
        return []
    out: list[Path] = []
    for entry in sorted(path.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            out.extend(_tree(entry))
    out.append(path)
    return out


def purge(mounts: Sequence[Path], rel: str) -> list[str]:
    """Kill what is inside ``rel`` and remove it in every mount; returns what is left (hopefully none)."""
    for mount in mounts:
        for cgroup in _tree(mount / rel.lstrip("/")):
            with contextlib.suppress(OSError):
                for pid in (cgroup / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
    left: list[str] = []
    for mount in mounts:
        for cgroup in _tree(mount / rel.lstrip("/")):
            for _ in range(50):  # dying tasks can keep a cgroup busy for a moment
                try:
                    os.rmdir(cgroup)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
            if cgroup.exists():
                left.append(str(cgroup))
    return left


def retry_transient(action: Callable[[], None], attempts: int = 50) -> None:
    """Run a removal again while the kernel still counts just-killed tasks (no timing asserted)."""
    from stackd.errors import TransientDriverError

    for attempt in range(attempts):
        try:
            action()
            return
        except TransientDriverError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
