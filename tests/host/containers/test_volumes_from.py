"""``volumes_from`` on the real host: a container writes into its named and anonymous volumes and
another one, made with ``volumes_from`` the first, reads what it wrote; with ``:ro`` it cannot
write there. Removing the borrower with its volumes leaves the lender's anonymous volume alone.

Root only; see conftest.py for the names used and the cleanup.
"""

from __future__ import annotations

import pytest

from tests.host.containers.conftest import Lab
from tests.host.containers.support import IMAGE
from tests.host.containers.test_realhost import create, prepare, run

pytestmark = pytest.mark.host

STACK = """
services:
  writer:
    image: {image}
    command: ["sleep", "1000"]
    volumes: ["data:/data", "/anon"]
  reader:
    image: {image}
    command: ["sleep", "1000"]
    volumes_from: [writer]
  viewer:
    image: {image}
    command: ["sleep", "1000"]
    volumes_from: ["writer:ro"]
volumes:
  data: {{}}
"""


def test_a_container_reads_what_another_wrote_in_its_volumes(lab: Lab) -> None:
    host = lab.host
    stack = lab.stack(STACK.format(image=IMAGE))
    prepare(host, stack)
    writer = create(host, stack, "writer")
    reader, viewer = create(host, stack, "reader"), create(host, stack, "viewer")
    for name in (writer, reader, viewer):
        host.start_container(name)
    run(host, writer, "sh", "-c", "echo named > /data/msg; echo anonymous > /anon/msg")
    assert run(host, reader, "cat", "/data/msg", "/anon/msg") == "named\nanonymous\n"
    run(host, reader, "sh", "-c", "echo back > /anon/reply")
    assert run(host, writer, "cat", "/anon/reply") == "back\n"
    assert run(host, viewer, "cat", "/anon/msg") == "anonymous\n"
    denied = host.exec_in(viewer, ("touch", "/data/nope"), timeout=30)
    assert denied.exit_code != 0 and b"Read-only file system" in denied.stderr + denied.stdout

    host.stop_container(reader, timeout=0, signal="SIGKILL")
    host.remove_container(reader, volumes=True)
    assert run(host, writer, "cat", "/anon/msg") == "anonymous\n"
