"""Go ``filepath.Match`` patterns (what Dockerfiles' COPY sources use) as regular expressions.

Pure; shared by the build cache (which files a COPY reads) and the builder (which files it
copies), so both agree on what a pattern selects.
"""

from __future__ import annotations

import re


def match_regex(pattern: str, *, within_component: bool) -> str:
    """The regular expression (text) of ``pattern``. With ``within_component`` the pattern is
    matched against a whole path and ``*``/``?`` do not cross ``/``; without it, against one
    path component. A ``[`` without its ``]`` is a ValueError."""
    star, one = ("[^/]*", "[^/]") if within_component else (".*", ".")
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(one)
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"bad pattern {pattern!r}: '[' without a closing ']'")
            body = pattern[i:end]
            out.append("[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]")
            i = end + 1
        elif ch == "\\" and i < len(pattern):
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(ch))
    return "".join(out)
