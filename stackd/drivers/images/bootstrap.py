"""Debian base images without a registry: ``debian:<suite>`` and ``debian:<suite>-slim`` are
bootstrapped from Debian's archive with mmdebstrap and imported as one-layer images.

What an image holds (both from ``--variant=minbase``, i.e. Essential and Priority: required
packages plus apt, as Docker's own Debian images; /usr is merged by mmdebstrap's own hook where the
suite allows, so usrmerge and the perl it pulls in are not installed):

- ``debian:<suite>`` also installs ``ca-certificates`` and ``netbase`` (HTTPS apt sources and
  ``/etc/services``/``/etc/protocols`` work out of the box) and keeps documentation.
- ``debian:<suite>-slim`` drops documentation, manual pages, info pages and translations the way
  Docker's slim images do: dpkg ``path-exclude`` rules (kept in the image, so later ``apt-get
  install`` stays slim) plus a final sweep of what the first, unpacking phase left. Copyright
  files and ``/usr/share/locale/locale.alias`` stay.

apt in the image works: ``/etc/apt/sources.list`` lists the suite, ``-updates`` and
``-security`` (the last two not for unstable). The host's ``resolv.conf`` and ``hostname`` are
not carried into the image (the runtime provides them). Device nodes are left out of the layer
(``/dev`` stays, empty): the runtime mounts its own ``/dev``.

The image config sets ``PATH`` and ``Cmd ["bash"]`` and labels saying how it was made
(``io.stackd.bootstrap.*``: tool, its version, suite, variant, slim, extra packages, date,
mirror). The work happens in a temporary directory inside the store (``gc`` removes what a crash
leaves); the store adds the image atomically, so a failure leaves nothing behind. This module
runs mmdebstrap and imports its output; it decides nothing about which images a stack needs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from stackd.drivers.fsutil import remove_tree, tmp_name
from stackd.drivers.images.digests import CHUNK, Digest
from stackd.drivers.images.names import split_name
from stackd.drivers.images.oci import OCI_LAYER, build_manifest, dump_json, host_platform
from stackd.drivers.images.records import ImageRef
from stackd.drivers.images.store import ImageStore
from stackd.errors import PermanentDriverError, TransientDriverError

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
VARIANT = "minbase"
STANDARD_PACKAGES = ("ca-certificates", "netbase")
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

LABEL_TOOL = "io.stackd.bootstrap.tool"
LABEL_TOOL_VERSION = "io.stackd.bootstrap.tool-version"
LABEL_SUITE = "io.stackd.bootstrap.suite"
LABEL_VARIANT = "io.stackd.bootstrap.variant"
LABEL_SLIM = "io.stackd.bootstrap.slim"
LABEL_PACKAGES = "io.stackd.bootstrap.packages"
LABEL_DATE = "io.stackd.bootstrap.date"
LABEL_MIRROR = "io.stackd.bootstrap.mirror"

VERSIONS = {"11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky", "15": "duke"}
ALIASES = frozenset({"stable", "oldstable", "oldoldstable", "testing", "unstable", "sid"})
_REPOSITORIES = frozenset({"debian", "library/debian", "docker.io/debian", "docker.io/library/debian",
                           "index.docker.io/library/debian", "registry-1.docker.io/library/debian"})
_SUITE = re.compile(r"[a-z0-9][a-z0-9.+-]*")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
_NO_UPDATES = frozenset({"unstable", "sid"})
_TRANSIENT = re.compile(
    r"Temporary failure|Could not resolve|Could not connect|Connection (?:failed|timed out)"
    r"|Failed to fetch|Hash Sum mismatch|Network is unreachable", re.IGNORECASE)

# What Docker's slim images leave out, as dpkg path rules (exclude first, then the exceptions).
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/lintian/overrides/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/groff/*",
)
# The same rules applied to what the unpacking of Essential packages left ($1 is the new root).
SLIM_SWEEP = (
    'set -e; cd "$1/usr/share"; '
    "if [ -d doc ]; then find doc -mindepth 1 ! -type d ! -regex 'doc/[^/]*/copyright' -delete; fi; "
    "for d in info linda lintian/overrides locale man groff; do "
    'if [ -d "$d" ]; then find "$d" -mindepth 1 ! -type d ! -path locale/locale.alias -delete; fi; done; '
    "for d in doc info linda lintian/overrides locale man groff; do "
    'if [ -d "$d" ]; then find "$d" -mindepth 1 -type d -empty -delete; fi; done'
)
# Merged /usr set up by mmdebstrap itself where the suite has usr-is-merged (bookworm and later),
# as Docker's images are, instead of installing usrmerge and the perl it pulls in (~50 MB).
MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/maybe-merged-usr")
# The host's resolver and name are not the image's: leave an empty resolv.conf (a mount target).
NEUTRAL_HOST_FILES = 'rm -f "$1/etc/resolv.conf" "$1/etc/hostname"; : > "$1/etc/resolv.conf"'


def parse_debian_ref(ref: str) -> tuple[str, bool] | None:
    """``(suite, slim)`` for a Debian image reference stackd can bootstrap (``debian:bookworm``,
    ``debian:12-slim``, ``debian:stable``, ``debian`` = ``debian:latest`` = stable), else ``None``.
    Point releases (``12.5``) and dated tags name archived snapshots, which cannot be fetched."""
    if "@" in ref:
        return None
    repo, tag = split_name(ref.strip())
    if repo.lower() not in _REPOSITORIES:
        return None
    slim = tag.endswith("-slim")
    base = tag.removesuffix("-slim")
    if base == "latest" and not slim:
        return "stable", False
    if base in VERSIONS:
        return VERSIONS[base], slim
    if base in VERSIONS.values() or base in ALIASES:
        return base, slim
    return None


def debian_sources(suite: str, mirror: str = DEFAULT_MIRROR,
                   security_mirror: str = DEFAULT_SECURITY_MIRROR) -> list[str]:
    """The apt sources of a suite: main, plus ``-updates`` and ``-security`` where they exist."""
    lines = [f"deb {mirror} {suite} main"]
    if suite not in _NO_UPDATES:
        lines += [f"deb {mirror} {suite}-updates main", f"deb {security_mirror} {suite}-security main"]
    return lines


def packages_for(slim: bool) -> tuple[str, ...]:
    """The packages installed on top of the minbase variant."""
    return () if slim else STANDARD_PACKAGES


def mmdebstrap_command(suite: str, slim: bool, *, mirror: str = DEFAULT_MIRROR,
                       security_mirror: str = DEFAULT_SECURITY_MIRROR, tool: str = "mmdebstrap",
                       hook_dirs: Sequence[Path] = ()) -> list[str]:
    """The mmdebstrap command line that writes the root filesystem as a tar to standard output.
    ``hook_dirs`` are mmdebstrap hook directories to use (see ``MERGED_USR_HOOKS``)."""
    cmd = [tool, f"--variant={VARIANT}", "--mode=auto", "--format=tar", "--quiet"]
    cmd += [f"--hook-dir={d}" for d in hook_dirs]
    extra = packages_for(slim)
    if extra:
        cmd.append(f"--include={','.join(extra)}")
    if slim:
        cmd += [f"--dpkgopt={opt}" for opt in SLIM_DPKG_OPTIONS]
        cmd.append(f"--customize-hook={SLIM_SWEEP}")
    cmd.append(f"--customize-hook={NEUTRAL_HOST_FILES}")
    return [*cmd, suite, "-", *debian_sources(suite, mirror, security_mirror)]


def image_config(diff_id: Digest, *, suite: str, slim: bool, mirror: str, created: str, tool_version: str,
                 command: Sequence[str]) -> bytes:
    """The config blob of a bootstrapped image (one layer, ``diff_id``)."""
    os_name, arch = host_platform()
    labels = {LABEL_TOOL: "mmdebstrap", LABEL_TOOL_VERSION: tool_version, LABEL_SUITE: suite,
              LABEL_VARIANT: VARIANT, LABEL_SLIM: "true" if slim else "false",
              LABEL_PACKAGES: ",".join(packages_for(slim)), LABEL_DATE: created, LABEL_MIRROR: mirror}
    return dump_json({
        "created": created,
        "architecture": arch,
        "os": os_name,
        "config": {"Env": [PATH], "Cmd": ["bash"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": shlex.join(command),
                     "comment": "Debian root filesystem bootstrapped by stackd"}],
    })


def bootstrap_debian(store: ImageStore, name: str, *, suite: str, slim: bool, mirror: str = DEFAULT_MIRROR,
                     security_mirror: str = DEFAULT_SECURITY_MIRROR, tmp_dir: Path | None = None,
                     now: datetime | None = None) -> ImageRef:
    """Bootstrap Debian ``suite`` with mmdebstrap and add it to ``store`` as ``name``.

    Needs root (or unprivileged user namespaces) and access to the mirrors. ``tmp_dir`` is where
    mmdebstrap builds the root filesystem (its ``TMPDIR``). A failure that may pass (the network)
    is a ``TransientDriverError``, any other a ``PermanentDriverError``; either way the store is
    left as it was."""
    if not _SUITE.fullmatch(suite) or any(not _URL.fullmatch(m) for m in (mirror, security_mirror)):
        raise PermanentDriverError(f"cannot bootstrap suite {suite!r} from {mirror!r}: "
                                   "a suite is a Debian codename and a mirror a URL without spaces")
    tool = shutil.which("mmdebstrap")
    tar_filter = shutil.which("mmtarfilter")
    if tool is None or tar_filter is None:
        raise PermanentDriverError("mmdebstrap is not installed (Debian package mmdebstrap); "
                                   "it is needed to bootstrap Debian images")
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hooks = [MERGED_USR_HOOKS] if MERGED_USR_HOOKS.is_dir() else []
    command = mmdebstrap_command(suite, slim, mirror=mirror, security_mirror=security_mirror, tool=tool,
                                 hook_dirs=hooks)
    store.dir.mkdir(parents=True, exist_ok=True)
    work = store.dir / tmp_name("bootstrap")
    work.mkdir(mode=0o700)
    try:
        tar = work / "rootfs.tar"
        _run_mmdebstrap(command, tar_filter, tar, work, tmp_dir)
        diff_id, size = _digest_file(tar)
        config = image_config(diff_id, suite=suite, slim=slim, mirror=mirror, created=created,
                              tool_version=_tool_version(tool), command=command)
        manifest = build_manifest(config, [(OCI_LAYER, diff_id, size)])
        with open(tar, "rb") as layer:
            return store.add_image(name, manifest, config, [layer])
    finally:
        remove_tree(work)


def _run_mmdebstrap(command: list[str], tar_filter: str, out: Path, work: Path, tmp_dir: Path | None) -> None:
    """``mmdebstrap ... | mmtarfilter --path-exclude=/dev/*`` into ``out``."""
    env = dict(os.environ)
    if tmp_dir is not None:
        env["TMPDIR"] = str(tmp_dir)
    err_path, filter_err_path = work / "mmdebstrap.err", work / "mmtarfilter.err"
    with open(out, "xb") as sink, open(err_path, "wb") as err, open(filter_err_path, "wb") as filter_err:
        producer = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                    env=env)
        try:
            consumer = subprocess.Popen([tar_filter, "--path-exclude=/dev/*"], stdin=producer.stdout,
                                        stdout=sink, stderr=filter_err)
        except BaseException:
            producer.kill()
            producer.wait()
            raise
        if producer.stdout is not None:
            producer.stdout.close()  # the filter holds the read end now
        try:
            filter_rc = consumer.wait()
            rc = producer.wait()
        except BaseException:
            for proc in (producer, consumer):
                proc.kill()
                proc.wait()
            raise
        sink.flush()
        os.fsync(sink.fileno())
    if rc != 0:
        detail = _tail(err_path)
        kind = TransientDriverError if _TRANSIENT.search(detail) else PermanentDriverError
        raise kind(f"mmdebstrap failed (exit code {rc}): {detail or 'no error output'}")
    if filter_rc != 0:
        raise PermanentDriverError(f"mmtarfilter failed (exit code {filter_rc}): {_tail(filter_err_path)}")


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_bytes().decode("utf-8", "replace").strip()
    return "\n".join(text.splitlines()[-lines:])


def _digest_file(path: Path) -> tuple[Digest, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Digest("sha256:" + h.hexdigest()), size


def _tool_version(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().removeprefix("mmdebstrap").strip()

