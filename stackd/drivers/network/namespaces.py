"""Named network namespaces without forking: make one, remove one, and run code inside one (for
instance, open a netlink socket there) from a dedicated short-lived thread.

``setns(2)`` and ``unshare(CLONE_NEWNET)`` move only the calling *thread* to another network
namespace, and a socket belongs to the namespace it was opened in for its whole life. So
``run_inside`` starts a new thread, moves it into the namespace, runs the given function there,
moves the thread back to the namespace it started in and lets it end, while the caller waits for
it. Nothing else ever runs on such a thread, so a namespace switch cannot leak into a worker thread
that is later reused (even when moving back fails, the thread simply ends). ``netlink_socket`` opens
an rtnetlink socket inside a namespace this way; the socket then works from any thread, in that
namespace. ``create`` makes a namespace as ``ip netns add`` does (a bind mount of it on a file
under the namespace directory, which is made a shared mount first) and hands back such a socket
in it, so that setting it up costs no second thread.

This replaces pyroute2's helper process per netns socket (``IPRoute(netns=...)`` and
``pyroute2.netns.create`` fork one each). Failures are ``OSError``s carrying the errno of the call
that failed; ``links`` turns them into driver errors. Blocking. The calling thread and its
namespace are never changed. Nothing here decides what should exist.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import socket
import threading
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETLINK_ROUTE = 0
SOCKET_BUFFER = 1 << 20
"""Send and receive buffer of the netlink sockets made here (as pyroute2 sets its own)."""

_share_lock = threading.Lock()


@functools.cache
def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def _failed(call: str, path: str | PurePath | None = None) -> OSError:
    """The ``OSError`` of a libc call that just failed (its errno is saved per thread by ctypes)."""
    code = ctypes.get_errno()
    message = f"{call}: {os.strerror(code)}"
    return OSError(code, message) if path is None else OSError(code, message, str(path))


def thread_netns_path() -> str:
    """The namespace file of the calling thread's network namespace (not the process's)."""
    return f"/proc/self/task/{threading.get_native_id()}/ns/net"


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        raise _failed("setns")


def _enter(path: str | PurePath) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc().setns(fd, CLONE_NEWNET) != 0:
            raise _failed("setns", path)
    finally:
        os.close(fd)


def _unshare() -> None:
    if _libc().unshare(CLONE_NEWNET) != 0:
        raise _failed("unshare")


def _on_own_thread(enter: Callable[[], None], work: Callable[[], T]) -> T:
    """``work()`` on a new thread that ran ``enter()`` first; the thread goes back to its first
    network namespace afterwards and ends before this returns. Exceptions reach the caller."""
    outcome: list[tuple[bool, Any]] = []

    def body() -> None:
        try:
            home = os.open(thread_netns_path(), os.O_RDONLY | os.O_CLOEXEC)
        except BaseException as exc:
            outcome.append((False, exc))
            return
        try:
            enter()
            outcome.append((True, work()))
        except BaseException as exc:
            outcome.append((False, exc))
        finally:
            # the thread ends right after this, so a failure to move back harms nothing
            with contextlib.suppress(OSError):
                _setns(home)
            os.close(home)

    thread = threading.Thread(target=body, name="stackd-netns", daemon=True)
    try:
        thread.start()
    except RuntimeError as exc:  # the thread limit, or no memory: worth another try later
        raise OSError(errno.EAGAIN, f"cannot start a thread to enter a network namespace: {exc}") from exc
    thread.join()
    if not outcome:
        raise OSError(errno.EIO, "the thread entering a network namespace ended without a result")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def run_inside(path: str | PurePath, work: Callable[[], T]) -> T:
    """The result of ``work()`` run in the network namespace at ``path`` (a file under the
    namespace directory or ``/proc/<pid>/ns/net``), on a dedicated thread (see the module doc)."""
    return _on_own_thread(lambda: _enter(path), work)


def rtnl_socket() -> socket.socket:
    """A new rtnetlink socket in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    except BaseException:
        sock.close()
        raise
    return sock


def netlink_socket(path: str | PurePath) -> socket.socket:
    """An rtnetlink socket inside the network namespace at ``path``; the caller closes it."""
    return run_inside(path, rtnl_socket)


def _share(directory: PurePath) -> None:
    """Make ``directory`` a shared mount (bind-mounting it on itself first when it is no mount
    point), so that namespaces mounted in it show in mount namespaces made later, as iproute2 does."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    target = str(directory).encode()
    libc = _libc()
    with _share_lock:  # two threads must not both bind-mount the directory on itself
        if libc.mount(b"none", target, None, MS_SHARED | MS_REC, None) == 0:
            return
        if ctypes.get_errno() != errno.EINVAL:
            raise _failed("make the namespace directory a shared mount", directory)
        if libc.mount(target, target, b"none", MS_BIND | MS_REC, None) != 0:
            raise _failed("bind-mount the namespace directory on itself", directory)
        if libc.mount(b"none", target, None, MS_SHARED | MS_REC, None) != 0:
            raise _failed("make the namespace directory a shared mount", directory)


def _bind_new_namespace(path: PurePath) -> socket.socket:
    """On a thread that has just unshared its network namespace: an rtnetlink socket in it, and
    the namespace bind-mounted on ``path`` so that it outlives the thread."""
    sock = rtnl_socket()
    try:
        if _libc().mount(thread_netns_path().encode(), str(path).encode(), b"none", MS_BIND, None) != 0:
            raise _failed("bind-mount the new network namespace", path)
    except BaseException:
        sock.close()
        raise
    return sock


def create(path: PurePath) -> socket.socket:
    """A new network namespace bound at ``path`` (which must not exist: ``FileExistsError``),
    and an rtnetlink socket inside it, which the caller closes. On failure nothing is left."""
    _share(path.parent)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    try:
        return _on_own_thread(_unshare, lambda: _bind_new_namespace(path))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def remove(path: PurePath) -> None:
    """Unmount (lazily) and delete the namespace file ``path``; the namespace itself goes when
    nothing else holds it. A leftover plain file is deleted too. ``FileNotFoundError`` if none."""
    if _libc().umount2(str(path).encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (
            errno.EINVAL, errno.ENOENT):
        raise _failed("unmount the network namespace", path)
    os.unlink(path)
