"""The building blocks of the stack models: value types and the base class every model shares.

Value types are ``Annotated`` aliases whose validators check one kind of value the way Compose
does (durations, byte sizes, addresses, subnets, restart and pull policies, published ports) and
accept the spellings the canonical stage leaves (``["K=V"]`` lists for maps, numbers for text).
Unit-carrying values stay as written; ``stackd.spec.units`` checks them. ``Model`` is the frozen
base class: no unknown keys, ``x-*`` extension keys dropped, and a ``_prepare`` hook for the few
models that reshape their input first. Nothing here knows a particular Compose key or does I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from stackd.spec.units import parse_bytes, parse_duration

# ---------------------------------------------------------------------------------------- checks


# The checks of text values are memoised: a stack repeats the same few durations, sizes, ports and
# addresses across its services. Only valid values are remembered (a failed check raises).


@functools.lru_cache(maxsize=1024)
def _valid_duration(v: str) -> str:
    parse_duration(v)
    return v


@functools.lru_cache(maxsize=1024)
def _valid_size(v: str) -> str:
    parse_bytes(v)
    return v


def _duration(v: Any) -> Any:
    if not isinstance(v, str):
        raise ValueError(f"expected a duration such as `30s` or `1m30s`, got {v!r}"
                         + (" (a unit is missing)" if isinstance(v, int | float) else ""))
    return _valid_duration(v)


def _bytes(v: Any) -> Any:
    if isinstance(v, str):
        return _valid_size(v)
    parse_bytes(v)
    return v


def _swap(v: Any) -> Any:
    return v if v in (-1, "-1") else _bytes(v)


def _micros_or_duration(v: Any) -> Any:
    if isinstance(v, str) and not re.fullmatch(r"-?[0-9]+", v.strip()):
        parse_duration(v)
    return v


def _ip(kind: str) -> Any:
    @functools.lru_cache(maxsize=1024)
    def check(v: str) -> str:
        text = v[1:-1] if v.startswith("[") and v.endswith("]") else v
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f"expected an {kind} address, got {v!r}") from None
        if kind not in ("IP", f"IPv{addr.version}"):
            raise ValueError(f"expected an {kind} address, got {v!r}")
        return v
    return check


def _subnet(v: str) -> str:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise ValueError(f"expected a subnet in CIDR notation such as `10.5.0.0/16`, got {v!r}") from None
    return v


_RESTART = re.compile(r"no|always|unless-stopped|on-failure(:[0-9]+)?")


def _restart(v: str) -> str:
    if not _RESTART.fullmatch(v):
        raise ValueError(f"expected one of `no`, `always`, `on-failure[:N]`, `unless-stopped`, got {v!r}")
    return v


_PULL = re.compile(r"always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+")


def _pull_policy(v: str) -> str:
    if not _PULL.fullmatch(v):
        raise ValueError("expected one of `always`, `never`, `missing`, `build`, `refresh`, `daily`, "
                         f"`weekly`, `every_<duration>`, got {v!r}")
    return v


_PORTS = re.compile(r"([0-9]+)(?:-([0-9]+))?")


@functools.lru_cache(maxsize=4096)
def _published(v: str) -> str:
    m = _PORTS.fullmatch(v)
    low, high = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, -1)
    if not low <= high <= 65535:
        raise ValueError(f"expected a host port (0-65535) or a range such as `8000-8010`, got {v!r}")
    return v


def _text(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return v


def _kv(v: Any) -> Any:
    """Accept the list form ``["K=V", "K"]`` and scalar values (for maps the canonical stage leaves as is)."""
    if isinstance(v, list) and all(isinstance(i, str) for i in v):
        out: dict[str, Any] = {}
        for item in v:
            key, sep, value = item.partition("=")
            out[key] = value if sep else None
        return out
    if isinstance(v, dict):
        for x in v.values():  # a plain loop: this runs for every environment and labels map
            if x is not None and not isinstance(x, str):
                return {k: _text(value) for k, value in v.items()}
    return v


def _str_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


def nulls_to_empty(v: Any) -> Any:
    """``{name: null}`` → ``{name: {}}``: a declaration (or attachment) without options."""
    if isinstance(v, dict) and any(x is None for x in v.values()):
        return {k: ({} if x is None else x) for k, x in v.items()}
    return v

# ---------------------------------------------------------------------------------------- value types


Duration = Annotated[str, BeforeValidator(_duration)]
Bytes = Annotated[int | str, BeforeValidator(_bytes)]
Swap = Annotated[int | str, BeforeValidator(_swap)]  # a size, or -1 for unlimited
MicrosOrDuration = Annotated[int | str, BeforeValidator(_micros_or_duration)]
NumStr = Annotated[str, Field(coerce_numbers_to_str=True)]
KVMap = Annotated[dict[str, str | None], BeforeValidator(_kv)]
StrList = Annotated[list[str], BeforeValidator(_str_list)]
Options = dict[str, Annotated[str, Field(coerce_numbers_to_str=True)]]
IPv4 = Annotated[str, AfterValidator(_ip("IPv4"))]
IPv6 = Annotated[str, AfterValidator(_ip("IPv6"))]
IP = Annotated[str, AfterValidator(_ip("IP"))]
Subnet = Annotated[str, AfterValidator(_subnet)]
Restart = Annotated[str, AfterValidator(_restart)]
PullPolicy = Annotated[str, AfterValidator(_pull_policy)]
Published = Annotated[NumStr, AfterValidator(_published)]
Name = Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]+$")]
Command = list[str] | None
Scalar = str | int | float | bool

# ---------------------------------------------------------------------------------------- base


class Model(BaseModel):
    """Frozen, no unknown keys; ``x-*`` extension keys are accepted and dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, protected_namespaces=())

    _PREPARES: ClassVar[bool] = False  # True when the class overrides ``_prepare``
    _FIELDS: ClassVar[frozenset[str]] = frozenset()  # the field names of the class

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._FIELDS = frozenset(cls.model_fields)

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if data.__class__ is not dict and not isinstance(data, dict):
            return data
        if cls._PREPARES:
            data = cls._prepare(data)
        if data.keys() <= cls._FIELDS:  # the common case, checked without a loop in Python
            return data
        for key in data:
            if key.__class__ is str and key.startswith("x-"):
                return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        return data


__all__ = [
    "IP",
    "Bytes",
    "Command",
    "Duration",
    "IPv4",
    "IPv6",
    "KVMap",
    "MicrosOrDuration",
    "Model",
    "Name",
    "NumStr",
    "Options",
    "Published",
    "PullPolicy",
    "Restart",
    "Scalar",
    "StrList",
    "Subnet",
    "Swap",
    "nulls_to_empty",
]
