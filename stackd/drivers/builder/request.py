"""What a service's ``build:`` section asks of the builder: the keyword arguments of ``build_image``.

One translation, used by ``stack build`` and by ``stack up`` (through the host driver), so both
build the same image the same way. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackd.errors import PermanentDriverError
from stackd.spec.models import Service


def build_kwargs(service: Service, tags: Sequence[str], *, no_cache: bool = False) -> dict[str, Any]:
    """``context``, ``dockerfile`` (a path in the context, or the inline text), ``target``,
    ``build_args`` (those with a value: the loader already took valueless ones from the
    project's variables), ``labels``, ``tags`` (de-duplicated, in order) and ``no_cache``."""
    build = service.build
    if build is None:
        raise PermanentDriverError(f"service {service.name} has no build section")
    context = build.context or "."
    dockerfile: Path | str = build.dockerfile_inline if build.dockerfile_inline is not None \
        else Path(context, build.dockerfile or "Dockerfile")
    return {"context": Path(context), "dockerfile": dockerfile, "target": build.target,
            "build_args": {k: v for k, v in build.args.items() if v is not None},
            "labels": {k: v or "" for k, v in build.labels.items()},
            "tags": list(dict.fromkeys([*tags, *build.tags])),
            "no_cache": bool(no_cache or build.no_cache)}
