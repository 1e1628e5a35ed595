"""Images travel between stackd and podman both ways, and both run them.

(a) A busybox image made here and imported with ``stack image import`` is exported with ``stack
image export``: podman loads and runs it (its own command and its default command with the
image's environment), skopeo inspects the archive and umoci unpacks it.
(b) An image podman builds (FROM scratch, COPY busybox, RUN steps with a deletion, ENV, LABEL,
WORKDIR, CMD) and saves as a docker-archive and as an oci-archive is imported with ``stack image
import``: its layers unpack (with the deletion as an overlay whiteout), its config is right, and
it runs through stackd's own runtime driver (an overlay of its layers, a config from
``oci_config``, ``OciRuntime.run_to_completion``) under crun and runc.

Root only; in CI every tool must be there (apt: podman, skopeo, umoci, busybox-static, crun, runc).
podman runs with a private configuration and storage (``podman.PrivatePodman``); everything the
tests make is removed in finalizers, and the host is compared before and after.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackd.drivers.images import ImageRef, ImageStore
from stackd.drivers.mountinfo import mounts_under
from stackd.drivers.runtime import ContainerRequest, OciRuntime, oci_config, probe, probe_host_limits
from stackd.drivers.runtime.bundle import write_bundle
from tests.host.interop.podman import (
    BUSYBOX,
    PREFIX,
    HostState,
    PrivatePodman,
    need,
    need_tools,
    processes_using,
    remove_cgroups,
    unmount_all,
)
from tests.unit.images_cli.support import Result, config, run

pytestmark = pytest.mark.host

OURS = "stkt-ix/busybox:1"
THEIRS = "localhost/stkt-ix/built:1"
APPLETS = ("sh", "echo", "cat", "test")
CONTAINERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo built-by-podman > /built && rm /bin/wget
ENV GREETING=hello-from-podman STAGE=interop
LABEL org.example.made-by=podman org.example.test=interop
WORKDIR /srv
CMD ["/bin/sh", "-c", "echo $GREETING from $(pwd) && cat /built"]
"""


def cli(root: Path, *argv: str) -> Result:
    r = run(root, *argv)
    assert r.code == 0, f"stack {' '.join(argv)}: {r.err}"
    return r


@pytest.fixture(scope="module")
def podman() -> Iterator[PrivatePodman]:
    need_tools("podman", "skopeo", "umoci", "unshare", "nft")
    need(BUSYBOX.is_file() and b"ELF" in BUSYBOX.read_bytes()[:4], "needs /bin/busybox (busybox-static)")
    before = HostState.now()
    p = PrivatePodman()
    try:
        yield p
        assert processes_using(p.dir) == [], "podman or conmon is still running"
    finally:
        left = p.close()
    assert left == [], f"could not remove: {left}"
    assert before.changes(HostState.now()) == {}


@pytest.fixture
def scratch(podman: PrivatePodman) -> Iterator[Path]:
    """A directory of the test under the private podman's, unmounted and removed afterwards."""
    path = podman.dir / f"t-{secrets.token_hex(3)}"
    path.mkdir()
    try:
        yield path
    finally:
        unmount_all(path)
        shutil.rmtree(path, ignore_errors=True)


def _docker_archive(path: Path) -> Path:
    """A ``docker save`` archive of a busybox root file system, made here."""
    layer = path.with_suffix(".layer.tar")
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tf.addfile(info)
        tf.add(BUSYBOX, "bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(info)
    blob = layer.read_bytes()
    conf = config([blob], Env=["PATH=/bin", "GREETING=from-stackd"], Labels={"org.example.made-by": "stackd"},
                  Cmd=["/bin/sh", "-c", "echo default-cmd $GREETING"])
    entries = [{"Config": "config.json", "RepoTags": [OURS], "Layers": ["layer.tar"]}]
    with tarfile.open(path, "w") as tf:
        tf.add(layer, "layer.tar")
        for name, data in (("config.json", conf), ("manifest.json", json.dumps(entries).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------- (a) stackd -> podman


@pytest.fixture(scope="module")
def exported(podman: PrivatePodman) -> tuple[ImageRef, Path]:
    """Our busybox image, imported into a stackd store and exported by ``stack image export``."""
    work = podman.dir / "ours"
    work.mkdir()
    root = work / "data"
    assert cli(root, "image", "import", str(_docker_archive(work / "save.tar"))).out.startswith(
        f"Loaded image: {OURS} (")
    cli(root, "image", "export", OURS, str(work / "export.tar"))
    return ImageStore(root).resolve(OURS), work / "export.tar"


def test_podman_loads_and_runs_our_export(podman: PrivatePodman, exported: tuple[ImageRef, Path]) -> None:
    ref, archive = exported
    assert f"Loaded image: localhost/{OURS}" in podman.podman("load", "--input", str(archive))
    assert podman.run(f"localhost/{OURS}", "echo", "hi") == "hi\n"
    assert podman.run(f"localhost/{OURS}") == "default-cmd from-stackd\n"
    (doc,) = json.loads(podman.podman("image", "inspect", f"localhost/{OURS}"))
    assert doc["Id"] == ref.id.removeprefix("sha256:")
    assert doc["Digest"] == ref.manifest_digest
    assert doc["Config"]["Labels"] == {"org.example.made-by": "stackd"}


def test_skopeo_and_umoci_read_our_export(podman: PrivatePodman, exported: tuple[ImageRef, Path],
                                          scratch: Path) -> None:
    ref, archive = exported
    info = json.loads(podman.call("skopeo", "inspect", f"oci-archive:{archive}"))
    assert info["Digest"] == ref.manifest_digest
    assert info["Env"] == ["PATH=/bin", "GREETING=from-stackd"]
    assert info["Labels"] == {"org.example.made-by": "stackd"}
    assert len(info["Layers"]) == 1
    layout, bundle = scratch / "layout", scratch / "bundle"
    with tarfile.open(archive) as tf:
        tf.extractall(layout, filter="data")
    done = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{OURS}", str(bundle)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin/busybox").read_bytes() == BUSYBOX.read_bytes()
    assert all((rootfs / "bin" / a).readlink() == Path("busybox") for a in APPLETS)
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["process"]["args"] == ["/bin/sh", "-c", "echo default-cmd $GREETING"]
    assert "GREETING=from-stackd" in spec["process"]["env"]


# --------------------------------------------------------------------------- (b) podman -> stackd


@pytest.fixture(scope="module")
def saved(podman: PrivatePodman) -> dict[str, Path]:
    """Podman's build of ``CONTAINERFILE``, saved in both archive formats."""
    context = podman.dir / "context"
    context.mkdir()
    shutil.copy2(BUSYBOX, context / "busybox")
    (context / "Containerfile").write_text(CONTAINERFILE)
    podman.build(context, THEIRS)
    assert podman.run(THEIRS) == "hello-from-podman from /srv\nbuilt-by-podman\n"
    out = {}
    for fmt in ("docker-archive", "oci-archive"):
        out[fmt] = podman.dir / f"{fmt}.tar"
        podman.podman("save", "--format", fmt, "--output", str(out[fmt]), THEIRS)
    return out


def _run_in_stackd(ref: ImageRef, work: Path, runtime: str, argv: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run ``ref`` (its entrypoint and command, or ``argv``) through stackd's runtime driver: an
    overlay of its layers, a bundle from ``oci_config``, ``run_to_completion``."""
    need(shutil.which(runtime) is not None or Path("/usr/sbin", runtime).exists(), f"{runtime} is missing")
    token = secrets.token_hex(3)
    merged, upper, wdir = work / f"merged-{token}", work / f"upper-{token}", work / f"work-{token}"
    for d in (merged, upper, wdir):
        d.mkdir()
    lower = ":".join(str(d) for d in ref.overlay_lowerdirs())
    subprocess.run(["mount", "-t", "overlay", f"{PREFIX}overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={wdir}", str(merged)], check=True)
    cgroup_parent = f"{PREFIX}{token}-stackd"
    cid = f"{PREFIX}{runtime}-{token}"
    try:
        cfg = ref.config
        args = argv or (*(cfg.entrypoint or ()), *(cfg.cmd or ()))
        req = ContainerRequest(rootfs=str(merged), args=args, env=cfg.env, cwd=cfg.working_dir or "/",
                               hostname="interop", cgroups_path=f"/{cgroup_parent}/{cid}")
        bundle = write_bundle(work / f"bundle-{token}", oci_config(req, probe_host_limits()))
        rt = OciRuntime(probe(runtime, prefix=f"{PREFIX}probe-"), root=work / f"state-{token}")
        out = work / f"out-{token}"
        code = rt.run_to_completion(cid, bundle, stdout=out, stderr=out, timeout=60)
        return code, out.read_text()
    finally:
        subprocess.run(["umount", str(merged)], check=False)
        assert remove_cgroups(cgroup_parent) == []


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_we_import_and_run_what_podman_built(saved: dict[str, Path], scratch: Path, fmt: str) -> None:
    root = scratch / "data"
    assert cli(root, "image", "import", str(saved[fmt])).out.startswith(f"Loaded image: {THEIRS} (")
    ref = ImageStore(root).resolve(THEIRS)

    cfg = ref.config
    assert cfg.cmd == ("/bin/sh", "-c", "echo $GREETING from $(pwd) && cat /built")
    assert cfg.entrypoint is None
    assert {"GREETING=hello-from-podman", "STAGE=interop"} <= set(cfg.env)
    labels = {k: v for k, v in cfg.labels.items() if k != "io.buildah.version"}  # podman adds its own
    assert labels == {"org.example.made-by": "podman", "org.example.test": "interop"}
    assert cfg.working_dir == "/srv"
    inspected = json.loads(cli(root, "image", "inspect", THEIRS).out)[0]
    assert inspected["Config"]["Labels"]["org.example.made-by"] == "podman"

    copied, installed, ran = ref.layer_dirs
    assert (copied / "bin/busybox").read_bytes() == BUSYBOX.read_bytes()
    assert (installed / "bin/sh").readlink() == Path("/bin/busybox")
    assert (ran / "built").read_text() == "built-by-podman\n"
    wget = (ran / "bin/wget").lstat()  # the deletion, as an overlay whiteout
    assert stat.S_ISCHR(wget.st_mode) and wget.st_rdev == 0

    for runtime in ("crun", "runc"):
        code, out = _run_in_stackd(ref, scratch, runtime)
        assert (code, out) == (0, "hello-from-podman from /srv\nbuilt-by-podman\n"), runtime
        code, out = _run_in_stackd(ref, scratch, runtime, ("/bin/sh", "-c", "test -e /bin/wget || echo gone"))
        assert (code, out) == (0, "gone\n"), runtime
    assert mounts_under(scratch) == []
