"""Entry point of the ``stackd`` daemon (the reconciler comes with the daemon issue)."""

from __future__ import annotations

import sys


def main() -> None:
    print("stackd: the daemon is not part of this build yet; `stack up --dry-run` shows what it would do",
          file=sys.stderr)
    sys.exit(1)
