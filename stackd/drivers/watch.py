"""Host events that wake the reconciler, without polling: a container's exit, one of stackd's
links deleted, going down or losing its bridge, a change to one of stackd's nftables tables, and
a cgroup limit of a running container written.

Four sources, each one file descriptor the caller waits on (``HostWatch.fds()``, e.g. with
``anyio.wait_readable``; ``next_changes`` does exactly that) before ``HostWatch.drain()`` reads
whatever is pending, without blocking, into one frozen ``Changes``:

- ``exits``: inotify on ``<run>/exits`` (``IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE``), where
  conmon writes one file per container, named after it, when the container ends (through a
  temporary ``<name>.XXXXXX`` renamed into place: only the container's own name is reported).
- ``links``: a ``NETLINK_ROUTE`` socket subscribed to ``RTNLGRP_LINK`` in the caller's network
  namespace (the host's). Reported: ``RTM_DELLINK`` (also the bridge's "port removed" message),
  and ``RTM_NEWLINK`` when the link went down or lost its master; creations and other updates
  are not (stackd makes those itself); and, subscribed to ``RTNLGRP_IPV4_IFADDR`` too,
  ``RTM_DELADDR`` (a bridge's gateway address removed). Only the names the ``Naming`` owns
  (``is_link``) count.
  A plain socket parsed here, not pyroute2's ``IPRoute``: the latter reads through a private
  asyncio loop into a queue of its own, so a readable file descriptor and pending messages
  part ways, and its state is per thread.
- ``tables``: a ``nft --json monitor ruleset`` child whose stdout is read non-blocking; every
  event on a table the ``Naming`` owns (``is_table``) reports that table. Without ``nft`` the
  source is off (``HostWatch.off`` says why). ``open`` waits until the child has joined the
  nftables netlink group, so no change after ``open`` returns is missed.
- ``written`` (when given): a source its owner reads (``Written``: drift repair's inotify watch
  on the cgroup directories of running containers); the containers it names.

``Changes.lost`` says events may have been missed (a kernel queue overflowed, the exit directory
went away, the nft child ended): the caller must then look at everything. Coalescing and any
decision about what a change means are the caller's. This module changes nothing on the host
except creating the exit directory; ``open`` blocks briefly (call it through ``anyio.to_thread``),
``drain`` never blocks, and ``close`` stops and reaps the nft child, also after errors.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import anyio

from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.inotify import (
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    Inotify,
    InotifyEvent,
)
from stackd.drivers.network.names import DEFAULT, Naming
from stackd.errors import PermanentDriverError


@dataclass(frozen=True)
class Changes:
    """What changed on the host since the last ``drain``; false when nothing did."""

    exited: frozenset[str] = frozenset()
    """Containers whose exit file appeared."""
    links: frozenset[str] = frozenset()
    """Links deleted, gone down or detached from their bridge."""
    tables: frozenset[str] = frozenset()
    """nftables tables changed in any way."""
    lost: bool = False
    """Events may have been missed: look at everything."""
    written: frozenset[str] = frozenset()
    """Containers whose cgroup limits were written (the ``written`` source)."""

    def __bool__(self) -> bool:
        return bool(self.exited or self.links or self.tables or self.lost or self.written)

    def __or__(self, other: Changes) -> Changes:
        return Changes(self.exited | other.exited, self.links | other.links,
                       self.tables | other.tables, self.lost or other.lost, self.written | other.written)


class Written(Protocol):
    """A source read by its owner (drift repair's cgroup limit watch): a descriptor to wait on,
    and ``collect``, the containers it concerns (None: events were lost)."""

    def fileno(self) -> int | None: ...
    def collect(self) -> set[str] | None: ...


EXIT_EVENTS = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
_TEMP_NAME = re.compile(r".+\.[A-Za-z0-9]{6}")  # what g_file_set_contents writes before renaming


def exit_names(events: list[InotifyEvent]) -> tuple[set[str], bool]:
    """The containers whose exit file appeared, and whether events were lost (queue overflow, or
    the directory is gone). conmon's temporary ``<name>.XXXXXX`` (created, written, renamed away)
    is not a container: a name of that shape counts only when something was renamed to it."""
    names: set[str] = set()
    lost = False
    for event in events:
        if event.mask & (IN_Q_OVERFLOW | IN_IGNORED):
            lost = True
        elif not event.name or event.name.startswith(".") or event.mask & IN_ISDIR:
            continue
        elif event.mask & IN_MOVED_TO or not _TEMP_NAME.fullmatch(event.name):
            names.add(event.name)
    return names, lost


RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_DELADDR = 21
IFLA_IFNAME = 3
IFLA_MASTER = 10
IFA_LABEL = 3
IFF_UP = 0x1
CHANGE_ALL = 0xFFFF_FFFF  # ifi_change of a link just created
_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_RTA = struct.Struct("=HH")  # len, type


def _align(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True)
class LinkEvent:
    """One ``RTM_NEWLINK``/``RTM_DELLINK`` message (``family`` 7, AF_BRIDGE: about a bridge port),
    or, with ``address_removed``, one ``RTM_DELADDR`` of an IPv4 address (``name``: its label,
    the link's name)."""

    deleted: bool
    family: int
    index: int
    name: str
    flags: int
    change: int
    master: int | None
    address_removed: bool = False


def parse_link_messages(data: bytes) -> list[LinkEvent]:
    """The link messages in one netlink datagram (other message types are skipped)."""
    events = []
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind = _NLMSG.unpack_from(data, offset)[:2]
        if length < _NLMSG.size or offset + length > len(data):
            raise ValueError(f"bad netlink message length {length} at byte {offset}")
        body = offset + _NLMSG.size
        if kind in (RTM_NEWLINK, RTM_DELLINK) and length >= _NLMSG.size + _IFINFO.size:
            family, _, index, flags, change = _IFINFO.unpack_from(data, body)
            name, master = "", None
            attr = body + _IFINFO.size
            while attr + _RTA.size <= offset + length:
                attr_len, attr_type = _RTA.unpack_from(data, attr)
                if attr_len < _RTA.size:
                    break
                value = data[attr + _RTA.size:attr + attr_len]
                if attr_type == IFLA_IFNAME:
                    name = value.split(b"\0", 1)[0].decode(errors="replace")
                elif attr_type == IFLA_MASTER and len(value) >= 4:
                    master = int.from_bytes(value[:4], sys.byteorder)
                attr += _align(attr_len)
            events.append(LinkEvent(kind == RTM_DELLINK, family, index, name, flags, change, master))
        elif kind == RTM_DELADDR and length >= _NLMSG.size + _IFADDR.size:
            family, _, _, _, index = _IFADDR.unpack_from(data, body)
            label = _attribute(data, body + _IFADDR.size, offset + length, IFA_LABEL)
            if label is not None:
                name = label.split(b"\0", 1)[0].decode(errors="replace")
                events.append(LinkEvent(False, family, index, name, 0, 0, None, address_removed=True))
        offset += _align(length)
    return events


def _attribute(data: bytes, start: int, end: int, wanted: int) -> bytes | None:
    """The value of the first attribute of type ``wanted`` between ``start`` and ``end``."""
    while start + _RTA.size <= end:
        attr_len, attr_type = _RTA.unpack_from(data, start)
        if attr_len < _RTA.size:
            return None
        if attr_type == wanted:
            return data[start + _RTA.size:start + attr_len]
        start += _align(attr_len)
    return None


class LinkTracker:
    """Which link messages matter: the owner's links deleted, gone down, or detached from their
    master. Remembers the master of each such link to see it go."""

    def __init__(self, naming: Naming) -> None:
        self.naming = naming
        self._masters: dict[int, int] = {}

    def feed(self, event: LinkEvent) -> str | None:
        """The link's name if ``event`` must be reported."""
        if not self.naming.is_link(event.name):
            return None
        if event.address_removed:  # a bridge's gateway address, deleted by hand or with the link
            return event.name
        if event.deleted:
            self._masters.pop(event.index, None)
            return event.name
        if event.family != socket.AF_UNSPEC:
            return None
        had = self._masters.pop(event.index, None)
        if event.master is not None:
            self._masters[event.index] = event.master
        went_down = event.change != CHANGE_ALL and event.change & IFF_UP and not event.flags & IFF_UP
        return event.name if went_down or (had is not None and event.master is None) else None


def link_socket() -> socket.socket:
    """A non-blocking rtnetlink socket subscribed to link and IPv4 address events of the current
    network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
    except OSError:
        sock.close()
        raise
    return sock


NFT_START_TIMEOUT = 5.0
"""How long ``open`` waits for ``nft monitor`` to listen before the source is off."""
_NETLINK_NETFILTER = 12
_MAX_LINE = 16 << 20


def nft_table(line: bytes | str) -> str | None:
    """The table one ``nft --json monitor`` line is about (``None`` for anything else)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    for body in doc.values() if isinstance(doc, dict) else ():
        for kind, obj in body.items() if isinstance(body, dict) else ():
            if isinstance(obj, dict):
                name = obj.get("name") if kind == "table" else obj.get("table")
                if isinstance(name, str):
                    return name
    return None


def _nft_listening(pid: int) -> bool:
    """True once process ``pid`` has a netfilter netlink socket that joined a multicast group."""
    inodes = set()
    with contextlib.suppress(OSError):  # the process may end meanwhile: the caller sees that
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    with open("/proc/net/netlink") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return any(len(r) >= 10 and r[1] == str(_NETLINK_NETFILTER) and r[9] in inodes and int(r[3], 16)
               for r in rows)



class HostWatch:
    """The three sources over one run directory and one owner of host objects.

    ``links=False``/``tables=False`` turn a source off; ``nft`` is the binary (default: found on
    ``PATH``). Use as a context manager, or ``open()``/``close()``."""

    def __init__(self, layout: HostLayout, naming: Naming = DEFAULT, *, links: bool = True,
                 tables: bool = True, nft: str | None = None, written: Written | None = None) -> None:
        self.exit_dir = layout.exit_dir
        self._written = written
        self.naming = naming
        self._want_links, self._want_tables, self._nft = links, tables, nft
        self._inotify: Inotify | None = None
        self._sock: socket.socket | None = None
        self._tracker = LinkTracker(naming)
        self._proc: subprocess.Popen[bytes] | None = None
        self._partial = b""
        self._off: dict[str, str] = {}

    @property
    def off(self) -> Mapping[str, str]:
        """The sources (``links``, ``tables``) that are off, and why."""
        return dict(self._off)

    @property
    def nft_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> HostWatch:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Start every source; on failure nothing is left open."""
        try:
            self.exit_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._inotify = Inotify()
            self._inotify.add(self.exit_dir, EXIT_EVENTS | IN_ONLYDIR)
            if self._want_links:
                self._sock = link_socket()
            else:
                self._off["links"] = "not wanted"
            if self._want_tables:
                self._start_nft()
            else:
                self._off["tables"] = "not wanted"
        except OSError as exc:
            self.close()
            raise PermanentDriverError(f"cannot watch the host: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _start_nft(self) -> None:
        binary = self._nft or shutil.which("nft")
        if binary is None:
            self._off["tables"] = "nft is not installed"
            return
        argv = [binary, "--json", "monitor", "ruleset"]
        try:
            self._proc = proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT)
        except FileNotFoundError:
            self._off["tables"] = f"{binary} is not installed"
            return
        deadline = time.monotonic() + NFT_START_TIMEOUT
        while proc.poll() is None and not _nft_listening(proc.pid):
            if time.monotonic() > deadline:
                self._stop_nft(f"nft monitor did not listen within {NFT_START_TIMEOUT:g}s")
                return
            time.sleep(0.005)
        if proc.poll() is not None:
            self._stop_nft("nft monitor ended")
            return
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)

    def _stop_nft(self, why: str | None) -> None:
        """Stop and reap the child; ``why`` (with its last output) marks the source off."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        output = b""
        if proc.stdout is not None:
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(proc.stdout.fileno(), False)
                output = proc.stdout.read() or b""
            proc.stdout.close()
        if why is not None:
            tail = output.decode(errors="replace").strip().splitlines()[-1:]
            self._off["tables"] = f"{why} (status {proc.returncode}){': ' + tail[0] if tail else ''}"

    def close(self) -> None:
        """Stop every source (the nft child is killed and reaped); safe to call twice."""
        problems = []
        try:
            self._stop_nft(None)
        except OSError as exc:
            problems.append(f"nft monitor: {exc}")
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._inotify is not None:
            inotify, self._inotify = self._inotify, None
            try:
                inotify.close()
            except OSError as exc:
                problems.append(f"inotify: {exc}")
        if problems:
            raise PermanentDriverError("closing the host watch: " + "; ".join(problems))

    def fds(self) -> list[int]:
        """The descriptors to wait on for readability (only the sources that are on)."""
        out = [] if self._inotify is None else [self._inotify.fd]
        if self._sock is not None:
            out.append(self._sock.fileno())
        if self._proc is not None and self._proc.stdout is not None:
            out.append(self._proc.stdout.fileno())
        written = self._written.fileno() if self._written is not None else None
        if written is not None:
            out.append(written)
        return out

    def drain(self) -> Changes:
        """Everything pending in every source, without blocking."""
        exited, lost_exits = self._drain_exits()
        links, lost_links = self._drain_links()
        tables, lost_tables = self._drain_tables()
        written = self._written.collect() if self._written is not None else set()
        return Changes(frozenset(exited), frozenset(links), frozenset(tables),
                       lost_exits or lost_links or lost_tables or written is None, frozenset(written or ()))

    def _drain_exits(self) -> tuple[set[str], bool]:
        names: set[str] = set()
        lost = False
        if self._inotify is None:
            return names, lost
        return exit_names(self._inotify.read())

    def _drain_links(self) -> tuple[set[str], bool]:
        names: set[str] = set()
        lost = False
        while self._sock is not None:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise PermanentDriverError(f"reading link events: {exc}") from exc
                lost = True
                continue
            for event in parse_link_messages(data):
                name = self._tracker.feed(event)
                if name is not None:
                    names.add(name)
        return names, lost

    def _drain_tables(self) -> tuple[set[str], bool]:
        names: set[str] = set()
        lost = False
        proc = self._proc
        if proc is None or proc.stdout is None:
            return names, lost
        chunks = [self._partial]
        ended = False
        while True:
            try:
                data = os.read(proc.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                break
            if not data:
                ended = True
                break
            chunks.append(data)
        *lines, self._partial = b"".join(chunks).split(b"\n")
        for line in filter(None, (raw.strip() for raw in lines)):
            table = nft_table(line)
            if table is None and not line.startswith(b"{"):
                lost = True  # nft's own complaint, e.g. that it lost netlink events
            elif table is not None and self.naming.is_table(table):
                names.add(table)
        if len(self._partial) > _MAX_LINE:
            self._partial, lost = b"", True
        if ended:
            self._partial, lost = b"", True
            self._stop_nft("nft monitor ended")
        return names, lost



async def next_changes(watch: HostWatch, timeout: float | None) -> Changes:
    """Wait until ``watch`` reports something (at most ``timeout`` seconds, ``None`` for no
    limit) and return it; an empty ``Changes`` only after the timeout. Events that concern no
    one (another program's link, a partial line from nft) wake the wait but are not returned."""
    deadline = None if timeout is None else anyio.current_time() + timeout
    while True:
        fds = watch.fds()
        remaining = None if deadline is None else max(0.0, deadline - anyio.current_time())
        with anyio.move_on_after(remaining):
            async with anyio.create_task_group() as tg:
                for fd in fds:
                    tg.start_soon(_readable, fd, tg.cancel_scope)
                if not fds:
                    await anyio.sleep_forever()
        changes = watch.drain()
        if changes or (deadline is not None and anyio.current_time() >= deadline):
            return changes


async def _readable(fd: int, scope: anyio.CancelScope) -> None:
    await anyio.wait_readable(fd)
    scope.cancel()
