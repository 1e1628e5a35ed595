"""Cache keys of build steps: equal keys mean the step's result can be reused.

A step's key hashes its parent's key (so a change invalidates every later step), the step's
canonical text after substitution (line numbers, comments and spacing do not count), the keys or
image ids of other stages and images it reads, and for COPY/ADD from the context the content of
the files it selects: their paths, kinds, permission bits and contents (or symlink targets),
never their times or owners. Rebuilding an unchanged context therefore hits the cache at every
step, touching one file's mtime changes nothing, and changing its content invalidates from the
first COPY that selects it on. RUN keys also carry the build arguments in scope (the shell sees
them), so a changed ``--build-arg`` invalidates from its first use, as with Docker; an ARG step
itself only records the names it declares.

Pure apart from reading the build context's files to hash them. ADD of a URL is keyed by the
URL (its content is not fetched here).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackd.build.globs import match_regex
from stackd.build.ignore import IgnoreMatcher, clean, context_files
from stackd.build.instructions import Arg, Copy, Instruction, Run
from stackd.build.resolve import BuildPlan, Step
from stackd.errors import Pos, Problem, SpecError

_REMOTE = re.compile(r"(?:https?|git)://|git@", re.IGNORECASE)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BuildContext:
    """A build context directory and the entries its ignore patterns keep (``context_files``)."""

    root: Path
    entries: tuple[str, ...]


def load_context(root: Path, patterns: Sequence[str] = ()) -> BuildContext:
    """Walk ``root`` once, keeping what the ignore ``patterns`` let through."""
    return BuildContext(root, tuple(context_files(root, patterns)))


def _glob(pattern: str) -> re.Pattern[str]:
    """Go ``filepath.Match`` semantics: ``*`` and ``?`` stay within one path component."""
    return re.compile(match_regex(pattern, within_component=True))


def select_sources(entries: Sequence[str], sources: Sequence[str],
                   exclude: Sequence[str] = ()) -> tuple[str, ...]:
    """The context entries that COPY/ADD ``sources`` read: a path selects itself and everything
    under it, a wildcard every entry it matches (and their contents), ``.`` the whole context.
    Paths are taken relative to the context root (``/app`` is ``app``; ``..`` cannot leave it).
    ``ValueError`` naming the sources that select nothing."""
    picked: set[str] = set()
    missing: list[str] = []
    for src in sources:
        if _REMOTE.match(src):
            continue
        rel = clean("/" + src).lstrip("/")
        if rel in ("", "."):
            hits = list(entries)
        elif any(c in rel for c in "*?["):
            pattern = _glob(rel)
            tops = [e for e in entries if pattern.fullmatch(e)]
            hits = [e for e in entries if any(e == t or e.startswith(t + "/") for t in tops)]
        else:
            hits = [e for e in entries if e == rel or e.startswith(rel + "/")]
        if not hits and rel not in ("", "."):
            missing.append(src)
        picked.update(hits)
    if missing:
        raise ValueError(f"{', '.join(repr(m) for m in missing)} not found in the build context")
    if exclude:
        matcher = IgnoreMatcher(exclude)
        picked = {p for p in picked if not matcher.excluded(p)}
    return tuple(sorted(picked))


def content_digest(root: Path, paths: Sequence[str]) -> str:
    """A digest of the entries ``paths`` under ``root``: path, kind, permission bits and content
    (file bytes, symlink target). Times, owners and the order of ``paths`` do not count."""
    h = hashlib.sha256()
    for rel in sorted(paths):
        full = root / rel
        st = full.lstat()
        if stat.S_ISREG(st.st_mode):
            kind, data = "file", _file_digest(full)
        elif stat.S_ISLNK(st.st_mode):
            kind, data = "symlink", os.readlink(full)
        elif stat.S_ISDIR(st.st_mode):
            kind, data = "dir", ""
        else:
            kind, data = "special", ""
        h.update(f"{rel}\0{kind}\0{stat.S_IMODE(st.st_mode):o}\0{data}\n".encode("utf-8", "surrogateescape"))
    return "sha256:" + h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in ("line", "end_line")}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def step_text(step: Step) -> str:
    """The canonical text of a substituted step (what its key hashes besides content)."""
    instr: Instruction = step.instruction
    names = [d.name for d in instr.args] if isinstance(instr, Arg) else None
    body: dict[str, Any] = {"names": names} if names is not None else _plain(instr)
    if isinstance(instr, Run):
        body["build_args"] = [list(kv) for kv in step.build_args]
    return json.dumps({"instruction": instr.keyword, **body}, sort_keys=True, separators=(",", ":"))


def step_key(parent: str, text: str, content: str = "", reads: Sequence[str] = ()) -> str:
    """The key of a step: its parent's key, its text, the digest of the content it copies and
    the keys/ids of what else it reads."""
    doc = json.dumps([parent, text, content, list(reads)], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


def stage_keys(plan: BuildPlan, context: BuildContext,
               images: Mapping[str, str]) -> dict[int, tuple[str, ...]]:
    """For each stage of ``plan``: the key of its FROM, then one key per step. ``images`` maps
    every image the plan names (bases, ``COPY --from`` images) to its id."""
    keys: dict[int, tuple[str, ...]] = {}
    problems: list[Problem] = []
    for stage in plan.stages:
        if stage.base_stage is not None:
            base = keys[stage.base_stage][-1]
        else:
            base = _image_id(images, stage.base_image or "scratch")
        key = step_key("", json.dumps({"from": base, "platform": stage.platform}, sort_keys=True))
        out = [key]
        for step in stage.steps:
            reads = [keys[i][-1] for i in step.stages] + [_image_id(images, ref) for ref in step.images]
            content = ""
            instr = step.instruction
            if isinstance(instr, Copy) and not step.stages and not step.images and instr.sources:
                try:
                    selected = select_sources(context.entries, instr.sources, instr.exclude)
                    content = content_digest(context.root, selected)
                except ValueError as exc:
                    problems.append(Problem(f"{instr.keyword}: {exc}", Pos(plan.file, instr.line, 1), "",
                                            "check the path and the .dockerignore file"))
            key = step_key(key, step_text(step), content, reads)
            out.append(key)
        keys[stage.index] = tuple(out)
    if problems:
        raise SpecError(problems)
    return keys


def _image_id(images: Mapping[str, str], ref: str) -> str:
    if ref == "scratch":
        return "scratch"
    try:
        return images[ref]
    except KeyError:
        raise LookupError(f"no image id was given for {ref!r}") from None

