"""Talking to the daemon: HTTP over its unix socket (the standard library's ``http.client``, so
that ``stack`` stays quick to start), and starting the daemon when it is not running.

``connect`` finds the daemon at ``<run>/stackd.sock``; when nobody answers there it starts
``stackd`` in its own session (its output appended to ``<data root>/stackd.log``) and waits for
the socket. ``Daemon.get`` returns a JSON document; ``Daemon.stream`` yields the JSON lines of a
streamed answer as they come. A daemon that cannot be reached or started is a ``StackdError``
that says what to do (``--no-daemon`` works without it).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from stackd.errors import PermanentDriverError, StackdError, needs_root

DATA_ENV, RUN_ENV = "STACKD_DATA_ROOT", "STACKD_RUN_DIR"
DEFAULT_DATA_ROOT, DEFAULT_RUN_DIR = "/var/lib/stackd", "/run/stackd"
START_TIMEOUT = 20.0


class DaemonError(StackdError):
    """The daemon cannot be reached, or answered with an error of its own."""


class Refused(StackdError):
    """The daemon refused a verb with an error of stackd's own (its message and exit code)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _error_of(text: str) -> Refused | None:
    try:
        data = json.loads(text)
        error = data["error"]
        return Refused(str(error["message"]), int(error["exit_code"]))
    except (ValueError, KeyError, TypeError):
        return None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Daemon:
    """The daemon at ``socket_path``."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None,
                 timeout: float | None) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        conn = _UnixConnection(self.socket_path, timeout)
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise DaemonError(f"stackd at {self.socket_path} did not answer: {exc}") from None
        if response.status >= 400:
            text = response.read().decode(errors="replace")
            conn.close()
            refused = _error_of(text)
            if refused is not None:
                raise refused
            raise DaemonError(f"stackd refused {method} {path}: {response.status} {text[:300]}")
        return conn, response

    def get(self, path: str, query: Mapping[str, Any] | None = None, timeout: float | None = 30.0) -> Any:
        full = path + ("?" + urlencode(query, doseq=True) if query else "")
        conn, response = self._request("GET", full, None, timeout)
        try:
            return json.loads(response.read())
        finally:
            conn.close()

    def stream(self, method: str, path: str, body: Mapping[str, Any] | None = None,
               query: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        full = path + ("?" + urlencode(query, doseq=True) if query else "")
        conn, response = self._request(method, full, body, None)
        try:
            while True:
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def alive(self) -> bool:
        try:
            self.get("/v1/info", timeout=2.0)
        except DaemonError:
            return False
        return True


def project_path(project: str, verb: str) -> str:
    return f"/v1/projects/{quote(project, safe='')}/{verb}"


def _paths(environ: Mapping[str, str]) -> tuple[Path, Path]:
    return (Path(environ.get(DATA_ENV) or DEFAULT_DATA_ROOT), Path(environ.get(RUN_ENV) or DEFAULT_RUN_DIR))


def connect(environ: Mapping[str, str] | None = None, *, verb: str = "", start: bool = True,
            timeout: float = START_TIMEOUT) -> Daemon:
    """The running daemon; started first when it is not running and ``start`` allows. Only
    root may talk to it (its socket is root's): anyone else is told so in one line."""
    if os.geteuid() != 0:
        raise PermanentDriverError(needs_root(verb or "<verb>"))
    env = dict(os.environ if environ is None else environ)
    data_root, run_dir = _paths(env)
    daemon = Daemon(str(run_dir / "stackd.sock"))
    if daemon.alive():
        return daemon
    if not start:
        raise DaemonError(f"stackd is not running (no answer at {daemon.socket_path}); start it with "
                          "`systemctl start stackd` or `stackd`, or use --no-daemon")
    data_root.mkdir(parents=True, exist_ok=True)
    with open(data_root / "stackd.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stackd.cli.daemon"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.alive():
            return daemon
        code = proc.poll()
        if code is not None and not daemon.alive():
            raise DaemonError(f"stackd could not start (exit code {code}); see {data_root / 'stackd.log'}")
        time.sleep(0.02)
    raise DaemonError(f"stackd did not answer within {timeout:g}s of starting; "
                      f"see {data_root / 'stackd.log'}")
