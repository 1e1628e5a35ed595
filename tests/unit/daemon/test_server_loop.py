"""The daemon's uvicorn server wakes its housekeeping loop seldom (``TICK``), yet ``stop`` ends
it at once: a SIGTERM never waits for the next tick."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import uvicorn
from fastapi import FastAPI

from stackd.cli.client import Daemon
from stackd.daemon.process import _Server


def test_stop_ends_the_server_at_once_whatever_its_tick(tmp_path: Path) -> None:
    socket = str(tmp_path / "s.sock")
    app = FastAPI()

    @app.get("/v1/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    server = _Server(uvicorn.Config(app, uds=socket, log_level="warning", lifespan="off"))
    server.TICK = 60.0  # a tick that would be seen
    stopped: list[float] = []

    async def main() -> None:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve)
                while not server.started:
                    await anyio.sleep(0.01)
                answer = await anyio.to_thread.run_sync(lambda: Daemon(socket).get("/v1/ping"))
                assert answer == {"ok": True}
                start = time.monotonic()
                server.stop()
            stopped.append(time.monotonic() - start)

    anyio.run(main)
    assert stopped[0] < 5.0  # not the 60 s tick
