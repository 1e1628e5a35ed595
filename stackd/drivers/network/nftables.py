"""Apply, read and remove the nftables tables of stacks through the ``nft`` command.

``apply`` feeds a script rendered by ``nft.render`` to ``nft -f -``: nft runs a file as one
transaction, so the old table stays in force until the new one replaces it whole, and a script
that fails changes nothing. ``delete_table`` removes a table whether or not it exists.
``status`` compares the table on the host with what ``nft.render_table`` gives for the desired
``NatTable`` ("missing", "drifted" or "in-sync"); a drifted or missing table is fixed by applying
the rendered script again, which is idempotent (so a difference that only comes from another nft
version printing rules differently costs one needless re-apply per check, nothing worse).

Only tables of family ``ip`` are touched, and ``list_tables`` returns only those whose names
belong to the given ``Naming``. Failures become ``TransientDriverError``/``PermanentDriverError``
with nft's own message, raised from the original exception. Blocking: call through
``anyio.to_thread``. No decisions about desired state are made here.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from typing import Literal

from stackd.drivers.network.errors import classify
from stackd.drivers.network.names import Naming
from stackd.drivers.network.nft import NatTable, delete_script, normalize_listing, render_table
from stackd.errors import DriverError, PermanentDriverError

NFT = "nft"
TIMEOUT = 30.0

TableStatus = Literal["missing", "drifted", "in-sync"]


def _run(args: Sequence[str], action: str, *, script: str | None = None, nft: str = NFT) -> str:
    try:
        proc = subprocess.run([nft, *args], input=script, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise PermanentDriverError(f"{action}: the nft command was not found (install nftables)") from exc
    except subprocess.TimeoutExpired as exc:
        raise classify(None, f"{action}: nft timed out after {TIMEOUT:.0f}s") from exc
    except OSError as exc:
        raise classify(exc.errno, f"{action}: {exc}") from exc
    if proc.returncode != 0:
        message = " ".join(proc.stderr.split()) or f"nft exited with {proc.returncode}"
        raise classify(None, f"{action}: {message}") from subprocess.CalledProcessError(
            proc.returncode, [nft, *args], proc.stdout, proc.stderr)
    return proc.stdout


def apply(script: str, *, nft: str = NFT) -> None:
    """Run ``script`` (from ``nft.render`` or ``nft.delete_script``) as one nft transaction."""
    _run(["-f", "-"], "apply nftables script", script=script, nft=nft)


def delete_table(name: str, *, nft: str = NFT) -> None:
    """Remove table ``ip <name>``; nothing happens when it does not exist."""
    _run(["-f", "-"], f"delete nftables table {name}", script=delete_script(name), nft=nft)


def parse_tables(listing: str) -> tuple[str, ...]:
    """The names of the ``ip`` tables in the output of ``nft list tables``, sorted."""
    return tuple(sorted(m.group(1) for m in re.finditer(r"^table ip (\S+)$", listing, re.M)))


def list_tables(naming: Naming, *, nft: str = NFT) -> tuple[str, ...]:
    """The ``ip`` tables of ``naming``'s owner, sorted."""
    listing = _run(["list", "tables", "ip"], "list nftables tables", nft=nft)
    return tuple(t for t in parse_tables(listing) if naming.is_table(t))


def table_listing(name: str, *, nft: str = NFT) -> str | None:
    """``nft list table ip <name>``, or None when there is no such table (nft says "No such
    file or directory": one run, where listing the tables first would cost another that grows
    with every table on the host)."""
    try:
        return _run(["list", "table", "ip", name], f"list nftables table {name}", nft=nft)
    except DriverError as exc:
        failed = exc.__cause__
        if isinstance(failed, subprocess.CalledProcessError) and _NO_SUCH in (failed.stderr or ""):
            return None
        raise


_NO_SUCH = "No such file or directory"


def compare(table: NatTable, listing: str | None) -> TableStatus:
    """How a listing (None: no table) stands against the desired ``table``. Pure."""
    if listing is None:
        return "missing"
    return "in-sync" if normalize_listing(listing) == normalize_listing(render_table(table)) else "drifted"


def status(table: NatTable, *, nft: str = NFT) -> TableStatus:
    """Whether the host holds ``table`` as rendered."""
    return compare(table, table_listing(table.name, nft=nft))
