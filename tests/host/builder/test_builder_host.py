"""Real builds as root: overlay mounts, the OCI runtime, layers checked by reading them back.

A FROM scratch image made from busybox-static (COPY, RUN, multi-stage COPY --from, --chown,
WORKDIR, ENTRYPOINT/CMD) is built, read back and run; a failing RUN reports its line and leaves
no mount, container or cgroup; a second build is all cache hits. One test builds the nginx
example on a Debian image bootstrapped once per session (needs Debian's archive).
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from stackd.drivers.builder import BuildError, BuildEvent, build_image
from stackd.drivers.builder.mounts import unmount_under
from stackd.drivers.images.records import ImageRef
from stackd.drivers.images.store import ImageStore
from stackd.drivers.mountinfo import mounts_under
from stackd.drivers.runtime import ContainerRequest, OciRuntime, oci_config, probe_host_limits, write_bundle
from tests.host.builder.conftest import DebianStore
from tests.host.images.hostutil import mount_overlay, need_tool

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[3]
BUSYBOX_DOCKERFILE = """\
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo hello > /greeting && mkdir -p /out && echo built > /out/artifact
FROM scratch
COPY --from=tools /bin/ /bin/
COPY --from=tools /out/ /data/
COPY --chown=1000:1000 --chmod=0600 secret.txt /data/secret.txt
WORKDIR /app
RUN echo "in $(pwd) as $(id -u) on $(hostname)" > note && test -e /etc/resolv.conf
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /data/artifact"]
"""


def busybox_context(root: Path, dockerfile: str = BUSYBOX_DOCKERFILE) -> Path:
    busybox = need_tool("busybox", "busybox-static")
    context = root / "context"
    context.mkdir()
    shutil.copy(busybox, context / "busybox")
    (context / "secret.txt").write_text("s3cret\n")
    (context / "Dockerfile").write_text(dockerfile)
    return context


def layers_of(store: ImageStore, ref: ImageRef) -> list[dict[str, tarfile.TarInfo]]:
    out = []
    for diff_id in ref.config.diff_ids:
        with store.get_blob(diff_id) as f, tarfile.open(fileobj=f, mode="r:*") as tf:
            out.append({m.name.rstrip("/"): m for m in tf.getmembers()})
    return out


def read_member(store: ImageStore, diff_id: str, name: str) -> bytes:
    with store.get_blob(diff_id) as f, tarfile.open(fileobj=f, mode="r:*") as tf:
        data = tf.extractfile(name)
        assert data is not None
        return data.read()


def assert_nothing_left(root: Path, runtime: OciRuntime) -> None:
    assert mounts_under(root) == []
    assert runtime.list() == []
    leftovers = [p for p in Path("/sys/fs/cgroup").glob("*/stackd-build-*") if p.is_dir()]
    assert leftovers == []
    work = root / "data" / "images" / "build-cache" / "work"
    assert not work.exists() or list(work.iterdir()) == []


def build(root: Path, runtime: OciRuntime, context: Path, events: list[BuildEvent], tag: str) -> ImageRef:
    return build_image(ImageStore(root / "data"), runtime, context=context, tags=[tag],
                       progress=events.append, sources=[])


def test_busybox_image_from_scratch(scratch_root: Path, runtime: OciRuntime) -> None:
    context = busybox_context(scratch_root)
    events: list[BuildEvent] = []
    ref = build(scratch_root, runtime, context, events, "bb:test")
    store = ImageStore(scratch_root / "data")
    layers = layers_of(store, ref)
    assert len(layers) == 5
    tools, out, secret, workdir, note = layers
    assert tools["bin/busybox"].isreg() and tools["bin/busybox"].mode & 0o111
    assert tools["bin/sh"].issym() and tools["bin/sh"].linkname == "/bin/busybox"
    assert sorted(out) == ["data", "data/artifact"]
    assert read_member(store, ref.config.diff_ids[1], "data/artifact") == b"built\n"
    assert (secret["data/secret.txt"].uid, secret["data/secret.txt"].mode) == (1000, 0o600)
    assert list(workdir) == ["app"]
    assert sorted(note) == ["app", "app/note"]  # no /proc, /dev, /sys or /etc stubs of the runtime
    assert read_member(store, ref.config.diff_ids[4], "app/note") == b"in /app as 0 on stackd-build\n"
    entrypoint, cmd = ref.config.entrypoint, ref.config.cmd
    assert entrypoint == ("/bin/sh", "-c") and cmd == ("cat /data/artifact",)
    assert ref.config.working_dir == "/app"
    assert [e.text for e in events if e.kind == "output"] == []
    assert_nothing_left(scratch_root, runtime)
    # the image runs: its layers as an overlay, its entrypoint and command
    merged = scratch_root / "run" / "rootfs"
    upper, work = scratch_root / "run" / "upper", scratch_root / "run" / "work"
    upper.mkdir(parents=True)
    work.mkdir()
    mount_overlay(merged, ref.overlay_lowerdirs(), upper, work)
    try:
        request = ContainerRequest(rootfs=str(merged), args=(*entrypoint, *cmd),
                                   cgroups_path="/stkt-bld-run")
        bundle = write_bundle(scratch_root / "run" / "bundle", oci_config(request, probe_host_limits()))
        log = scratch_root / "run" / "out"
        assert runtime.run_to_completion("stkt-bld-run", bundle, stdout=log, stderr=log) == 0
        assert log.read_text() == "built\n"
    finally:
        unmount_under(merged)


def test_a_failing_run_names_its_line_and_leaves_nothing(scratch_root: Path, runtime: OciRuntime) -> None:
    failing = 'RUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 7"]\n'
    context = busybox_context(scratch_root, "FROM scratch\nCOPY busybox /bin/busybox\n" + failing)
    events: list[BuildEvent] = []
    with pytest.raises(BuildError) as caught:
        build(scratch_root, runtime, context, events, "bad:test")
    error = caught.value
    assert error.pos is not None and (error.pos.file, error.pos.line) == (str(context / "Dockerfile"), 3)
    assert error.exit_status == 7 and error.output == ("about to fail",)
    assert [e.text for e in events if e.kind == "output"] == ["about to fail"]
    assert ImageStore(scratch_root / "data").names() == {}
    assert_nothing_left(scratch_root, runtime)


def test_a_second_build_is_all_cache_hits(scratch_root: Path, runtime: OciRuntime) -> None:
    context = busybox_context(scratch_root)
    first = build(scratch_root, runtime, context, [], "bb:test")
    events: list[BuildEvent] = []
    second = build(scratch_root, runtime, context, events, "bb:test")
    steps = [e for e in events if e.kind in ("step", "cached")]
    assert steps and all(e.kind == "cached" for e in steps)
    assert second.id == first.id
    (context / "secret.txt").write_text("changed\n")
    events.clear()
    third = build(scratch_root, runtime, context, events, "bb:test")
    assert [e.kind for e in events if e.kind in ("step", "cached")] == ["cached"] * 3 + ["step"] * 5
    assert third.id != first.id
    assert_nothing_left(scratch_root, runtime)


def test_the_nginx_example(debian_store: DebianStore, runtime: OciRuntime) -> None:
    assert any(e.kind == "message" and "bootstrapping Debian bookworm" in e.text for e in debian_store.events)
    store = debian_store.store
    events: list[BuildEvent] = []
    context = REPO / "examples" / "nginx"
    ref = build_image(store, runtime, context=context, tags=["example/nginx:test"], progress=events.append,
                      sources=[])
    assert ref.config.cmd == ("nginx", "-g", "daemon off;") and ref.config.exposed_ports == ("80/tcp",)
    assert ref.config.healthcheck is not None and ref.config.healthcheck.interval == 5_000_000_000
    assert ref.config.stop_signal == "SIGTERM"
    assert any(e.kind == "output" and "nginx" in e.text for e in events)
    _base, run, conf = layers_of(store, ref)
    assert list(conf) == ["etc/nginx/conf.d/default.conf"]
    assert run["usr/sbin/nginx"].isreg()
    assert run["var/log/nginx/access.log"].linkname == "/dev/stdout"
    assert "etc/nginx/sites-enabled/default" not in run
    assert read_member(store, ref.config.diff_ids[2], "etc/nginx/conf.d/default.conf") == \
        (context / "default.conf").read_bytes()
    assert_nothing_left(debian_store.tmp, runtime)
    events.clear()
    again = build_image(store, runtime, context=context, tags=["example/nginx:test"], progress=events.append,
                        sources=[])
    assert again.id == ref.id and all(e.kind in ("cached", "done") for e in events)
