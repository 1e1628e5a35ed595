"""Talking to the daemon: HTTP/1.1 over its unix socket (a few lines of our own, so that ``stack``
stays quick to start), and starting the daemon when it is not running.

``connect`` finds the daemon at ``<run>/stackd.sock``; when nobody answers there it starts
``stackd`` in its own session (its output appended to ``<data root>/stackd.log``) and waits for
the socket. ``Daemon.get`` returns a JSON document; ``Daemon.stream`` yields the JSON lines of a
streamed answer as they come. A daemon that cannot be reached or started is a ``StackdError``
that says what to do (``--no-daemon`` works without it).
"""

from __future__ import annotations

import json
import os
import socket
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


class _Response:
    """One HTTP/1.1 answer read off the socket: status, headers, then the body as it comes
    (chunked, with a length, or up to the end)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.file = sock, sock.makefile("rb")
        parts = self.file.readline().split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise OSError("not an HTTP answer")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def chunks(self) -> Iterator[bytes]:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int(self.file.readline().split(b";")[0] or b"0", 16):
                yield self.file.read(size)
                self.file.readline()
            return
        if "content-length" in self.headers:
            yield self.file.read(int(self.headers["content-length"]))
            return
        while data := self.file.read1(65536):
            yield data

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def lines(self) -> Iterator[bytes]:
        rest = b""
        for chunk in self.chunks():
            *done, rest = (rest + chunk).split(b"\n")
            yield from done
        if rest:
            yield rest

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class Daemon:
    """The daemon at ``socket_path``. HTTP/1.1 is spoken here in a few lines rather than with
    ``http.client``, whose import (the email package) costs more than a whole ``stack ps``."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None,
                 timeout: float | None) -> _Response:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: stackd\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.socket_path)
            sock.sendall(head.encode() + payload)
            response = _Response(sock)
        except (OSError, ValueError) as exc:
            sock.close()
            raise DaemonError(f"stackd at {self.socket_path} did not answer: {exc}") from None
        if response.status >= 400:
            text = response.read().decode(errors="replace")
            response.close()
            refused = _error_of(text)
            if refused is not None:
                raise refused
            raise DaemonError(f"stackd refused {method} {path}: {response.status} {text[:300]}")
        return response

    def get(self, path: str, query: Mapping[str, Any] | None = None, timeout: float | None = 30.0) -> Any:
        full = path + ("?" + urlencode(query, doseq=True) if query else "")
        response = self._request("GET", full, None, timeout)
        try:
            return json.loads(response.read())
        finally:
            response.close()

    def stream(self, method: str, path: str, body: Mapping[str, Any] | None = None,
               query: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        full = path + ("?" + urlencode(query, doseq=True) if query else "")
        response = self._request(method, full, body, None)
        try:
            for line in response.lines():
                if line.strip():
                    yield json.loads(line)
        finally:
            response.close()

    def alive(self) -> bool:
        try:
            self.get("/v1/ping", timeout=2.0)
        except DaemonError:
            return False
        return True


def project_path(project: str, verb: str) -> str:
    return f"/v1/projects/{quote(project, safe='')}/{verb}"


def _paths(environ: Mapping[str, str]) -> tuple[Path, Path]:
    return (Path(environ.get(DATA_ENV) or DEFAULT_DATA_ROOT), Path(environ.get(RUN_ENV) or DEFAULT_RUN_DIR))


def running(environ: Mapping[str, str] | None = None, *, verb: str = "") -> Daemon | None:
    """The daemon when it answers, else None (nothing is started). Only root may talk to it (its
    socket is root's): anyone else is told so in one line."""
    if os.geteuid() != 0:
        raise PermanentDriverError(needs_root(verb or "<verb>"))
    daemon = Daemon(str(_paths(os.environ if environ is None else environ)[1] / "stackd.sock"))
    return daemon if daemon.alive() else None


def daemon_command() -> list[str]:
    """How ``stack`` starts the daemon: this Python with ``-OO``. The daemon runs for long, and
    without the docstrings of what it imports (networkx's, pydantic's, FastAPI's) it holds about
    5 MB less; it has no ``assert`` that checks input. The systemd unit sets the same
    (``PYTHONOPTIMIZE=2``)."""
    return [sys.executable, "-OO", "-m", "stackd.cli.daemon"]


def connect(environ: Mapping[str, str] | None = None, *, verb: str = "", start: bool = True,
            timeout: float = START_TIMEOUT) -> Daemon:
    """The running daemon; started first when it is not running and ``start`` allows."""
    env = dict(os.environ if environ is None else environ)
    found = running(env, verb=verb)
    if found is not None:
        return found
    data_root, run_dir = _paths(env)
    daemon = Daemon(str(run_dir / "stackd.sock"))
    if not start:
        raise DaemonError(f"stackd is not running (no answer at {daemon.socket_path}); start it with "
                          "`systemctl start stackd` or `stackd`, or use --no-daemon")
    import subprocess  # only when starting the daemon

    data_root.mkdir(parents=True, exist_ok=True)
    with open(data_root / "stackd.log", "ab") as log:
        proc = subprocess.Popen(daemon_command(), stdin=subprocess.DEVNULL,
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
