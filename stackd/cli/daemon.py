"""Entry point of the ``stackd`` daemon: parse argv, set up logging, run ``daemon.process.serve``.

``stackd`` runs in the foreground (systemd's ``Type=simple``; ``stack`` starts it in the
background when it is not running). It needs root. Exit 0 after SIGTERM/SIGINT; 1 when it
cannot run (another stackd holds the pid file, not root); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence

from stackd import __version__
from stackd.errors import StackdError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stackd", description="Keeps every stack applied with `stack up` "
                                "in its declared state (the reconciling daemon).")
    p.add_argument("--version", action="version", version=f"stackd {__version__}")
    p.add_argument("--resync", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between looks at each stack when nothing happens (default 2)")
    p.add_argument("--backoff-initial", type=float, default=0.1, metavar="SECONDS",
                   help="wait before the first restart after a crash, doubled per restart in a row")
    p.add_argument("--backoff-cap", type=float, default=10.0, metavar="SECONDS",
                   help="longest wait between restarts (default 10)")
    p.add_argument("--backoff-reset", type=float, default=10.0, metavar="SECONDS",
                   help="a run this long resets the restart count (default 10)")
    p.add_argument("--immediate-first-restart", action=argparse.BooleanOptionalAction, default=True,
                   help="restart a container that crashed after a stable run at once (default); the "
                        "waits start with the second restart in a row")
    p.add_argument("--openapi", action="store_true", help="print the API's OpenAPI document and exit")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def _openapi() -> str:
    """The API's document (the app made over no host: only its routes and models are read)."""
    from typing import Any, cast

    from stackd.daemon.api import make_app, openapi

    return openapi(make_app(cast(Any, None)))


M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def _fewer_malloc_arenas() -> None:
    """Before any thread starts: at most ``MALLOC_ARENAS`` glibc malloc arenas. By default every
    worker thread that allocates gets an arena of its own (up to 8 per core), and each keeps
    the memory it once held; the daemon's threads are short bursts of small objects."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator's defaults stay
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s stackd %(levelname)s %(message)s")
    if args.openapi:
        print(_openapi(), end="")
        return
    _fewer_malloc_arenas()
    if os.geteuid() != 0:
        print("stackd: the daemon needs root (it makes namespaces, cgroups and links)", file=sys.stderr)
        sys.exit(1)
    import anyio

    from stackd.daemon.process import Paths, serve
    from stackd.plan.restart import Backoff
    from stackd.reconcile import Settings

    try:
        backoff = Backoff(initial=args.backoff_initial, cap=args.backoff_cap, reset_after=args.backoff_reset,
                          immediate_first=args.immediate_first_restart)
    except ValueError as exc:
        print(f"stackd: {exc}", file=sys.stderr)
        sys.exit(2)
    settings = Settings(resync=args.resync, backoff=backoff)
    # Everything imported so far lives as long as the process: keep it out of the cyclic
    # collector's passes. The young generation is collected a little less often than Python's
    # default (700), but not much: every pass leaves cycles behind (task groups, cancel scopes),
    # and with 100 containers a threshold of 50 000 let them pile up into 5 MB more RSS
    # (bench/daemon_idle.py) at no saving of CPU.
    GC_THRESHOLDS = (2_000, 10, 10)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    paths = Paths.from_env()

    async def run() -> None:
        from stackd.daemon.process import pid_file

        with pid_file(paths.pid_file):
            await serve(paths, settings=settings,
                        ready=lambda where: logging.getLogger("stackd").info("serving on %s", where))

    try:
        anyio.run(run)
    except StackdError as exc:
        print(f"stackd: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
