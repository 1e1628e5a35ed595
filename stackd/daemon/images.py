"""The image verbs of ``stack`` as service functions: list, inspect, remove, prune, import, export
and bootstrap images in stackd's store, ``build`` the services of a stack that have ``build:``, and
``info`` about this installation (runtime, cgroups, conmon, store).

Each function takes the data root (``data_root()``: ``$STACKD_DATA_ROOT`` or /var/lib/stackd) and
returns plain records; nothing here prints. Mistakes in what the user asked for (a missing file, a
malformed image name, a reference that cannot be bootstrapped, an unknown service) are
``SpecError`` s (exit 2); a missing image, a broken archive or a failed build are driver errors
(exit 1). The functions block (file I/O, subprocesses): async callers run them in a worker thread.

Images used by containers are protected through one seam, ``in_use``: a callable returning the
container records of the host (none by default); ``image_rm`` refuses such an image and
``image_prune`` keeps its content. The builder is imported lazily (``load_builder``), so that a
build of stackd without it still runs every other verb.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stackd import __version__
from stackd.drivers.builder.request import build_kwargs
from stackd.drivers.cgroups.detect import detect as detect_cgroups
from stackd.drivers.host import ContainerRecord
from stackd.drivers.images import ImageError, ImageNotFoundError, ImageRef, ImageStore, ImageSummary
from stackd.drivers.images import export_archive as _export
from stackd.drivers.images import import_archive as _import
from stackd.drivers.images.bootstrap import DEFAULT_MIRROR, bootstrap_debian, parse_debian_ref
from stackd.drivers.images.names import normalize_name, split_name
from stackd.drivers.images.oci import parse_manifest
from stackd.drivers.monitor import find_conmon
from stackd.drivers.runtime import OciRuntime, RuntimeInfo, detect
from stackd.errors import PermanentDriverError, Problem, SpecError, StackdError
from stackd.plan.names import image_ref
from stackd.spec.loader import load
from stackd.spec.options import ProjectOptions
from stackd.spec.tree import position_of

DATA_ROOT_ENV = "STACKD_DATA_ROOT"
RUN_DIR_ENV = "STACKD_RUN_DIR"
DEFAULT_DATA_ROOT = Path("/var/lib/stackd")
DEFAULT_RUN_DIR = Path("/run/stackd")
BUILDER_MODULE = "stackd.drivers.builder"

InUse = Callable[[], Iterable[ContainerRecord]]
"""The containers of the host, asked when an image is removed or content is pruned."""
BuildProgress = Callable[[str, Any], None]
"""Called with a service name and each event its build reports."""

_HEX_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{4,64})")
_VERSION = re.compile(r"version\s+(\S+)")


def data_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$STACKD_DATA_ROOT`` (of ``environ``, else of this process), or /var/lib/stackd."""
    return Path((os.environ if environ is None else environ).get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT)


def run_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$STACKD_RUN_DIR``, or /run/stackd."""
    return Path((os.environ if environ is None else environ).get(RUN_DIR_ENV) or DEFAULT_RUN_DIR)


def no_containers() -> list[ContainerRecord]:
    """The default ``in_use`` (until the daemon wires the host's containers in): none."""
    return []


@dataclass(frozen=True)
class ImageRow:
    """One image of the store, by name."""

    name: str
    id: str
    manifest_digest: str
    created: str | None
    size: int

    @property
    def repository(self) -> str:
        return split_name(self.name)[0]

    @property
    def tag(self) -> str:
        return split_name(self.name)[1]

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repository": self.repository, "tag": self.tag, "id": self.id,
                "manifest_digest": self.manifest_digest, "created": self.created, "size": self.size}


def _row(s: ImageSummary) -> ImageRow:
    return ImageRow(s.name, s.id, s.manifest_digest, s.created, s.size)


def _ref_row(store: ImageStore, ref: ImageRef) -> ImageRow:
    return next(_row(s) for s in store.list() if s.name == ref.name)


def _valid_name(name: str) -> str:
    try:
        return normalize_name(name)
    except ImageError as exc:
        raise SpecError(Problem(str(exc), hint="an image name is repository[:tag], e.g. web:1.0")) from None


def _resolve(store: ImageStore, name: str) -> ImageRef:
    """The image called ``name``, or whose id is ``name`` / starts with ``name`` (as ``image ls``
    shows ids: 12 hex digits)."""
    match = _HEX_PREFIX.fullmatch(name)
    try:
        return store.resolve(name if name.startswith("sha256:") else _valid_name(name))
    except ImageNotFoundError:
        if match is None:
            raise
    ids = sorted({s.id for s in store.list() if s.id.removeprefix("sha256:").startswith(match.group(1))})
    if len(ids) > 1:
        raise SpecError(Problem(f"image id prefix {name!r} is ambiguous: it matches {', '.join(ids)}",
                                hint="give more digits"))
    if not ids:
        raise ImageNotFoundError(f"no image {name!r} in the image store ({store.dir})")
    return store.resolve(ids[0])


def image_ls(root: Path) -> list[ImageRow]:
    """Every named image, sorted by name."""
    return [_row(s) for s in ImageStore(root).list()]


def image_inspect(root: Path, name: str) -> dict[str, Any]:
    """The ``docker image inspect`` view of one image (``Id`` is the config digest)."""
    store = ImageStore(root)
    return store.inspect(_resolve(store, name).id)


@dataclass(frozen=True)
class Removed:
    """What ``image_rm`` did: the names it dropped; ``last`` when no name refers to the content
    any more (``image_prune`` frees it)."""

    untagged: tuple[str, ...]
    id: str
    last: bool


def image_rm(root: Path, name: str, in_use: InUse = no_containers) -> Removed:
    """Drop the name ``name`` (or, given an id, the one name of that image). An image a container
    uses keeps its last name: that is refused."""
    store = ImageStore(root)
    ref = _resolve(store, name)
    names = [s.name for s in store.list() if s.id == ref.id]
    by_id = name.startswith("sha256:") or _valid_name(name) not in names
    if by_id and len(names) > 1:
        raise PermanentDriverError(f"image {ref.id} has several names ({', '.join(names)}): "
                                   "remove them by name")
    drop = names if by_id else [ref.name]
    users = sorted(c.name for c in in_use() if c.image_id in (ref.id, ref.manifest_digest))
    if users and len(drop) == len(names):
        raise PermanentDriverError(f"image {ref.name} is used by container(s) {', '.join(users)}; "
                                   "remove them first (`stack down`)")
    for n in drop:
        store.remove(n)
    return Removed(tuple(drop), ref.id, len(drop) == len(names))


@dataclass(frozen=True)
class Pruned:
    """What ``image_prune`` removed and how many bytes that freed."""

    blobs: int
    layers: int
    temporary: int
    reclaimed: int


def image_prune(root: Path, in_use: InUse = no_containers) -> Pruned:
    """Remove the content no name refers to, except what the containers of ``in_use`` use."""
    store = ImageStore(root)
    before = store_size(root)
    report = store.gc(keep=_manifests_in_use(store, {c.image_id for c in in_use() if c.image_id}))
    return Pruned(len(report.blobs), len(report.layers), len(report.temporary),
                  max(0, before - store_size(root)))


def _manifests_in_use(store: ImageStore, ids: set[str]) -> list[str]:
    """The manifest digests of images whose id (config digest) or manifest digest is in ``ids``,
    also of images that lost their name since their container was made."""
    if not ids:
        return []
    found: set[str] = {s.manifest_digest for s in store.list() if s.id in ids or s.manifest_digest in ids}
    for blob in sorted(store.blobs_dir.iterdir()) if store.blobs_dir.is_dir() else ():
        digest = f"sha256:{blob.name}"
        if digest in ids:
            found.add(digest)
            continue
        with contextlib.suppress(OSError, ValueError, ImageError):
            if len(blob.name) == 64 and blob.stat().st_size < (1 << 20) \
                    and parse_manifest(blob.read_bytes()).config.digest in ids:
                found.add(digest)
    return sorted(found)


def image_import(root: Path, archive: Path, name: str | None = None) -> list[ImageRow]:
    """Add the images of an OCI-layout or ``docker save`` archive (``name`` for a one-image
    archive); the images added."""
    archive = Path(archive)
    if not archive.is_file():
        what = f"{archive} is not a file" if archive.exists() else f"{archive}: no such file"
        raise SpecError(Problem(what, hint="give the path of an image archive"))
    store = ImageStore(root)
    return [_ref_row(store, r) for r in _import(store, archive, None if name is None else _valid_name(name))]


def image_export(root: Path, name: str, archive: Path) -> Path:
    """Write the image ``name`` as an OCI image-layout tar at ``archive``."""
    archive = Path(archive)
    if archive.is_dir():
        raise SpecError(Problem(f"{archive} is a directory", hint="give the path of the archive to write"))
    if not archive.parent.is_dir():
        raise SpecError(Problem(f"{archive.parent}: no such directory"))
    store = ImageStore(root)
    return _export(store, _resolve(store, name).name, archive)


def image_bootstrap(root: Path, ref: str, mirror: str | None = None) -> ImageRow:
    """Bootstrap ``debian:<suite>[-slim]`` from Debian's archive into the store as ``ref``."""
    parsed = parse_debian_ref(ref)
    if parsed is None:
        raise SpecError(Problem(f"cannot bootstrap {ref!r}: no registry: only Debian images can be made",
                                hint="debian:<suite> or debian:<suite>-slim, e.g. debian:bookworm-slim"))
    suite, slim = parsed
    store = ImageStore(root)
    return _ref_row(store, bootstrap_debian(store, _valid_name(ref), suite=suite, slim=slim,
                                                   mirror=mirror or DEFAULT_MIRROR))


@dataclass(frozen=True)
class Built:
    """One service's image: the names it got and its id."""

    service: str
    names: tuple[str, ...]
    id: str


def load_builder(module: str = BUILDER_MODULE) -> Callable[..., Any]:
    """``build_image`` of the builder package, imported only when a build is asked for."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise
        raise PermanentDriverError(
            f"this installation of stackd cannot build images ({module} is missing); "
            "import a prepared image with `stack image import` instead") from exc
    fn = getattr(mod, "build_image", None)
    if not callable(fn):
        raise PermanentDriverError(f"{module} has no build_image function")
    return fn  # type: ignore[no-any-return]


def describe_event(event: Any) -> str:
    """A build event as one line of text."""
    if isinstance(event, str):
        return event
    render = getattr(event, "render", None)
    return str(render()) if callable(render) else str(getattr(event, "text", event))


def build(options: ProjectOptions, services: Sequence[str] = (), no_cache: bool = False, *,
          root: Path | None = None, progress: BuildProgress | None = None,
          warn: Callable[[str], None] | None = None, builder: Callable[..., Any] | None = None,
          runtime: Any = None) -> list[Built]:
    """Build the image of every service with ``build:`` (of ``services``, else of all), named
    after its ``image:`` (else ``<project>-<service>``) plus ``build.tags``. ``builder`` and
    ``runtime`` default to the builder package and this host's OCI runtime."""
    loaded = load(options)
    stack = loaded.stack
    say = warn or (lambda _text: None)
    for w in loaded.warnings:
        say(w.render())
    unknown = [s for s in services if s not in stack.services]
    if unknown:
        raise SpecError([Problem(f"no such service: {s}", hint=f"services: {', '.join(stack.services)}")
                         for s in unknown])
    chosen = [stack.services[s] for s in (services or stack.services)]
    for svc in (c for c in chosen if c.build is None and services):
        say(f"service {svc.name} has no build section; nothing to build")
    plans = [_build_args(loaded.tree, stack.name, svc) for svc in chosen if svc.build]
    if not plans:
        return []
    build_image = builder or load_builder()
    store = ImageStore(root if root is not None else data_root(options.environ))
    if runtime is None:
        info = detect()
        runtime = OciRuntime(info, root=run_dir(options.environ) / "runtime" / info.name)
    out = []
    for name, kwargs in plans:
        if no_cache:
            kwargs["no_cache"] = True
        try:
            ref = build_image(store, runtime, **kwargs,
                              progress=functools.partial(progress, name) if progress else _ignore)
        except SpecError:
            raise
        except (StackdError, OSError, ValueError) as exc:  # one exit code (1), and the service named
            raise PermanentDriverError(f"service {name}: the build failed: {exc}") from exc
        out.append(Built(name, tuple(kwargs["tags"]), str(getattr(ref, "id", ""))))
    return out


def _ignore(event: Any) -> None:
    """A progress callback that drops every event."""


def _build_args(tree: Any, project: str, svc: Any) -> tuple[str, dict[str, Any]]:
    context = svc.build.context or "."
    if "://" in context or context.startswith("git@"):
        raise SpecError(Problem(f"remote build contexts are not supported: {context}",
                                position_of(tree, ("services", svc.name, "build", "context")),
                                f"services.{svc.name}.build.context", "use a local directory"))
    tags = [_valid_name(t) for t in [image_ref(project, svc), *svc.build.tags]]
    return svc.name, build_kwargs(svc, tags)


@dataclass(frozen=True)
class Info:
    """What ``stack info`` reports. A part that cannot be found is ``None``, and ``problems`` says
    why (keyed ``runtime``, ``cgroups``, ``conmon``, ``images``)."""

    version: str
    data_root: str
    run_dir: str
    runtime: dict[str, Any] | None
    cgroup_mode: str | None
    conmon: dict[str, Any] | None
    images: int | None
    store_bytes: int
    problems: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_number(text: str) -> str:
    """``1.8.1`` of ``crun version 1.8.1``; the text itself when it has no such word."""
    m = _VERSION.search(text)
    return m.group(1).rstrip(",") if m else text.strip()


def conmon_version(path: str) -> str:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PermanentDriverError(f"{path} --version failed: {exc}") from exc
    return version_number(done.stdout.splitlines()[0] if done.stdout else "")


def info(environ: Mapping[str, str] | None = None, *, runtime: Callable[[], RuntimeInfo] | None = None,
         cgroup_mode: Callable[[], str] | None = None, conmon: Callable[[], str] | None = None) -> Info:
    """Facts about this installation; a part that cannot be found is reported, not raised.
    ``runtime``, ``cgroup_mode`` and ``conmon`` default to probing this host."""
    problems: dict[str, str] = {}

    def attempt(part: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except StackdError as exc:
            problems[part] = str(exc)
            return None

    root = data_root(environ)
    rt: RuntimeInfo | None = attempt("runtime", runtime or detect)
    mode = attempt("cgroups", cgroup_mode or (lambda: detect_cgroups().mode))
    conmon_path = attempt("conmon", conmon or find_conmon)
    images = attempt("images", lambda: len(ImageStore(root).names()))
    return Info(
        __version__, str(root), str(run_dir(environ)),
        None if rt is None else {"name": rt.name, "version": version_number(rt.version), "path": rt.path,
                                 "private_mount_namespace": rt.needs_private_mount_ns,
                                 "unified_mount": rt.unified_mount},
        mode,
        None if conmon_path is None else {"path": conmon_path,
                                          "version": attempt("conmon", lambda: conmon_version(conmon_path))},
        images, store_size(root), problems)


def store_size(root: Path) -> int:
    """Bytes of the files in the image store (each hard-linked file once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, _dirs, files in os.walk(ImageStore(root).dir):
        for f in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(top, f))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total
