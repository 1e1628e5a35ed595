"""The client's own HTTP/1.1 reading: chunked answers whose lines are split across chunks, answers
with a length, answers that end with the connection, and refusals with stackd's error body."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackd.cli.client import Daemon, DaemonError, Refused


def _serve(path: Path, answer: bytes) -> Iterator[bytes]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    asked: list[bytes] = []

    def one() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                         .split(b":")[1])
            while len(body) < length:
                body += conn.recv(4096)
            asked.append(head + b"\r\n\r\n" + body)
            for piece in answer.split(b"|"):  # sent in pieces, as a server flushes them
                conn.sendall(piece)
        server.close()

    thread = threading.Thread(target=one)
    thread.start()
    yield from asked_after(thread, asked)


def asked_after(thread: threading.Thread, asked: list[bytes]) -> Iterator[bytes]:
    yield b""
    thread.join(timeout=5)
    yield asked[0]


def test_chunked_lines_come_whole_even_when_split_across_chunks(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\n"
              b"d\r\n{\"event\": 1|}\n\r\n|7\r\n{\"resul|\r\n8\r\nt\": 2}\n\r\n0\r\n\r\n")
    served = _serve(sock, answer)
    next(served)
    lines = list(Daemon(str(sock)).stream("POST", "/v1/projects/p/up", {"a": [1, 2]}))
    assert lines == [{"event": 1}, {"result": 2}]
    asked = next(served)
    assert asked.startswith(b"POST /v1/projects/p/up HTTP/1.1\r\n")
    assert asked.endswith(b'\r\n\r\n{"a": [1, 2]}')


@pytest.mark.parametrize("framing", [b"Content-Length: 12\r\n", b""])
def test_a_document_with_a_length_or_up_to_the_end(tmp_path: Path, framing: bytes) -> None:
    sock = tmp_path / "s.sock"
    served = _serve(sock, b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n{\"ok\": |true}")
    next(served)
    assert Daemon(str(sock)).get("/v1/ping", {"x": "1 2"}) == {"ok": True}
    assert next(served).startswith(b"GET /v1/ping?x=1+2 HTTP/1.1\r\n")


def test_refusals_carry_stackds_message_and_exit_code(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    body = b'{"error": {"message": "no such service: x", "exit_code": 2}}'
    served = _serve(sock, b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    next(served)
    with pytest.raises(Refused, match="no such service: x") as info:
        Daemon(str(sock)).get("/v1/projects/p/containers")
    assert info.value.exit_code == 2
    next(served)


def test_a_peer_that_does_not_speak_http_is_a_daemon_error(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    served = _serve(sock, b"SSH-2.0-nope\r\n")
    next(served)
    with pytest.raises(DaemonError, match="did not answer: not an HTTP answer"):
        Daemon(str(sock)).get("/v1/ping")
    next(served)
    assert not Daemon(str(tmp_path / "none.sock")).alive()
