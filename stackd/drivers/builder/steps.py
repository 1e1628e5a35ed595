"""Carrying out the steps that change a stage's files: RUN (in a container on an overlay of the
stage's layers), COPY/ADD (a layer tar written straight from the sources) and WORKDIR (a layer
with the directory, when the image lacks it).

Each returns the new ``StageState`` with the new layer added to the build cache; the caller
records history and cache entries. Failures of the step itself are ``BuildError`` s naming the
Dockerfile line; mounts are always taken down and scratch directories removed, also when the
step fails or the build is interrupted. The planner's decisions (what to build) are not made
here: a step is carried out as given.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from stackd.build.instructions import Add, Copy, Run, Workdir
from stackd.build.resolve import Step
from stackd.drivers.builder.cache import BuildCache
from stackd.drivers.builder.copyplan import CopyRequest, plan_copy
from stackd.drivers.builder.events import BuildError, BuildEvent, Progress
from stackd.drivers.builder.fsview import LayeredFS, ResolveError, SourceFS, is_dir, norm, resolve
from stackd.drivers.builder.layertar import CopyError, Entry, write_layer
from stackd.drivers.builder.mounts import Mounter
from stackd.drivers.builder.runstep import (
    SCRIPT_PATH,
    BuildRuntime,
    RunSpec,
    hosts_file,
    missing_stubs,
    network_mode,
    remove_stubs,
    run_env,
    run_request,
    stream_run,
)
from stackd.drivers.builder.state import DEFAULT_SHELL, LayerDesc, StageState, describe, join_workdir
from stackd.drivers.builder.users import UnknownUser, image_owner, image_user
from stackd.drivers.fsutil import remove_tree, tmp_name
from stackd.drivers.images.digests import Digest
from stackd.drivers.images.layers import diff_to_tar
from stackd.drivers.runtime.bundle import write_bundle
from stackd.drivers.runtime.request import HostLimits, User
from stackd.drivers.runtime.spec import oci_config
from stackd.errors import DriverError, Pos

RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(frozen=True)
class Tools:
    """What steps work with: the cache (and through it the store), the runtime and mounter,
    the host's limits, a scratch directory, the progress callback, the clock."""

    cache: BuildCache
    runtime: BuildRuntime
    mounter: Mounter
    limits: HostLimits
    work: Path
    progress: Progress
    clock: Callable[[], float]
    run_timeout: float | None = None
    resolv_conf: Path = RESOLV_CONF


class StepRunner:
    """Carries out RUN, COPY/ADD and WORKDIR steps of one build (Dockerfile ``file``)."""

    def __init__(self, tools: Tools, file: str, proxy_args: tuple[tuple[str, str], ...] = ()) -> None:
        self.tools = tools
        self.file = file
        self.proxy_args = proxy_args
        self.count = 0

    # -- views ---------------------------------------------------------------------------

    def lowers(self, state: StageState) -> list[Path]:
        """The layer directories of ``state``, top first, each once (overlayfs wants that)."""
        out: list[Path] = []
        for desc in reversed(state.layers):
            path = self.tools.cache.layer_dir(desc)
            if path is None:
                raise BuildError(f"layer {desc.diff_id} has gone from the image store and the build cache",
                                 hint="build again")
            if path not in out:
                out.append(path)
        return out

    def view(self, state: StageState) -> LayeredFS:
        return LayeredFS(self.lowers(state), self.tools.cache.store.whiteouts)

    def _scratch(self, what: str) -> Path:
        self.count += 1
        path = self.tools.work / tmp_name(f"{self.count:03d}-{what}")
        path.mkdir(mode=0o700)
        return path

    def _pos(self, line: int) -> Pos:
        return Pos(self.file, line, 1)

    def _add_layer(self, state: StageState, tar: Path, digest: Digest, size: int,
                   unpacked: Path | None = None) -> StageState:
        desc = LayerDesc.plain(digest, size)
        self.tools.cache.add_layer(tar, desc.digest, unpacked)
        return replace(state, layers=(*state.layers, desc))

    def _layer_from_entries(self, state: StageState, entries: list[Entry]) -> StageState:
        scratch = self._scratch("layer")
        try:
            tar = scratch / "layer.tar"
            with open(tar, "wb") as f:
                info = write_layer(entries, f)
            return self._add_layer(state, tar, info.diff_id, info.size)
        finally:
            remove_tree(scratch)

    # -- COPY / ADD ----------------------------------------------------------------------

    def copy(self, instr: Copy, state: StageState, source: SourceFS) -> StageState:
        """A COPY or ADD from ``source`` (the context, a stage, an image)."""
        view = self.view(state)
        try:
            owner = image_owner(view, instr.chown) if instr.chown else None
            req = CopyRequest(instr.sources, instr.dest, state.config.working_dir or "/", instr.heredocs,
                              instr.chmod, owner, instr.exclude, instr.parents, isinstance(instr, Add),
                              self.tools.clock())
            entries = plan_copy(req, source, view)
        except (CopyError, UnknownUser, ResolveError) as exc:
            raise BuildError(f"{instr.keyword} failed: {exc}", pos=self._pos(instr.line),
                             instruction=describe(instr)) from exc
        return self._layer_from_entries(state, entries)

    # -- WORKDIR -------------------------------------------------------------------------

    def workdir(self, instr: Workdir, state: StageState) -> tuple[StageState, bool]:
        """The new working directory, created (a layer) when the image lacks it; whether a
        layer was made."""
        path = join_workdir(state.config.working_dir, instr.path)
        new = replace(state, config=replace(state.config, working_dir=path))
        view = self.view(state)
        try:
            where = resolve(view, norm(path))
            if not where or is_dir(view, where):
                return new, False
            uid, gid = 0, 0
            if state.config.user:
                user = image_user(view, state.config.user)
                uid, gid = user.uid, user.gid
        except (UnknownUser, ResolveError) as exc:
            raise BuildError(f"WORKDIR failed: {exc}", pos=self._pos(instr.line),
                             instruction=describe(instr)) from exc
        parts = where.split("/")
        entries = []
        for i in range(len(parts)):
            prefix = "/".join(parts[:i + 1])
            if view.lstat(prefix) is None:
                entries.append(Entry(prefix, "dir", 0o755, uid, gid, self.tools.clock()))
        return self._layer_from_entries(new, entries), True

    # -- RUN -----------------------------------------------------------------------------

    def run(self, instr: Run, step: Step, state: StageState, event: BuildEvent) -> StageState:
        """Run ``instr`` on top of ``state``; its output goes to progress as ``output`` events
        like ``event``."""
        view = self.view(state)
        lowers = self.lowers(state)
        pos = self._pos(instr.line)
        try:
            user = image_user(view, state.config.user)
        except (UnknownUser, ResolveError) as exc:
            raise BuildError(f"RUN failed: {exc}", pos=pos, instruction=describe(instr)) from exc
        scratch = self._scratch("run")
        try:
            spec = self._spec(instr, step, state, user, scratch)
            stubs = missing_stubs(view)
            try:
                code, tail = self._container(spec, lowers, scratch, event)
            except DriverError as exc:
                raise BuildError(f"RUN failed: {exc}", pos=pos,
                                 instruction=describe(instr)) from exc
            if code != 0:
                raise BuildError(f"RUN failed with exit code {code}", pos=pos, instruction=describe(instr),
                                 output=tail, exit_status=code)
            upper = scratch / "upper"
            remove_stubs(upper, stubs)
            tar = scratch / "layer.tar"
            with open(tar, "wb") as f:
                info = diff_to_tar(upper, f, self.tools.cache.store.whiteouts)
            return self._add_layer(state, tar, info.diff_id, info.size, upper)
        finally:
            remove_tree(scratch)

    def _spec(self, instr: Run, step: Step, state: StageState, user: User, scratch: Path) -> RunSpec:
        shell = state.config.shell or DEFAULT_SHELL
        script = None
        if not instr.command.shell_form:
            argv = instr.command.args
        else:
            text = instr.script()
            only_doc = len(instr.heredocs) == 1 and text == instr.heredocs[0].content
            if only_doc and text.startswith("#!"):
                script = scratch / "script"
                script.write_text(text)
                script.chmod(0o755)
                argv = (SCRIPT_PATH,)
            else:
                argv = (*shell, text)
        env = run_env(state.config.env, (*step.build_args, *self.proxy_args))
        return RunSpec(argv, env, state.config.working_dir or "/", user, network_mode(instr.network), script)

    def _container(self, spec: RunSpec, lowers: list[Path], scratch: Path,
                   event: BuildEvent) -> tuple[int, list[str]]:
        tools = self.tools
        resolv, hosts = scratch / "resolv.conf", scratch / "hosts"
        try:
            shutil.copyfile(tools.resolv_conf, resolv)
        except OSError:
            resolv.write_text("")
        hosts.write_text(hosts_file())
        rootfs = scratch / "rootfs"
        container_id = f"stackd-build-{scratch.name.rsplit('-', 1)[-1]}"
        tools.mounter.mount(lowers, scratch / "upper", scratch / "work", rootfs)
        try:
            request = run_request(spec, rootfs, resolv, hosts, container_id)
            bundle = write_bundle(scratch / "bundle", oci_config(request, tools.limits))
            return stream_run(tools.runtime, container_id, bundle,
                              lambda line: tools.progress(replace(event, kind="output", text=line)),
                              tools.run_timeout)
        finally:
            tools.mounter.unmount(rootfs)
