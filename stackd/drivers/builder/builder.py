"""``build_image``: a Dockerfile and a build context become an image in stackd's image store.

The order of work:

1. Parse the Dockerfile and resolve it for the target (``stackd.build``); refuse what this
   builder cannot do (``checks``) before anything runs.
2. Find the base images (and ``COPY --from`` images) in the store, bootstrapping Debian ones
   (``bases``); resolve again with their environment (``ENV PATH=...:$PATH`` needs it).
3. Compute every step's cache key (``stackd.build.stage_keys``) and build the target stage
   lazily: a stage starts from the latest of its steps the cache still holds, and another stage
   is built only when a step that reads it has to run. An unchanged build is all cache hits
   and runs nothing.
4. Add the image (manifest, config, layers) to the store under every tag at once, only now:
   a failed build leaves no image, no mounts, no containers and no cgroups behind (steps that
   finished stay in the build cache, so the next attempt resumes after them).

It blocks (processes, file I/O); async callers run it in a worker thread. The caller decides
whether to build; nothing here looks at stacks or services.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from stackd.build.cache import load_context, stage_keys
from stackd.build.dockerfile import Dockerfile, parse_dockerfile, read_dockerfile
from stackd.build.ignore import read_dockerignore
from stackd.build.instructions import Arg, Copy, Run, Workdir
from stackd.build.resolve import BuildPlan, ResolvedStage, Step, resolve
from stackd.drivers.builder.bases import DEFAULT_SOURCES, BaseImageSource, find_image
from stackd.drivers.builder.cache import BuildCache
from stackd.drivers.builder.checks import check_supported
from stackd.drivers.builder.events import BuildEvent, Progress, ignore_progress
from stackd.drivers.builder.fsview import ContextFS, LayeredFS, SourceFS
from stackd.drivers.builder.mounts import Mounter, OverlayMounter, unmount_under
from stackd.drivers.builder.runstep import BuildRuntime
from stackd.drivers.builder.state import (
    History,
    LayerDesc,
    StageState,
    apply_metadata,
    base_state,
    config_blob,
    describe,
)
from stackd.drivers.builder.steps import StepRunner, Tools
from stackd.drivers.images.names import normalize_name
from stackd.drivers.images.oci import build_manifest, host_platform, parse_manifest
from stackd.drivers.images.records import ImageRef, NewImage
from stackd.drivers.images.store import ImageStore
from stackd.drivers.runtime.host import probe_host_limits
from stackd.drivers.runtime.request import HostLimits

INLINE_DOCKERFILE = "Dockerfile (inline)"


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_image(store: ImageStore, runtime: BuildRuntime, *, context: Path,
                dockerfile: Path | str | None = None, target: str | None = None,
                build_args: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
                tags: Sequence[str],
                progress: Progress = ignore_progress, no_cache: bool = False,
                sources: Sequence[BaseImageSource] = DEFAULT_SOURCES, mounter: Mounter | None = None,
                limits: HostLimits | None = None, run_timeout: float | None = None,
                clock: Callable[[], float] = time.time) -> ImageRef:
    """Build ``target`` (default: the last stage) of ``dockerfile`` with ``context`` and add it to
    ``store`` as every name in ``tags``; returns the image under the first tag.

    ``dockerfile`` is a path (relative ones are taken in ``context``; default
    ``context/Dockerfile``) or, as a ``str``, the Dockerfile's text itself. ``labels`` are added
    to the image's own. ``no_cache`` runs every step (their results are still recorded).
    Mistakes in the files are ``SpecError`` s; failures while building are ``BuildError`` s
    (or other ``DriverError`` s of the runtime and the store)."""
    if not tags:
        raise ValueError("an image build needs at least one tag to name the image")
    names = [normalize_name(t) for t in tags]
    dockerfile_path, parsed = _read(context, dockerfile)
    patterns = read_dockerignore(context, dockerfile_path)
    build_ctx = load_context(context, patterns)
    first = resolve(parsed, build_args=build_args, target=target)
    check_supported(first, parsed)
    images = {ref: find_image(store, ref, sources, progress, what)
              for ref, what in _image_refs(first)}
    plan = resolve(parsed, build_args=build_args, target=target,
                   image_env={ref: img.config.env for ref, img in images.items()})
    keys = stage_keys(plan, build_ctx, {ref: img.id for ref, img in images.items()})
    if plan.unused_args:
        progress(BuildEvent("message", "build arguments not used by the Dockerfile: "
                                       + ", ".join(plan.unused_args)))
    cache = BuildCache(store)
    cache.clean_stale(unmount_under)
    with cache.building() as work:
        tools = Tools(cache, runtime, mounter or OverlayMounter(), limits or probe_host_limits(), work,
                      progress, clock, run_timeout)
        build = _Build(plan, keys=keys, images=images, tools=tools,
                       context=ContextFS(context, build_ctx.entries), no_cache=no_cache)
        try:
            state = build.stage(plan.target)
        finally:
            unmount_under(work)
        ref = _store_image(store, cache, state, labels or {}, names)
    cache.prune_duplicates()
    progress(BuildEvent("done", ref.id))
    return ref


def _read(context: Path, dockerfile: Path | str | None) -> tuple[Path | None, Dockerfile]:
    if isinstance(dockerfile, str):
        return None, parse_dockerfile(dockerfile, INLINE_DOCKERFILE)
    path = context / (dockerfile or "Dockerfile")
    return path, read_dockerfile(path)


def _image_refs(plan: BuildPlan) -> list[tuple[str, str]]:
    """Every image the plan reads (bases and ``COPY --from`` images), each once, in order."""
    out: dict[str, str] = {}
    for stage in plan.stages:
        if stage.base_image is not None and stage.base_image != "scratch":
            out.setdefault(stage.base_image, "base image")
        for step in stage.steps:
            for ref in step.images:
                out.setdefault(ref, "image")
    return list(out.items())


def _store_image(store: ImageStore, cache: BuildCache, state: StageState, labels: Mapping[str, str],
                 names: Sequence[str]) -> ImageRef:
    config = config_blob(state, labels)
    manifest = build_manifest(config, [(d.media_type, d.digest, d.size) for d in state.layers])
    streams = [cache.open_blob(d) for d in state.layers]
    try:
        images = [NewImage(names[0], manifest, config, streams)]
        images += [NewImage(name, manifest, config, None) for name in names[1:]]
        return store.add_images(images)[0]
    finally:
        for s in streams:
            if s is not None:
                s.close()


class _Build:
    """One build: the stages' states, computed on demand and at most once."""

    def __init__(self, plan: BuildPlan, *, keys: Mapping[int, tuple[str, ...]],
                 images: Mapping[str, ImageRef], tools: Tools, context: ContextFS, no_cache: bool) -> None:
        self.plan = plan
        self.keys = keys
        self.images = images
        self.tools = tools
        self.context = context
        self.no_cache = no_cache
        self.steps = StepRunner(tools, plan.file, plan.proxy_args)
        self.done: dict[int, StageState] = {}

    def now(self) -> str:
        return _stamp(self.tools.clock())

    def stage(self, index: int) -> StageState:
        if index not in self.done:
            self.done[index] = self._build_stage(self.plan.stage(index))
        return self.done[index]

    def _label(self, stage: ResolvedStage) -> str:
        return stage.name or f"stage-{stage.index}"

    def _build_stage(self, stage: ResolvedStage) -> StageState:
        keys = self.keys[stage.index]
        total = len(stage.steps) + 1
        cache = self.tools.cache
        start, state = -1, None
        if not self.no_cache:
            for j in range(len(keys) - 1, -1, -1):
                state = cache.lookup(keys[j])
                if state is not None:
                    start = j
                    break
        base = stage.base_image or ("scratch" if stage.base_stage is None else f"stage {stage.base_stage}")
        event = BuildEvent("step", f"FROM {base}", self._label(stage), 1, total)
        if state is None:
            self.tools.progress(event)
            state = self._from(stage)
            cache.record(keys[0], state)
            start = 0
        else:
            self.tools.progress(replace(event, kind="cached"))
        for i, step in enumerate(stage.steps, start=1):
            instr = step.instruction
            event = BuildEvent("step", describe(instr), self._label(stage), i + 1, total, instr.line)
            if i <= start:
                self.tools.progress(replace(event, kind="cached"))
                continue
            self.tools.progress(event)
            assert state is not None
            state = self._step(stage, i - 1, state, event)
            cache.record(keys[i], state)
        assert state is not None
        return state

    def _from(self, stage: ResolvedStage) -> StageState:
        if stage.base_stage is not None:
            return replace(self.stage(stage.base_stage), cmd_set=False)
        if stage.base_image is None or stage.base_image == "scratch":
            os_name, arch = host_platform()
            return StageState(architecture=arch, os=os_name)
        ref = self.images[stage.base_image]
        store = self.tools.cache.store
        manifest = parse_manifest(store.read_blob(ref.manifest_digest, "manifest"))
        layers = [LayerDesc(m.media_type, m.digest, m.size, d)
                  for m, d in zip(manifest.layers, ref.config.diff_ids, strict=True)]
        return base_state(store.read_blob(ref.id, "image config"), layers)

    def _step(self, stage: ResolvedStage, n: int, state: StageState, event: BuildEvent) -> StageState:
        step = stage.steps[n]
        instr = step.instruction
        now = self.now()
        layer = True
        if isinstance(instr, Run):
            state = self.steps.run(instr, step, state, event)
        elif isinstance(instr, Copy):
            state = self.steps.copy(instr, state, self._source(step))
        elif isinstance(instr, Workdir):
            state, layer = self.steps.workdir(instr, state)
        else:
            state = apply_metadata(state, instr)
            layer = False
        if isinstance(instr, Arg):
            return state
        entry = History(now, describe(instr), empty_layer=not layer, comment="stackd build")
        return replace(state, history=(*state.history, entry), created=now)

    def _source(self, step: Step) -> SourceFS:
        if step.stages:
            return self.steps.view(self.stage(step.stages[0]))
        if step.images:
            ref = self.images[step.images[0]]
            return LayeredFS(ref.overlay_lowerdirs(), self.tools.cache.store.whiteouts)
        return self.context
