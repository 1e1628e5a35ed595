"""The runtime's list is asked again only when something may have changed it: quiet
directories reuse it; a change of this host (``forget``), an exit file, a runtime container
made, a container made, a running process gone, or age ask again; a list that raced with a
change is not kept."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from stackd.drivers.containers.listing import RuntimeStates


class Runtime:
    def __init__(self, pid: int) -> None:
        self.calls = 0
        self.pid = pid
        self.during: Any = None

    def list(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.during is not None:
            self.during()
        return [{"id": "a", "status": "running", "pid": self.pid}]


def test_the_list_is_asked_again_only_when_something_may_have_changed(tmp_path: Path) -> None:
    dirs = [tmp_path / "containers", tmp_path / "exits", tmp_path / "state"]
    for d in dirs:
        d.mkdir()
    containers, exits, state = dirs

    def settle() -> None:
        """Date the directories back: a change within the last second is not trusted."""
        for d in dirs:
            st = os.stat(d)
            if time.time_ns() - st.st_mtime_ns < 5_000_000_000:
                os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))

    settle()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        runtime = Runtime(sleeper.pid)
        states = RuntimeStates(lambda: runtime, lambda: dirs)  # type: ignore[arg-type,return-value]
        assert states.get()["a"]["status"] == "running" and states.running() == {"a"} and runtime.calls == 1
        assert states.version == 1
        states.get()
        assert runtime.calls == 1  # nothing changed
        (exits / "b").write_text("0")
        states.get()
        assert runtime.calls == 2  # an exit (and a change this recent is never trusted)
        states.get()
        assert runtime.calls == 3
        settle()
        states.get()
        states.get()
        assert runtime.calls == 4
        (state / "c").mkdir()
        settle()
        states.get()
        states.get()
        assert runtime.calls == 5  # a runtime container made
        (containers / "d").mkdir()
        settle()
        states.get()
        assert runtime.calls == 6  # a container made
        states.forget()
        states.get()
        assert runtime.calls == 7  # this host changed one
        runtime.during = states.forget  # a change while the runtime lists: not kept
        states.forget()
        states.get()
        runtime.during = None
        states.get()
        assert runtime.calls == 9
        assert states.version == 1  # asked again and again: the same list
        sleeper.kill()
        sleeper.wait()
        assert states.running({"b"}) == set() and runtime.calls == 9  # not asked about a's process
        assert states.running() == set()
        assert runtime.calls == 10  # the running process is gone
        runtime.pid = 0
        states.forget()
        states.get()
        assert states.version == 2  # a list that changed
        aged = RuntimeStates(lambda: runtime, lambda: dirs, every=0.0)  # type: ignore[arg-type,return-value]
        aged.get()
        aged.get()
        assert runtime.calls == 13
    finally:
        if sleeper.poll() is None:
            os.kill(sleeper.pid, 9)
            sleeper.wait()
