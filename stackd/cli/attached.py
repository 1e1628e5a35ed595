"""``stack up`` without ``-d``: bring the stack up, then follow the containers' output (each line
prefixed ``demo-web-1  | ``) until they have all stopped or the user interrupts, as Compose does.

The first SIGINT (Ctrl-C) or SIGTERM stops what is being done (an ``up`` still running starts
nothing more; host calls already running finish) and then stops the containers gracefully
("Gracefully stopping... (press Ctrl+C again to force)"); a second one during that stop kills
them (SIGKILL) while the stop finishes. The exit code is then 130 for SIGINT, 143 for SIGTERM.
Signals are taken over only on the main thread (elsewhere they cannot be); the handlers go when
the command ends. Printing happens here, as everywhere in ``stackd.cli``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, TextIO, TypeVar

import anyio

from stackd.spec.options import ProjectOptions

if TYPE_CHECKING:
    from stackd.cli.remote import RemoteService
    from stackd.daemon.service import Applied, StackService, UpOptions
    from stackd.execute import Event
    from stackd.observe import LogEntry

HANDLED = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")


def printer(out: TextIO) -> Callable[[LogEntry], None]:
    """Print each log line with its container's name in front, at once."""
    def emit(entry: LogEntry) -> None:
        out.write(f"{entry.container}  | {entry.line.text}\n")
        out.flush()
    return emit


async def _never() -> AsyncIterator[signal.Signals]:
    await anyio.sleep_forever()
    yield signal.SIGINT  # pragma: no cover (never reached)


@contextlib.contextmanager
def _signals() -> Iterator[AsyncIterator[signal.Signals]]:
    if threading.current_thread() is not threading.main_thread():
        yield _never()
        return
    with anyio.open_signal_receiver(*HANDLED) as received:
        yield received


async def _until_signal(signals: AsyncIterator[signal.Signals], body: Callable[[], Awaitable[T]],
                        on_signal: Callable[[signal.Signals], Awaitable[bool]]) -> tuple[T | None, bool]:
    """Run ``body`` while watching ``signals``: each one goes to ``on_signal``, and when that says
    so, ``body`` is cancelled. ``body``'s result (``None`` if cancelled) and whether it was. An
    error of ``body`` is raised as it is (not in an exception group)."""
    results: list[T] = []
    errors: list[Exception] = []
    cancelled = False
    async with anyio.create_task_group() as tg:
        async def watch() -> None:
            nonlocal cancelled
            async for sig in signals:
                if await on_signal(sig):
                    cancelled = True
                    tg.cancel_scope.cancel()
                    return

        async def run() -> None:
            try:
                results.append(await body())
            except Exception as exc:
                errors.append(exc)
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(run)
    if errors:
        raise errors[0]
    return (results[0] if results else None), cancelled


async def up_attached(service: StackService | RemoteService, options: ProjectOptions,
                      up_options: UpOptions, *,
                      out: TextIO, err: TextIO, progress: Callable[[Event], None],
                      report: Callable[[Applied], int], report_stop: Callable[[Applied], int]) -> int:
    """Up, then follow the logs; on a signal, stop (see the module docstring). ``report`` and
    ``report_stop`` say what went wrong in the up and in the stop. The exit code."""
    from stackd.daemon.service import KillOptions, LogsOptions, StopOptions

    services = up_options.services
    began = service.clock.wall()
    caught: list[signal.Signals] = []

    async def attached() -> int:
        applied = await service.up(options, up_options, progress)
        code = report(applied)
        if code == 0:
            names = sorted(r.name for r in await service.records(applied.project)
                           if not services or r.service in services)
            print(f"Attaching to {', '.join(names)}", file=err, flush=True)
            follow = LogsOptions(services=services, follow=True, since=began)
            await service.logs(options, follow, printer(out))
        return code

    async def first(sig: signal.Signals) -> bool:
        caught.append(sig)
        return True

    async def second(_: signal.Signals) -> bool:
        print("Killing...", file=err, flush=True)
        await service.kill(options, KillOptions(services=services), progress)
        return False

    with _signals() as signals:
        code, interrupted = await _until_signal(signals, attached, first)
        if not interrupted:
            return code or 0
        print("Gracefully stopping... (press Ctrl+C again to force)", file=err, flush=True)
        stopped, _ = await _until_signal(
            signals, lambda: service.stop(options, StopOptions(services=services), progress), second)
    if stopped is not None:
        report_stop(stopped)
    return 128 + caught[0].value
