"""Image names as the store keys them: ``repository:tag``, with ``:latest`` added when no tag is given.

Names are kept as written otherwise (``nginx`` stays ``nginx:latest``; no ``docker.io/library/``
is added). The grammar is Docker's: lowercase path components separated by ``/``, an optional
registry host (with port) in front, a tag of at most 128 word characters, dots and dashes.
References by digest (``name@sha256:...``) are refused. Pure.
"""

from __future__ import annotations

import re

from stackd.drivers.images.errors import ImageError

DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
_REPOSITORY = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")


def split_name(name: str) -> tuple[str, str]:
    """``(repository, tag)`` of an image name; the tag defaults to ``latest``."""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, DEFAULT_TAG


def normalize_name(name: str) -> str:
    """``repository:tag`` for ``name``, or ``ImageError`` saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise ImageError("an image name must not be empty")
    if "@" in name:
        raise ImageError(f"image name {name!r}: references by digest are not supported; use name:tag")
    repo, tag = split_name(name.strip())
    if not _TAG.fullmatch(tag):
        raise ImageError(f"image name {name!r}: invalid tag {tag!r} "
                         "(up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')")
    if not _REPOSITORY.fullmatch(repo):
        hint = " (repository names must be lowercase)" if repo != repo.lower() else ""
        raise ImageError(f"invalid image name {name!r}{hint}")
    if len(repo) > 255:
        raise ImageError(f"image name {name!r}: the repository name is longer than 255 characters")
    return f"{repo}:{tag}"
