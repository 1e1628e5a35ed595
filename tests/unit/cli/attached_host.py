"""A `stack up` (attached) over a FakeHost in a process of its own, for the signal tests:
``python -m tests.unit.cli.attached_host DIR MODE``. Each container writes ``ready`` to its log
when it starts; with MODE ``force`` a stop waits (up to 20 s) until the container was killed.
What the host holds at the end goes to ``DIR/result.json``; the exit code is the command's."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from stackd.cli.main import run
from stackd.drivers.fakehost import FakeHost

STACK = """\
name: demo
services:
  db: {image: "db:1"}
  web: {image: "web:1", depends_on: [db]}
"""


def main(folder: Path, mode: str) -> int:
    (folder / "stack.yaml").write_text(STACK)
    host = FakeHost(images={"db:1": "i-db", "web:1": "i-web"}, log_dir=folder)

    def hook(method: str, target: str) -> None:
        if method == "start_container":
            host.write_log(target, "ready")
        elif method == "stop_container" and mode == "force":
            deadline = time.monotonic() + 20
            while host.containers[target].state == "running" and time.monotonic() < deadline:
                time.sleep(0.01)

    host.hook = hook
    code = run(["up"], environ={}, cwd=str(folder), host=host)
    result = {"code": code, "states": {n: [c.state, c.exit_code] for n, c in host.containers.items()},
              "kills": host.calls_of("kill_container")}
    (folder / "result.json").write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
