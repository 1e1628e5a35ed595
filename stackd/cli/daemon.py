"""Entry point of the ``stackd`` daemon (the reconciling daemon is the next step; see docs)."""

from __future__ import annotations

import sys


def main() -> None:
    print("stackd: the reconciling daemon is not part of this build yet; `stack up` converges once, "
          "in-process, as Compose does", file=sys.stderr)
    sys.exit(1)
