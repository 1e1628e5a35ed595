"""stackd, podman-compose and docker-compose side by side on the example stack (``stack.yaml``: nginx,
postgres, redis): ``up -d`` time, time until all three answer, ``down`` time.

Run as root: ``python bench/compose_peers.py [-n 3] [--fresh] [--only stackd,podman,docker]
[--workdir DIR] [--no-daemon-too]``. Prints numbers and ratios, asserts nothing. In one run it
builds the images with ``stack build`` (bootstrapping ``debian:bookworm-slim`` from Debian's archive
first), exports them with ``stack image export`` and loads them with ``podman load`` and ``docker
load`` (docker 20.10 loads only ``docker save`` archives, so a ``manifest.json`` is appended to each
OCI archive once podman has read it): all three tools run the same images. The peers get the stack
as ``stack config`` prints it, without ``build:``, ``x-stackd`` and ``depends_on.required``, with
configs as read-only bind mounts (docker-compose 1.29 ignores ``configs``) and ``cgroup_parent``
groups named after the bench project.

Each tool runs ``-n`` times, the tools taking turns; medians are shown. "ready" is the time from the
start of ``up -d`` until nginx answers 200 on its published port, postgres accepts a connection (a
startup packet over TCP, as ``pg_isready`` judges) and redis answers PING, both on the container's
address; the time spent asking the tool for addresses is not counted. Volumes are kept between runs
(``--fresh``: ``down -v`` each time, so postgres initialises every run).

stackd runs as users run it, through its daemon, which is started before the runs (as dockerd is)
and stopped at the end; ``--no-daemon-too`` also times ``stack --no-daemon`` (converging in the
``stack`` process, as the Compose tools do). Each tool has its own state under the work directory:
stackd its own ``STACKD_DATA_ROOT`` and ``STACKD_RUN_DIR``; podman ``--root``/``--runroot`` and a
private containers.conf (cgroupfs, runc, file events, the limits this machine allows); docker a
dockerd started here with its own data-root, exec-root, pidfile and socket (cgroupfs), stopped at
the end. The host is recorded before and after (``HostState``); what the peers leave (iptables
chains, netavark's run directory, cgroups, /etc/docker/key.json, …) is removed, and what is still
left is printed. A missing tool is reported with how to install it, and the rest is measured.
``up_many.py`` reuses the host check.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
STACK_FILE = REPO / "stack.yaml"
READY_TIMEOUT = 120.0
PODMAN_COMPOSE_VENV = Path("/opt/podman-compose/bin/podman-compose")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "{dir}/tmp"
[network]
network_config_dir = "{dir}/networks"
"""


class Failed(Exception):
    """A tool could not do what was asked; the message says what it printed."""


def sh(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run ``argv``; what it printed, or ``Failed`` with the end of it."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Failed(f"{' '.join(argv[:4])}: {exc}") from exc
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        tail = said if len(said) <= 600 else said[-600:].partition("\n")[2] or said[-600:]
        raise Failed(f"{' '.join(argv[:6])} … exited {done.returncode}: {tail}")
    return done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def user_env(**extra: str) -> dict[str, str]:
    """This environment as a user's shell has it: Python may keep compiled bytecode (a session
    with PYTHONDONTWRITEBYTECODE would make every Python CLI compile all its modules every time)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def stack_binary() -> str:
    beside = Path(sys.executable).parent / "stack"
    return str(beside) if beside.exists() else shutil.which("stack") or "stack"


# ------------------------------------------------------------------------------ readiness probes


def http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
            return int(r.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _ask(ip: str, port: int, data: bytes) -> bytes:
    try:
        with socket.create_connection((ip, port), timeout=1) as s:
            s.sendall(data)
            return s.recv(512)
    except OSError:
        return b""


def postgres_ready(ip: str) -> bool:
    """Accepting, as ``pg_isready`` says: an authentication request, or any error but 57P03
    ("the database system is starting up")."""
    params = b"user\0app\0database\0app\0\0"
    reply = _ask(ip, 5432, (8 + len(params)).to_bytes(4, "big") + (196608).to_bytes(4, "big") + params)
    return reply[:1] == b"R" or (reply[:1] == b"E" and b"C57P03\0" not in reply)


def redis_ready(ip: str) -> bool:
    return _ask(ip, 6379, b"PING\r\n").startswith(b"+PONG")


# ------------------------------------------------------------------------------------- the tools


@dataclass
class Tool:
    """One way to run the stack: its commands, where its containers are, how to take it all away."""

    name: str
    port: int
    env: dict[str, str]
    base: list[str]
    addresses: Callable[[], dict[str, str]]
    quiet: tuple[str, ...] = ()
    finish: list[Callable[[], object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def up(self) -> None:
        out = sh([*self.base, "up", "-d", *self.quiet], self.env)
        skipped = [line.split(":")[-1].strip() for line in out.splitlines() if "condition check" in line]
        if skipped and not self.notes:
            self.notes.append(f"does not wait for a healthy db: {skipped[0]}")

    def down(self, volumes: bool) -> None:
        sh([*self.base, "down", *self.quiet, *(["-v"] if volumes else [])], self.env)

    def teardown(self) -> None:
        """``down -v``, then whatever else this tool needs taken away (its daemon, its store)."""
        try:
            self.down(volumes=True)
        finally:
            for step in self.finish:
                step()


def stop_stackd(run_dir: Path) -> None:
    """SIGTERM the daemon of ``run_dir`` (if one runs) and wait for it to go."""
    try:
        pid = int((run_dir / "stackd.pid").read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        return
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def make_stackd(work: Path, project: str, *, daemon: bool = True) -> Tool:
    """stackd as users run it: through its daemon (started before the runs, as dockerd is), or
    with ``--no-daemon`` (converging in the ``stack`` process, as Compose does)."""
    data = work / "stackd" / "data"
    port = free_port()
    env = user_env(STACKD_DATA_ROOT=str(data), STACKD_RUN_DIR=str(work / "stackd" / "run"),
                   WEB_PORT=str(port), PYTHONPYCACHEPREFIX=str(work / "stackd" / "pycache"))
    if not daemon:
        env["STACK_NO_DAEMON"] = "1"

    def addresses() -> dict[str, str]:
        """From the web container's hosts file, which names the other two."""
        hosts = data / "containers" / f"{project}-web-1" / "hosts"
        found: dict[str, str] = {}
        for ip, *names in (line.split() for line in _read(hosts).splitlines() if line.strip()):
            found.update({n: ip for n in names if n in ("db", "cache")})
        return found

    tool = Tool("stackd" if daemon else "stackd --no-daemon", port, env,
                [stack_binary(), "-f", str(STACK_FILE), "-p", project], addresses,
                quiet=("--progress", "quiet"))
    if daemon:
        sh([*tool.base, "ls"], env)  # starts the daemon, outside the measured runs
        tool.finish.append(lambda: stop_stackd(work / "stackd" / "run"))
    return tool


def make_compose(name: str, env: dict[str, str], compose: list[str], engine: str, *, work: Path,
                 project: str) -> Tool:
    """podman-compose or docker-compose; ``engine`` (podman, docker) inspects the containers."""
    port = free_port()

    def addresses() -> dict[str, str]:
        names = [f"{project}_{s}_1" for s in ("db", "cache")]
        template = "{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        try:
            out = sh([engine, "inspect", "-f", template, *names], env)
        except Failed:
            return {}
        return {line.split()[0].strip("/").split("_")[-2]: line.split()[1]
                for line in out.splitlines() if len(line.split()) > 1}

    file = peer_compose(work / name, project, port)
    return Tool(name, port, env, [*compose, "-p", project, "-f", str(file)], addresses)


def peer_compose(directory: Path, project: str, port: int) -> Path:
    """The example stack as a Compose file for the peers (see the module docstring)."""
    env = user_env(WEB_PORT=str(port))
    merged: dict[str, Any] = json.loads(sh([stack_binary(), "-f", str(STACK_FILE), "config", "--format",
                                            "json"], env))
    merged.pop("x-stackd", None)
    merged.pop("name", None)
    configs = merged.pop("configs", {})
    for svc in merged["services"].values():
        svc.pop("build", None)
        for dep in (svc.get("depends_on") or {}).values():
            dep.pop("required", None)
        svc["ports"] = [f"{p['published']}:{p['target']}/{p['protocol']}" for p in svc.get("ports", [])]
        svc["volumes"] = [*svc.get("volumes", []), *(
            f"{configs[c['source']]['file']}:{c.get('target') or '/' + c['source']}:ro"
            for c in svc.pop("configs", []))]
        if "cgroup_parent" in svc:
            svc["cgroup_parent"] = f"{project}-{svc['cgroup_parent']}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "compose.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return directory / "compose.yaml"


def make_podman(work: Path, project: str, archives: list[Path]) -> Tool:
    compose = shutil.which("podman-compose") or (str(PODMAN_COMPOSE_VENV) if PODMAN_COMPOSE_VENV.exists()
                                                 else None)
    if shutil.which("podman") is None or compose is None:
        raise Failed(f"podman or podman-compose is missing (apt-get install podman; python3 -m venv "
                     f"{PODMAN_COMPOSE_VENV.parent.parent} && {PODMAN_COMPOSE_VENV.parent}/pip install "
                     "podman-compose)")
    d = work / "podman"
    (d / "bin").mkdir(parents=True, exist_ok=True)
    (d / "containers.conf").write_text(CONTAINERS_CONF.format(dir=d))
    wrapper = d / "bin" / "podman"
    wrapper.write_text(f"#!/bin/sh\nexec podman --root {d}/storage --runroot {d}/run "
                       '--storage-driver overlay "$@"\n')
    wrapper.chmod(0o755)
    env = user_env(CONTAINERS_CONF=str(d / "containers.conf"))
    tool = make_compose("podman-compose", env, [compose, "--podman-path", str(wrapper)], str(wrapper),
                        work=work, project=project)
    tool.finish.append(lambda: sh([str(wrapper), "system", "reset", "--force"], env))
    sh([str(wrapper), "info"], env)
    for archive in archives:
        sh([str(wrapper), "load", "-q", "-i", str(archive)], env)
    return tool


class Dockerd:
    """A dockerd of our own: data-root, exec-root, pidfile and socket under ``d``."""

    def __init__(self, d: Path, dockerd: str) -> None:
        self.dir = d
        self.proc: subprocess.Popen[bytes] | None = None
        beside = Path(dockerd).parent.parent / "bin" / "docker"  # the client of the same package
        self.client = str(beside) if beside.exists() else shutil.which("docker") or "docker"
        self.argv = [dockerd, "--data-root", f"{d}/data", "--exec-root", f"{d}/exec", "--pidfile",
                     f"{d}/dockerd.pid", "-H", f"unix://{d}/docker.sock", "--exec-opt",
                     "native.cgroupdriver=cgroupfs", "--log-level", "warn"]
        self.env = user_env(DOCKER_HOST=f"unix://{d}/docker.sock")

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "dockerd.log", "wb") as log:
            proc = self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        for _ in range(150):
            try:
                sh([self.client, "version"], self.env)
                return
            except Failed:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        said = (self.dir / "dockerd.log").read_text(errors="replace")
        raise Failed(f"dockerd did not come up: {said[-400:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def make_docker(work: Path, project: str, archives: list[Path]) -> Tool:
    compose = shutil.which("docker-compose")
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")
    if dockerd is None or compose is None:
        raise Failed("dockerd or docker-compose is missing (apt-get install docker.io docker-compose)")
    daemon = Dockerd(work / "docker-compose" / "daemon", dockerd)
    daemon.start()
    try:
        tool = make_compose("docker-compose", daemon.env, [compose], daemon.client, work=work,
                            project=project)
        tool.finish.append(daemon.stop)
        for archive in archives:
            sh([daemon.client, "load", "-q", "-i", str(archive)], daemon.env)
    except Failed:
        daemon.stop()
        raise
    return tool


def add_docker_manifest(archive: Path, name: str) -> None:
    """Append the ``manifest.json`` of a ``docker save`` archive to an OCI image-layout tar."""
    def member(desc: dict[str, Any]) -> str:
        return f"blobs/{desc['digest'].replace(':', '/')}"

    with tarfile.open(archive) as tf:
        def read(name: str) -> Any:
            f = tf.extractfile(name)
            return json.load(f) if f is not None else {}

        manifest = read(member(read("index.json")["manifests"][0]))
    data = json.dumps([{"Config": member(manifest["config"]), "RepoTags": [name],
                        "Layers": [member(layer) for layer in manifest["layers"]]}]).encode()
    with tarfile.open(archive, "a") as tf:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def prepare_images(work: Path, stackd: Tool) -> list[tuple[Path, str]]:
    """``stack build``, then ``stack image export`` of each service's image: (archive, name)."""
    t = time.perf_counter()
    sh([*stackd.base, "build"], stackd.env, timeout=1800)
    print(f"stack build: {time.perf_counter() - t:.1f}s (cold unless --workdir kept a build)")
    config = json.loads(sh([*stackd.base, "config", "--format", "json"], stackd.env))
    archives = []
    for svc in config["services"].values():
        archive = work / "images" / f"{re.sub(r'[/:]', '_', svc['image'])}.tar"
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.unlink(missing_ok=True)
        sh([*stackd.base, "image", "export", svc["image"], str(archive)], stackd.env)
        archives.append((archive, str(svc["image"])))
    return archives


# ------------------------------------------------------------------------ the host, before and after


PEER_DAEMONS = {"dockerd", "containerd", "containerd-shim", "aardvark-dns", "docker-proxy"}
PEER_PATHS = ("/etc/docker/key.json", "/run/docker", "/run/containerd", "/run/containers/networks",
              "/var/lib/docker", "/var/lib/containerd")
PEER_THING = re.compile(r"DOCKER|NETAVARK|docker0|br-[0-9a-f]{12}|podman\d|libpod_parent|(^|/)docker($|/)|"
                        r"netns-|veth|containerd|aardvark")
IPTABLES = {"iptables": "ip", "ip6tables": "ip6"}
CGROUP = Path("/sys/fs/cgroup")


def _lines(argv: list[str]) -> list[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.splitlines()
    except OSError:
        return []


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _rules() -> set[str]:
    """``<tool> <table> <line>`` for every chain and rule of iptables and ip6tables."""
    found = set()
    for tool in IPTABLES:
        table = ""
        for line in _lines([f"{tool}-save"]):
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith((":", "-A")):
                found.add(f"{tool} {table} " + re.sub(r" \[\d+:\d+\]$", "", line))
    return found


def _cgroups(depth: int = 3) -> set[str]:
    found: set[str] = set()
    for hierarchy in sorted(CGROUP.iterdir()) if CGROUP.is_dir() else []:
        for top, dirs, _files in os.walk(hierarchy):
            rel = Path(top).relative_to(CGROUP)
            dirs[:] = [] if len(rel.parts) > depth else [d for d in dirs if d != "process_api"]
            if len(rel.parts) > 1:
                found.add(str(rel))
    return found


def _cmdline(pid: str) -> str:
    return _read(Path("/proc", pid, "cmdline")).replace("\0", " ")


def _processes(work: Path) -> set[str]:
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    return {f"{_read(Path('/proc', p, 'comm')).strip()} {p}" for p in pids
            if _read(Path("/proc", p, "comm")).strip() in PEER_DAEMONS or str(work) in _cmdline(p)}


@dataclass(frozen=True)
class HostState:
    """What a stack tool can leave behind, as ``"<kind> <thing>"`` strings."""

    items: frozenset[str]

    @classmethod
    def take(cls, work: Path) -> HostState:
        items = {f"link {line.split(': ')[1].split('@')[0]}" for line in _lines(["ip", "-o", "link", "show"])}
        items |= {f"netns {n}" for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else [])}
        items |= {f"nft {line}" for line in _lines(["nft", "list", "tables"])}
        items |= {f"rule {r}" for r in _rules()}
        items |= {f"mount {line.split()[4]}" for line in _read(Path("/proc/self/mountinfo")).splitlines()}
        items |= {f"process {p}" for p in _processes(work)}
        items |= {f"cgroup {c}" for c in _cgroups()}
        items |= {f"path {p}" for p in PEER_PATHS if os.path.lexists(p)}
        items.add(f"sysctl net.ipv4.ip_forward={_read(Path('/proc/sys/net/ipv4/ip_forward')).strip()}")
        return cls(frozenset(items))

    def new(self, kind: str, since: HostState) -> list[str]:
        return sorted(i.split(" ", 1)[1] for i in self.items - since.items if i.startswith(kind + " "))


def _run(*argv: str) -> bool:
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def clean_host(before: HostState, project: str, work: Path) -> list[str]:
    """Remove what the tools left since ``before``: processes and mounts of the work directory, the
    peers' links, netns, iptables rules and chains, emptied iptables-nft tables, cgroups, files."""
    now, done = HostState.take(work), []
    for proc in now.new("process", before):
        comm, pid = proc.split()
        if str(work) in _cmdline(pid) or comm in ("aardvark-dns", "docker-proxy"):
            _run("kill", "-KILL", pid)
            done.append(f"killed {proc}")
    for mount in sorted(now.new("mount", before), key=len, reverse=True):
        if mount.startswith((str(work), "/run/netns/netns-", "/run/docker", "/run/containerd")):
            _run("umount", "-l", mount)
            done.append(f"unmounted {mount}")
    done += [f"netns {ns}" for ns in now.new("netns", before)
             if ns.startswith("netns-") and _run("ip", "netns", "delete", ns)]
    done += [f"link {link}" for link in now.new("link", before)
             if re.fullmatch(r"docker0|br-[0-9a-f]{12}|podman\d+|veth[0-9a-f]+", link)
             and _run("ip", "link", "delete", link)]
    rules = [r.split(" ", 2) for r in now.new("rule", before) if PEER_THING.search(r)]
    for tool, table, line in sorted(rules, key=lambda r: r[2].startswith(":")):  # rules, then chains
        if line.startswith("-A"):
            _run(tool, "-t", table, "-D", *shlex.split(line[3:]))
        else:
            _run(tool, "-t", table, "-F", line[1:].split()[0])
    for tool, table, line in rules:
        if line.startswith(":"):
            _run(tool, "-t", table, "-X", line[1:].split()[0])
        done.append(f"{tool} -t {table} {line}")
    for table in now.new("nft", before):  # iptables-nft's own tables, once nothing is left in them
        family, name = table.split()[1:3]
        tool = next((t for t, f in IPTABLES.items() if f == family), "")
        for line in _lines([f"{tool}-save", "-t", name]) if tool else ():
            # dockerd sets FORWARD's policy to DROP; a table new in this run had none before
            chain, _, policy = line[1:].partition(" ")
            if line.startswith(":") and policy.startswith("DROP") and \
                    _run(tool, "-t", name, "-P", chain, "ACCEPT"):
                done.append(f"{tool} -t {name} -P {chain} ACCEPT (was DROP)")
        leftover = [line for line in _lines([f"{tool}-save", "-t", name])
                    if line.startswith("-A") or (line.startswith(":") and " ACCEPT" not in line)]
        if tool and name in ("filter", "nat", "mangle", "raw") and not leftover \
                and _run("nft", "delete", "table", family, name):
            done.append(f"nft table {family} {name} (empty)")
    for cg in sorted(now.new("cgroup", before), key=len, reverse=True):
        if re.search(rf"(^|/)(libpod_parent|docker|{project}-[a-z]+)(/|$)|/stackd/{project}(/|$)", cg):
            done.append(f"cgroup {cg}" + ("" if _run("rmdir", str(CGROUP / cg)) else " (busy, left)"))
    for path in now.new("path", before):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            Path(path).unlink(missing_ok=True)
        done.append(path)
    bridges = [link for link in HostState.take(work).new("link", before) if not link.startswith("veth")]
    if "sysctl net.ipv4.ip_forward=0" in before.items and not bridges:
        Path("/proc/sys/net/ipv4/ip_forward").write_text("0\n")
        done.append("net.ipv4.ip_forward back to 0")
    return done


def report_left(before: HostState, after: HostState, work: Path, project: str) -> None:
    """Print what is on the host now and was not before: what is recognisably ours (or a peer's)
    in full, the rest (other work on the host meanwhile) as a count and a few examples."""
    left = sorted(after.items - before.items)
    ours = [i for i in left
            if PEER_THING.search(i) or project in i or str(work) in i or i.startswith("sysctl")]
    others = [i for i in left if i not in ours]
    for item in ours:
        print(f"host check: left: {item}")
    if not ours:
        print("host check: nothing of this run is left (links, netns, nft and iptables, mounts, processes, "
              "cgroups, files, ip_forward)")
    if others:
        print(f"host check: {len(others)} other new thing(s), not from this run (other work on this host), "
              f"e.g. {', '.join(others[:3])}")


# --------------------------------------------------------------------------------------- measuring


@dataclass
class Runs:
    up: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)


def run_once(tool: Tool, runs: Runs, fresh: bool) -> None:
    start = time.perf_counter()
    tool.up()
    runs.up.append(time.perf_counter() - start)
    asking, addrs = 0.0, dict[str, str]()
    probes: dict[str, Callable[[], bool]] = {
        "web": lambda: http_ok(tool.port), "db": lambda: postgres_ready(addrs["db"]),
        "cache": lambda: redis_ready(addrs["cache"])}
    while probes:
        if len(addrs) < 2:
            t = time.perf_counter()
            addrs = tool.addresses()
            asking += time.perf_counter() - t
        for name in [n for n, probe in probes.items() if (n == "web" or n in addrs) and probe()]:
            del probes[name]
        if probes and time.perf_counter() - start > READY_TIMEOUT:
            try:
                ps = sh([*tool.base, "ps"], tool.env)
            except Failed as exc:
                ps = str(exc)
            raise Failed(f"not ready after {READY_TIMEOUT:.0f}s: {', '.join(probes)} did not answer "
                         f"(addresses: {addrs or 'none found'}); ps:\n{ps.strip()}")
        time.sleep(0.02 if probes else 0)
    runs.ready.append(time.perf_counter() - start - asking)
    start = time.perf_counter()
    tool.down(volumes=fresh)
    runs.down.append(time.perf_counter() - start)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: dict[str, Runs], missing: dict[str, str], tools: list[Tool], n: int) -> None:
    print(f"\n{'tool':16} {'up -d':>8} {'ready':>8} {'down':>8}   (median of {n}; runs up/ready/down)")
    for name, r in results.items():
        every = " ".join(f"{u:.2f}/{a:.2f}/{d:.2f}" for u, a, d in zip(r.up, r.ready, r.down, strict=False))
        print(f"{name:16} {med(r.up):7.2f}s {med(r.ready):7.2f}s {med(r.down):7.2f}s   {every}")
    for name, why in missing.items():
        print(f"{name:16} not measured: {why}")
    for note in (f"{t.name} {n}" for t in tools for n in t.notes):
        print(f"note: {note}")
    ours = results.get("stackd", Runs())
    peers = {k: v for k, v in results.items() if not k.startswith("stackd") and v.up}
    if not ours.up or not peers:
        return
    print()
    for name, r in peers.items():
        print(f"stackd / {name}: up -d {med(ours.up) / med(r.up):.2f}x, "
              f"ready {med(ours.ready) / med(r.ready):.2f}x, down {med(ours.down) / med(r.down):.2f}x")
    for what, label in (("up", "up -d"), ("down", "down")):
        best = min(peers, key=lambda k: med(getattr(peers[k], what)))
        goal, got = 0.5 * med(getattr(peers[best], what)), med(getattr(ours, what))
        print(f"target: stackd {label} <= 0.5x the faster peer ({best}): {got:.2f}s vs {goal:.2f}s: "
              f"{'met' if got <= goal else 'missed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=3, help="runs per tool (median; default 3)")
    parser.add_argument("--fresh", action="store_true", help="down -v after every run (initdb every time)")
    parser.add_argument("--only", default="stackd,podman,docker", help="of stackd,podman,docker")
    parser.add_argument("--workdir", type=Path, help="keep stackd's image store here for the next run")
    parser.add_argument("--no-daemon-too", action="store_true",
                        help="also time stackd with --no-daemon (converging in the stack process)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("this benchmark needs root (containers, networks, cgroups)")
    project = f"bench{os.getpid()}"
    work = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="stackd-bench-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    before = HostState.take(work)
    tools: list[Tool] = []
    missing: dict[str, str] = {}
    try:
        builder = make_stackd(work, project, daemon=False)
        archives = prepare_images(work, builder)
        if "stackd" in args.only:
            tools.append(make_stackd(work, project))
            if args.no_daemon_too:
                tools.append(make_stackd(work, project + "n", daemon=False))
        for key, name, make in (("podman", "podman-compose", make_podman),
                                ("docker", "docker-compose", make_docker)):
            if key == "docker":  # podman has read the OCI archives; docker 20.10 wants docker's manifest
                for archive, image in archives:
                    add_docker_manifest(archive, image)
            if key in args.only:
                try:
                    tools.append(make(work, project, [a for a, _ in archives]))
                except Failed as exc:
                    missing[name] = str(exc)
        results = {t.name: Runs() for t in tools}
        for i in range(args.runs):
            for tool in (t for t in tools if t.name in results):
                try:
                    run_once(tool, results[tool.name], args.fresh)
                except Failed as exc:
                    missing[tool.name] = f"run {i + 1} failed: {exc}"
                    del results[tool.name]
        report(results, missing, tools, args.runs)
    finally:
        print()
        for tool in tools:
            try:
                tool.teardown()
            except Failed as exc:
                print(f"teardown of {tool.name}: {exc}")
        for line in clean_host(before, project, work):
            print(f"cleaned up: {line}")
        report_left(before, HostState.take(work), work, project)
        if args.workdir:  # keep stackd's image store (and its build cache) for the next run
            for sub in ("podman-compose", "docker-compose", "podman", "stackd/run", "images"):
                shutil.rmtree(work / sub, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
