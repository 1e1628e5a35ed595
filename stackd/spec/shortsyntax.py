"""Parsers for Compose's short string syntaxes: ports, volumes, command lines, numbers as text.

Pure string-to-data functions used by ``canonical`` (kept apart so that module stays readable).
They know nothing of trees or positions: they return plain dicts/lists/strings or raise
``ValueError`` with a message for the user; the caller adds file, line and path.
"""

from __future__ import annotations

import ipaddress
import math
import shlex
from decimal import Decimal
from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
CONSISTENCIES = ("cached", "delegated", "consistent")


def shell_split(s: str) -> list[str]:
    """Split a command line as a POSIX shell would (quotes, backslashes); ValueError if unbalanced."""
    return shlex.split(s, comments=False, posix=True)


def scalar_text(value: Any) -> str:
    """A scalar as Compose turns it into a string: booleans ``true``/``false``, numbers as Go's ``%v``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(x: float) -> str:
    """Go's ``%v`` of a float: shortest digits, exponent form below 1e-4 and from 1e6 (``2.5``, ``1e+06``)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    sign, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    point = len(text) + exp  # where the decimal point sits, counted from the first digit
    minus = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mant}e{'+' if point >= 1 else '-'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{minus}{text}{'0' * (point - len(text))}"
    return f"{minus}{text[:point]}.{text[point:]}"


def parse_port(spec: str) -> list[dict[str, Any]]:
    """``[HOST_IP:][HOST[-HOST2]:]CONTAINER[-CONTAINER2][/PROTO]`` → one long entry per container port.

    A host range of another size than the container side is kept whole as ``published`` when the
    container side is a single port (the runtime picks a free port in it), else it is an error.
    """
    spec, _, proto = spec.partition("/") if "/" in spec else (spec, "", "tcp")
    proto = proto.lower()
    if proto not in PROTOCOLS:
        raise ValueError(f"unknown protocol {proto!r} (tcp, udp or sctp)")
    parts = spec.split(":")
    ip, host, container = ":".join(parts[:-2]), (parts[-2] if len(parts) > 1 else ""), parts[-1]
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"{ip!r} is not an IP address") from None
    c_lo, c_hi = _port_range(container, low=1)
    h_lo, h_hi = _port_range(host, low=0) if host else (0, 0)
    same_size = h_hi - h_lo == c_hi - c_lo
    if host and not same_size and c_hi != c_lo:
        raise ValueError("the host and container port ranges have different sizes")
    out: list[dict[str, Any]] = []
    for i in range(c_hi - c_lo + 1):
        entry: dict[str, Any] = {"target": c_lo + i}
        if host:
            entry["published"] = str(h_lo + i) if same_size else host
        if ip:
            entry["host_ip"] = ip
        entry.update(protocol=proto, mode="ingress")
        out.append(entry)
    return out


def _port_range(text: str, *, low: int) -> tuple[int, int]:
    first, dash, last = text.partition("-")
    if not first.isdigit() or (dash and not last.isdigit()):
        raise ValueError(f"{text!r} is not a port or a port range")
    lo, hi = int(first), int(last) if dash else int(first)
    if not low <= lo <= hi <= 65535:
        raise ValueError(f"{text!r} is out of range ({low}-65535, low-high)")
    return lo, hi


def parse_volume(spec: str) -> dict[str, Any]:
    """``[SOURCE:]TARGET[:MODE]`` → long form, as compose-go parses it.

    A one-letter field followed by ``:`` is a Windows drive (so ``a:/a`` is an anonymous volume
    with target ``a:/a``); colons inside ``${...}`` do not separate. A source starting with ``.``,
    ``/``, ``~`` (or a drive, or ``\\\\``) makes a bind, which short syntax creates on the host.
    """
    if not spec:
        raise ValueError("empty volume")
    if len(spec) <= 2:
        return {"type": "volume", "target": spec}
    fields: list[str] = []
    buf = ""
    depth = 0
    for i, ch in enumerate(spec):
        if ch == "$" and spec[i + 1:i + 2] == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif ch == ":" and not depth and not (len(buf) == 1 and buf.isalpha()):
            fields.append(buf)
            buf = ""
            continue
        buf += ch
    fields.append(buf)
    if not all(fields):
        raise ValueError("empty section between colons")
    if len(fields) > 3:
        raise ValueError("too many colons")
    if len(fields) == 1:
        return {"type": "volume", "target": fields[0]}
    source, target = fields[0], fields[1]
    drive = len(source) > 1 and source[1] == ":" and source[0].isalpha()
    bind = source[0] in "./~" or source.startswith("\\\\") or drive
    out: dict[str, Any] = {"type": "bind" if bind else "volume", "source": source, "target": target}
    extra: dict[str, Any] = {"create_host_path": True} if bind else {}
    for option in fields[2].split(",") if len(fields) == 3 else ():
        if option in ("ro", "rw"):
            out["read_only"] = option == "ro"
        elif option == "nocopy":
            out["volume"] = {"nocopy": True}
        elif option in PROPAGATIONS:
            extra["propagation"] = option
        elif option in ("z", "Z"):
            extra["selinux"] = option
        elif option in CONSISTENCIES:
            out["consistency"] = option
        else:
            raise ValueError(f"unknown mode {option!r} (ro, rw, z, Z, nocopy or a propagation like rshared)")
    if out.get("read_only") is False:
        del out["read_only"]
    if extra:
        out["bind"] = extra
    return out
