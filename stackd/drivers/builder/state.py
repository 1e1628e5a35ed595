"""The state of a build stage between steps: its layers, its image config and its history.

``StageState`` is what a step turns into another ``StageState``: RUN, COPY, ADD and WORKDIR add a
layer, every other instruction changes only the config (``apply_metadata``, pure). It is also
what the build cache stores per step key (``to_json``/``from_json``) and what becomes the image
config blob at the end (``config_blob``). The rules are Docker's: ENV replaces a variable in
place, a relative WORKDIR is joined to the previous one, ENTRYPOINT resets a CMD inherited from
the base image (not one set in this stage), shell-form CMD/ENTRYPOINT run under the current
SHELL, HEALTHCHECK replaces the whole check. Pure data and functions: no I/O.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stackd.build.instructions import (
    Add,
    Arg,
    Cmd,
    Command,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from stackd.drivers.images.config import Healthcheck as ImageHealthcheck
from stackd.drivers.images.digests import Digest, parse_digest
from stackd.drivers.images.oci import OCI_LAYER, dump_json

DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class LayerDesc:
    """One layer of an image: its blob (media type, digest, size) and its diff id."""

    media_type: str
    digest: Digest
    size: int
    diff_id: Digest

    @classmethod
    def plain(cls, digest: Digest, size: int) -> LayerDesc:
        """An uncompressed layer (its blob digest is its diff id), as builds make them."""
        return cls(OCI_LAYER, digest, size, digest)


@dataclass(frozen=True)
class History:
    """One entry of the image history (``docker history``)."""

    created: str
    created_by: str
    empty_layer: bool = False
    comment: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"created": self.created, "created_by": self.created_by}
        if self.empty_layer:
            out["empty_layer"] = True
        if self.comment:
            out["comment"] = self.comment
        return out


@dataclass(frozen=True)
class ConfigState:
    """The runtime part of an image config (``config`` in the OCI document), Docker's fields."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    healthcheck: ImageHealthcheck | None = None
    stop_signal: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    shell: tuple[str, ...] | None = None

    def env_map(self) -> dict[str, str]:
        return {k: v for k, _, v in (e.partition("=") for e in self.env)}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.env:
            out["Env"] = list(self.env)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.healthcheck is not None:
            out["Healthcheck"] = _healthcheck_json(self.healthcheck)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ConfigState:
        """From the ``config`` object of an image config (fields of the wrong type are dropped:
        the store has checked the ones that matter)."""
        def strings(key: str) -> tuple[str, ...] | None:
            value = raw.get(key)
            if isinstance(value, list) and all(isinstance(s, str) for s in value):
                return tuple(value)
            return None

        def text(key: str) -> str:
            value = raw.get(key)
            return value if isinstance(value, str) else ""

        def keys(key: str) -> tuple[str, ...]:
            value = raw.get(key)
            return tuple(sorted(value)) if isinstance(value, dict) else ()

        labels = raw.get("Labels")
        health = raw.get("Healthcheck")
        return cls(
            env=strings("Env") or (), cmd=strings("Cmd"), entrypoint=strings("Entrypoint"),
            working_dir=text("WorkingDir"), user=text("User"), exposed_ports=keys("ExposedPorts"),
            volumes=keys("Volumes"),
            healthcheck=_healthcheck_from(health) if isinstance(health, dict) else None,
            stop_signal=text("StopSignal"),
            labels=tuple(sorted((k, v) for k, v in labels.items() if isinstance(v, str)))
            if isinstance(labels, dict) else (),
            shell=strings("Shell"),
        )


@dataclass(frozen=True)
class StageState:
    """A stage after some steps: its layers (bottom first), config, history, author, the time
    of its last change, and whether this stage has set CMD itself."""

    layers: tuple[LayerDesc, ...] = ()
    config: ConfigState = ConfigState()
    history: tuple[History, ...] = ()
    created: str = ""
    author: str = ""
    cmd_set: bool = False
    architecture: str = ""
    os: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size, "diffID": d.diff_id}
                       for d in self.layers],
            "config": self.config.to_json(), "history": [h.to_json() for h in self.history],
            "created": self.created, "author": self.author, "cmdSet": self.cmd_set,
            "architecture": self.architecture, "os": self.os,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StageState:
        """The inverse of ``to_json``; ``ValueError`` (or ``KeyError``/``TypeError``) when the
        document is not one (a damaged cache entry)."""
        layers = tuple(LayerDesc(str(d["mediaType"]), parse_digest(d["digest"]), int(d["size"]),
                                 parse_digest(d["diffID"])) for d in raw["layers"])
        history = tuple(History(str(h["created"]), str(h["created_by"]), bool(h.get("empty_layer", False)),
                                str(h.get("comment", ""))) for h in raw["history"])
        return cls(layers, ConfigState.from_json(raw["config"]), history, str(raw["created"]),
                   str(raw["author"]), bool(raw["cmdSet"]), str(raw["architecture"]), str(raw["os"]))


def base_state(config_blob: bytes, layers: Sequence[LayerDesc]) -> StageState:
    """The state a stage starts from when its FROM names an image (config blob + its layers)."""
    raw = json.loads(config_blob)
    history = tuple(
        History(str(h.get("created", "")), str(h.get("created_by", "")), bool(h.get("empty_layer", False)),
                str(h.get("comment", "")))
        for h in raw.get("history") or [] if isinstance(h, dict))
    config = raw.get("config") or {}
    return StageState(tuple(layers), ConfigState.from_json(config if isinstance(config, dict) else {}),
                      history, str(raw.get("created") or ""), str(raw.get("author") or ""), False,
                      str(raw.get("architecture") or ""), str(raw.get("os") or ""))


def set_env(env: Sequence[str], pairs: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """``env`` (``K=V`` entries) with ``pairs`` set: an existing name keeps its place."""
    out = list(env)
    for key, value in pairs:
        entry = f"{key}={value}"
        for i, e in enumerate(out):
            if e.partition("=")[0] == key:
                out[i] = entry
                break
        else:
            out.append(entry)
    return tuple(out)


def join_workdir(current: str, path: str) -> str:
    """WORKDIR ``path`` after ``current``: relative paths continue the previous one."""
    joined = path if path.startswith("/") else posixpath.join(current or "/", path)
    return posixpath.normpath(joined).replace("//", "/")


def command_argv(command: Command, shell: tuple[str, ...] | None) -> tuple[str, ...]:
    """A CMD/ENTRYPOINT/RUN command as argv: exec form as is, shell form under ``shell``."""
    return command.argv(shell or DEFAULT_SHELL)


def apply_metadata(state: StageState, instr: Instruction) -> StageState:
    """The state after a step that changes only the config (not RUN, COPY, ADD, WORKDIR)."""
    c = state.config
    cmd_set = state.cmd_set
    author = state.author
    if isinstance(instr, Env):
        c = replace(c, env=set_env(c.env, instr.pairs))
    elif isinstance(instr, Label):
        labels = dict(c.labels)
        labels.update(instr.pairs)
        c = replace(c, labels=tuple(sorted(labels.items())))
    elif isinstance(instr, User):
        c = replace(c, user=instr.user)
    elif isinstance(instr, Expose):
        c = replace(c, exposed_ports=tuple(sorted({*c.exposed_ports, *instr.ports})))
    elif isinstance(instr, Volume):
        c = replace(c, volumes=tuple(sorted({*c.volumes, *instr.paths})))
    elif isinstance(instr, Cmd):
        c = replace(c, cmd=command_argv(instr.command, c.shell))
        cmd_set = True
    elif isinstance(instr, Entrypoint):
        c = replace(c, entrypoint=command_argv(instr.command, c.shell), cmd=c.cmd if cmd_set else None)
    elif isinstance(instr, Healthcheck):
        c = replace(c, healthcheck=ImageHealthcheck(instr.test, instr.interval, instr.timeout,
                                                    instr.start_period, instr.start_interval, instr.retries))
    elif isinstance(instr, Shell):
        c = replace(c, shell=instr.shell)
    elif isinstance(instr, StopSignal):
        c = replace(c, stop_signal=instr.signal)
    elif isinstance(instr, Maintainer):
        author = instr.name
    elif isinstance(instr, Workdir):
        c = replace(c, working_dir=join_workdir(c.working_dir, instr.path))
    elif not isinstance(instr, Arg):
        raise ValueError(f"{instr.keyword} is not a metadata instruction")
    return replace(state, config=c, cmd_set=cmd_set, author=author)


def describe(instr: Instruction) -> str:
    """A one-line text of a (substituted) instruction, for progress and the image history."""
    k = instr.keyword
    if isinstance(instr, Run):
        body = instr.script() if instr.command.shell_form else json.dumps(list(instr.command.args))
        flags = [f"--mount={m}" for m in instr.mounts]
        flags += [f"--network={instr.network}"] if instr.network else []
        return " ".join([k, *flags, body.strip()])
    if isinstance(instr, Copy):
        flags = [f"--{name}={value}" for name, value in (("from", instr.from_), ("chown", instr.chown),
                                                         ("chmod", instr.chmod)) if value]
        sources = [*instr.sources, *(f"<<{h.name}" for h in instr.heredocs)]
        return " ".join([k, *flags, *sources, instr.dest])
    if isinstance(instr, Env | Label):
        return " ".join([k, *(f"{key}={json.dumps(v) if ' ' in v else v}" for key, v in instr.pairs)])
    if isinstance(instr, Arg):
        return " ".join([k, *(d.name for d in instr.args)])
    if isinstance(instr, Cmd | Entrypoint):
        form = instr.command.args[0] if instr.command.shell_form else json.dumps(list(instr.command.args))
        return f"{k} {form}"
    if isinstance(instr, Healthcheck):
        return f"{k} {' '.join(instr.test)}"
    if isinstance(instr, Shell):
        return f"{k} {json.dumps(list(instr.shell))}"
    if isinstance(instr, Expose):
        return " ".join([k, *instr.ports])
    if isinstance(instr, Volume):
        return " ".join([k, *instr.paths])
    if isinstance(instr, Workdir):
        return f"{k} {instr.path}"
    if isinstance(instr, User):
        return f"{k} {instr.user}"
    if isinstance(instr, StopSignal):
        return f"{k} {instr.signal}"
    if isinstance(instr, Maintainer):
        return f"{k} {instr.name}"
    return k


def is_layer_step(instr: Instruction) -> bool:
    """Whether the instruction makes a filesystem change (RUN, COPY, ADD; WORKDIR may)."""
    return isinstance(instr, Run | Copy | Add | Workdir)


def config_blob(state: StageState, labels: Mapping[str, str] = {}) -> bytes:
    """The image config document of a finished stage, with ``labels`` added to its own."""
    config = state.config
    if labels:
        merged = dict(config.labels)
        merged.update(labels)
        config = replace(config, labels=tuple(sorted(merged.items())))
    doc: dict[str, Any] = {
        "created": state.created,
        "architecture": state.architecture,
        "os": state.os,
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [d.diff_id for d in state.layers]},
        "history": [h.to_json() for h in state.history],
    }
    if state.author:
        doc["author"] = state.author
    return dump_json(doc)


def _healthcheck_json(h: ImageHealthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": list(h.test)}
    for key, value in (("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period),
                       ("StartInterval", h.start_interval), ("Retries", h.retries)):
        if value:
            out[key] = value
    return out


def _healthcheck_from(raw: Mapping[str, Any]) -> ImageHealthcheck:
    def number(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    test = raw.get("Test")
    return ImageHealthcheck(tuple(str(t) for t in test) if isinstance(test, list) else (),
                            number("Interval"), number("Timeout"), number("StartPeriod"),
                            number("StartInterval"), number("Retries"))
