"""``container_request``, field by field: what a service and its image become in the request the
runtime driver writes as config.json (Docker's and Compose's semantics)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from stackd import labels
from stackd.drivers.containers.mounts import INIT_PATH, anonymous_volume_name
from stackd.drivers.containers.paths import ContainerPaths
from stackd.drivers.containers.request import (
    STOP_SIGNAL_ANNOTATION,
    EtcFiles,
    Identity,
    container_request,
    device_specs,
    stop_signal,
)
from stackd.drivers.images.config import ImageConfig
from stackd.drivers.runtime import (
    HOST,
    PRIVATE,
    ContainerRequest,
    HostLimits,
    Mount,
    Rlimit,
    User,
    oci_config,
)
from stackd.drivers.runtime.request import DEFAULT_SHM_SIZE, SECCOMP_UNCONFINED
from stackd.errors import PermanentDriverError
from stackd.spec.models import Stack
from tests.unit.containers.conftest import LoadStack, image, paths

NETNS = "/run/netns/stk-demo-web-1"
ETC = EtcFiles(passwd="root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n"
                      "nohome:x:40:40::\n",
               group="root:x:0:\nwww:x:33:\nextra:x:50:www\nvideo:x:44:\n")
IDENTITY = Identity("busybox:latest", "sha256:" + "a" * 64, "h" * 64, {"image": "p1", "command": "p2"})


def req(stack: Stack, service: str = "web", *, img: ImageConfig | None = None, etc: EtcFiles = ETC,
        init: str | None = None, netns: str = NETNS, number: int = 1,
        net_files: ContainerPaths | None = None) -> ContainerRequest:
    name = f"demo-{service}-{number}"
    return container_request(stack, service, number, name, image=img or image(), paths=paths(name),
                             netns=netns, identity=IDENTITY, etc=etc, net_files=net_files, init_binary=init)


def web(load_stack: LoadStack, body: str, extra: str = "") -> Stack:
    indented = "\n".join(f"    {line}" for line in textwrap.dedent(body).strip().splitlines())
    return load_stack(f"services:\n  web:\n    image: busybox\n{indented}\n{extra}")


def mount_at(request: ContainerRequest, destination: str) -> Mount:
    return next(m for m in request.mounts if m.destination == destination)


# ------------------------------------------------------------------------------ program and env


def test_environment_service_over_image_unset_left_out_and_home_of_the_user(load_stack: LoadStack) -> None:
    stack = web(load_stack, "environment: [A=service, B, C=3]\nuser: www")
    r = req(stack, img=image(env=("PATH=/bin", "A=image", "D=image")))
    assert r.env == ("PATH=/bin", "A=service", "D=image", "C=3", "HOME=/var/www")


def test_home_set_by_the_service_is_kept_and_root_is_home_in_root(load_stack: LoadStack) -> None:
    assert "HOME=/custom" in req(web(load_stack, "environment: {HOME: /custom}")).env
    assert req(web(load_stack, "environment: {X: y}")).env[-1] == "HOME=/root"
    assert req(web(load_stack, "user: '40'")).env[-1] == "HOME=/"


@pytest.mark.parametrize(("body", "expected"), [
    ("", ("/entry", "image-cmd")),
    ("command: [run, it]", ("/entry", "run", "it")),
    ("entrypoint: [/other]", ("/other",)),
    ("entrypoint: [/other]\ncommand: [x]", ("/other", "x")),
    ("entrypoint: []\ncommand: [x]", ("x",)),
    ("command: echo 'a b' c", ("/entry", "echo", "a b", "c")),
])
def test_entrypoint_and_command(load_stack: LoadStack, body: str, expected: tuple[str, ...]) -> None:
    stack = web(load_stack, body or "restart: 'no'")
    assert req(stack, img=image(entrypoint=("/entry",), cmd=("image-cmd",))).args == expected


def test_no_program_at_all_is_an_error_naming_the_service(load_stack: LoadStack) -> None:
    with pytest.raises(PermanentDriverError, match="service web: no command"):
        req(web(load_stack, "restart: 'no'"), img=image(cmd=None))


def test_init_runs_the_program_under_the_hosts_init_mounted_read_only(load_stack: LoadStack) -> None:
    r = req(web(load_stack, "init: true\ncommand: [sleep, '5']"), init="/usr/bin/catatonit")
    assert r.args == (INIT_PATH, "--", "sleep", "5")
    assert mount_at(r, INIT_PATH) == Mount(INIT_PATH, "/usr/bin/catatonit", "bind", ("rbind", "ro"))
    with pytest.raises(PermanentDriverError, match=r"service web: `init: true` needs catatonit or tini"):
        req(web(load_stack, "init: true"))
    assert all(m.destination != INIT_PATH for m in req(web(load_stack, "init: false"), init="/x").mounts)


@pytest.mark.parametrize(("body", "img_dir", "expected"), [
    ("working_dir: /srv", "/app", "/srv"), ("restart: 'no'", "/app", "/app"), ("restart: 'no'", "", "/"),
])
def test_working_dir(load_stack: LoadStack, body: str, img_dir: str, expected: str) -> None:
    assert req(web(load_stack, body), img=image(working_dir=img_dir)).cwd == expected


# ------------------------------------------------------------------------------ identity


@pytest.mark.parametrize(("spec", "expected"), [
    ("", User(0, 0)), ("www", User(33, 33, (50,))), ("33", User(33, 33, (50,))),
    ("33:44", User(33, 44, (50,))), ("www:video", User(33, 44, (50,))), ("1234:5678", User(1234, 5678)),
])
def test_user_resolved_against_the_images_files(load_stack: LoadStack, spec: str, expected: User) -> None:
    stack = web(load_stack, f"user: '{spec}'" if spec else "restart: 'no'")
    assert req(stack).user == expected


def test_image_user_is_used_unless_the_service_sets_one(load_stack: LoadStack) -> None:
    assert req(web(load_stack, "restart: 'no'"), img=image(user="www")).user.uid == 33
    assert req(web(load_stack, "user: root"), img=image(user="www")).user.uid == 0


def test_group_add_and_unknown_users(load_stack: LoadStack) -> None:
    assert req(web(load_stack, "user: www\ngroup_add: [video, '99']")).user == User(33, 33, (50, 44, 99))
    with pytest.raises(PermanentDriverError, match="service web: user 'nobody'"):
        req(web(load_stack, "user: nobody"))
    with pytest.raises(PermanentDriverError, match="service web: group_add: no group 'wheel'"):
        req(web(load_stack, "group_add: [wheel]"))


def test_hostname_is_the_container_name_unless_set(load_stack: LoadStack) -> None:
    assert req(web(load_stack, "restart: 'no'")).hostname == "demo-web-1"
    assert req(web(load_stack, "hostname: box")).hostname == "box"
    assert req(web(load_stack, "domainname: example.org")).domainname == "example.org"
    assert req(web(load_stack, "restart: 'no'")).domainname == ""


def test_stop_signal_service_over_image_over_sigterm(load_stack: LoadStack) -> None:
    assert stop_signal(web(load_stack, "stop_signal: SIGINT").services["web"], image(stop_signal="SIGQUIT")) \
        == ("SIGINT", True)
    plain = web(load_stack, "restart: 'no'")
    assert stop_signal(plain.services["web"], image(stop_signal="SIGQUIT")) == ("SIGQUIT", False)
    assert stop_signal(plain.services["web"], image()) == ("SIGTERM", False)
    assert req(plain, img=image(stop_signal="SIGQUIT")).annotations[STOP_SIGNAL_ANNOTATION] == "SIGQUIT"


def test_annotations_carry_every_stackd_key(load_stack: LoadStack) -> None:
    stack = load_stack("""
        x-stackd: {groups: {bg: {}}}
        services:
          web: {image: busybox, cgroup_parent: bg, labels: {team: a, io.stackd.project: spoofed},
                annotations: {note: x}}
    """)
    notes = req(stack, number=2).annotations
    assert notes[labels.PROJECT] == "demo" and notes[labels.SERVICE] == "web" and notes[labels.NUMBER] == "2"
    assert notes[labels.CONFIG_HASH] == "h" * 64
    assert json.loads(notes[labels.CONFIG_PARTS]) == {"image": "p1", "command": "p2"}
    assert notes[labels.GROUP] == "bg" and notes[labels.IMAGE] == "busybox:latest"
    assert notes[labels.IMAGE_ID] == "sha256:" + "a" * 64
    assert notes[labels.COMPOSE_PROJECT] == "demo" and notes[labels.COMPOSE_NUMBER] == "2"
    assert notes["team"] == "a" and notes["note"] == "x"


def test_cgroups_path_is_below_the_group(load_stack: LoadStack) -> None:
    stack = load_stack("""
        x-stackd: {groups: {bg: {}}}
        services:
          web: {image: busybox, cgroup_parent: bg}
          db: {image: busybox}
    """)
    assert req(stack).cgroups_path == "/stackd/demo/bg/demo-web-1"
    assert req(stack, "db").cgroups_path == "/stackd/demo/default/demo-db-1"
    custom = container_request(stack, "db", 1, "demo-db-1", image=image(), netns=NETNS, identity=IDENTITY,
                               paths=ContainerPaths(Path("/data"), "demo-db-1", "/stkt-x"))
    assert custom.cgroups_path == "/stkt-x/demo/default/demo-db-1"


# ------------------------------------------------------------------------------ security


def test_capabilities_privileged_read_only(load_stack: LoadStack) -> None:
    r = req(web(load_stack, "cap_add: [NET_ADMIN]\ncap_drop: [CHOWN]\nprivileged: true\nread_only: true"))
    assert (r.cap_add, r.cap_drop) == (("NET_ADMIN",), ("CHOWN",))
    assert r.privileged and r.readonly_rootfs
    plain = req(web(load_stack, "restart: 'no'"))
    assert (plain.privileged, plain.readonly_rootfs, plain.no_new_privileges) == (False, False, False)


@pytest.mark.parametrize("opt", ["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"])
def test_no_new_privileges(load_stack: LoadStack, opt: str) -> None:
    assert req(web(load_stack, f"security_opt: ['{opt}']")).no_new_privileges


def test_other_security_options(load_stack: LoadStack) -> None:
    assert not req(web(load_stack, "security_opt: ['no-new-privileges:false']")).no_new_privileges
    assert req(web(load_stack, "security_opt: ['seccomp=unconfined']")).seccomp == SECCOMP_UNCONFINED
    assert req(web(load_stack, "security_opt: ['apparmor=unconfined', 'label=disable']")).seccomp == "default"
    with pytest.raises(PermanentDriverError, match="service web: security_opt 'apparmor=strict'"):
        req(web(load_stack, "security_opt: ['apparmor=strict']"))


def test_namespaces(load_stack: LoadStack) -> None:
    r = req(web(load_stack, "pid: host\nipc: host"))
    ns = r.namespaces
    assert (ns.net, ns.pid, ns.ipc, ns.uts) == (NETNS, HOST, HOST, PRIVATE)
    assert req(web(load_stack, "restart: 'no'"), netns=HOST).namespaces.net == HOST
    with pytest.raises(PermanentDriverError, match="service web: ipc"):
        req(web(load_stack, "ipc: 'container:abc'"))


# ------------------------------------------------------------------------------ limits


def test_resources_from_service_keys(load_stack: LoadStack) -> None:
    r = req(web(load_stack, """
        mem_limit: 512m
        memswap_limit: 1g
        mem_reservation: 128m
        mem_swappiness: 10
        cpus: 1.5
        cpu_shares: 512
        cpu_quota: 50000
        cpu_period: 100000
        cpuset: '0-1'
        pids_limit: 100
        blkio_config: {weight: 300}
        oom_score_adj: 500
    """)).resources
    assert (r.memory, r.memory_swap, r.memory_reservation) == (512 << 20, 1 << 30, 128 << 20)
    assert (r.memory_swappiness, r.cpus, r.cpu_shares) == (10, 1.5, 512)
    assert (r.cpu_quota, r.cpu_period, r.cpuset_cpus) == (50000, 100000, "0-1")
    assert (r.pids_limit, r.blkio_weight) == (100, 300)


def test_resources_from_deploy_and_conflicts(load_stack: LoadStack) -> None:
    r = req(web(load_stack, """
        deploy: {resources: {limits: {cpus: '0.5', memory: 64m, pids: 20}, reservations: {memory: 32m}}}
    """)).resources
    assert (r.cpus, r.memory, r.pids_limit, r.memory_reservation) == (0.5, 64 << 20, 20, 32 << 20)
    same = web(load_stack, "mem_limit: 64m\ndeploy: {resources: {limits: {memory: 64m}}}")
    assert req(same).resources.memory == 64 << 20
    with pytest.raises(PermanentDriverError, match=r"service web: mem_limit and deploy\.resources"):
        req(web(load_stack, "mem_limit: 64m\ndeploy: {resources: {limits: {memory: 32m}}}"))


@pytest.mark.parametrize(("body", "message"), [
    ("memswap_limit: 1g", "memswap_limit needs mem_limit"),
    ("mem_limit: 1g\nmemswap_limit: 512m", "below mem_limit"),
    ("mem_limit: 64m\nmem_reservation: 128m", "reservation .* is above"),
])
def test_contradictory_limits(load_stack: LoadStack, body: str, message: str) -> None:
    with pytest.raises(PermanentDriverError, match=f"service web: .*{message}"):
        req(web(load_stack, body))


def test_zero_means_unset_and_unlimited_swap(load_stack: LoadStack) -> None:
    r = req(web(load_stack, "cpus: 0\npids_limit: 0\nmem_limit: 1g\nmemswap_limit: -1")).resources
    assert (r.cpus, r.pids_limit, r.memory_swap) == (None, None, -1)
    assert req(web(load_stack, "restart: 'no'")).resources == type(r)()


def test_ulimits_sysctls_shm_size(load_stack: LoadStack) -> None:
    r = req(web(load_stack, """
        ulimits: {nproc: 65535, nofile: {soft: 1024, hard: 4096}}
        sysctls: {net.core.somaxconn: 1024}
        shm_size: 256m
    """))
    assert r.rlimits == (Rlimit("nofile", 1024, 4096), Rlimit("nproc", 65535, 65535))
    assert r.sysctls == {"net.core.somaxconn": "1024"}
    assert r.shm_size == 256 << 20
    assert req(web(load_stack, "restart: 'no'")).shm_size == DEFAULT_SHM_SIZE


# ------------------------------------------------------------------------------ mounts


def test_named_anonymous_and_image_volumes(load_stack: LoadStack) -> None:
    stack = web(load_stack, """
        volumes:
          - data:/var/lib/data
          - type: volume
            source: data
            target: /sub
            read_only: true
            volume: {subpath: part}
          - /cache
    """, "volumes:\n  data: {}\n")
    r = req(stack, img=image(volumes=("/var/lib/data", "/logs")))
    assert mount_at(r, "/var/lib/data") == Mount("/var/lib/data", "/data/volumes/demo_data/_data", "bind",
                                                 ("rbind",))
    assert mount_at(r, "/sub") == Mount("/sub", "/data/volumes/demo_data/_data/part", "bind", ("rbind", "ro"))
    cache = anonymous_volume_name("demo-web-1", "/cache")
    logs = anonymous_volume_name("demo-web-1", "/logs")
    assert mount_at(r, "/cache").source == f"/data/volumes/{cache}/_data"
    assert mount_at(r, "/logs").source == f"/data/volumes/{logs}/_data"  # the image's VOLUME, uncovered
    assert cache != logs and cache.startswith("demo-web-1-anon-")
    assert anonymous_volume_name("demo-web-1", "/cache/") == cache


def test_binds_and_tmpfs(load_stack: LoadStack, tmp_path: Path) -> None:
    stack = web(load_stack, f"""
        volumes:
          - {tmp_path}:/src:ro
          - type: bind
            source: {tmp_path}
            target: /shared
            bind: {{propagation: rshared}}
          - type: tmpfs
            target: /scratch
            tmpfs: {{size: 16m, mode: 01777}}
        tmpfs: ['/run/app:size=1m,uid=5', /tmp]
    """)
    r = req(stack)
    assert mount_at(r, "/src") == Mount("/src", str(tmp_path), "bind", ("rbind", "ro"))
    assert mount_at(r, "/shared").options == ("rbind", "rshared")
    assert mount_at(r, "/scratch") == Mount("/scratch", "tmpfs", "tmpfs",
                                            ("nosuid", "nodev", f"size={16 << 20}", "mode=1777"))
    assert mount_at(r, "/run/app").options == ("rw", "noexec", "nosuid", "nodev", "size=1m", "uid=5")
    assert mount_at(r, "/tmp").options == ("rw", "noexec", "nosuid", "nodev")


def test_secrets_and_configs_are_read_only_copies(load_stack: LoadStack, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x")
    stack = web(load_stack, """
        secrets: [pw, {source: pw, target: /etc/pw2}]
        configs: [app, {source: app, target: conf/app.ini}]
    """, f"secrets:\n  pw: {{file: {tmp_path / 'pw'}}}\nconfigs:\n  app: {{content: hi}}\n")
    r = req(stack)
    assert mount_at(r, "/run/secrets/pw") == Mount(
        "/run/secrets/pw", "/data/containers/demo-web-1/secrets/0_pw", "bind", ("rbind", "ro"))
    assert mount_at(r, "/etc/pw2").source.endswith("/secrets/1_pw")
    assert mount_at(r, "/app").source == "/data/containers/demo-web-1/configs/0_app"
    assert mount_at(r, "/conf/app.ini").options == ("rbind", "ro")


def test_hosts_hostname_and_resolv_conf_files(load_stack: LoadStack) -> None:
    r = req(web(load_stack, "restart: 'no'"))
    assert mount_at(r, "/etc/hosts").source == "/data/containers/demo-web-1/hosts"
    assert mount_at(r, "/etc/hostname").source == "/data/containers/demo-web-1/hostname"
    assert mount_at(r, "/etc/resolv.conf").source == "/data/containers/demo-web-1/resolv.conf"
    joined = req(web(load_stack, "restart: 'no'"), net_files=paths("demo-db-1"))
    assert mount_at(joined, "/etc/hosts").source == "/data/containers/demo-db-1/hosts"
    assert mount_at(joined, "/etc/hostname").source == "/data/containers/demo-web-1/hostname"
    own = req(web(load_stack, "volumes: ['/tmp/h:/etc/hosts']"))
    assert mount_at(own, "/etc/hosts").source == "/tmp/h"


def test_two_mounts_at_one_place_are_refused(load_stack: LoadStack) -> None:
    with pytest.raises(PermanentDriverError, match="service web: more than one mount at /x"):
        req(web(load_stack, "volumes: ['/a:/x']\ntmpfs: [/x]"))


def test_devices() -> None:
    class Svc:
        name = "web"
        devices = ["/dev/fuse", "/dev/sda:/dev/xvda:r"]

    assert device_specs(Svc()) == [("/dev/fuse", "/dev/fuse", "rwm"), ("/dev/sda", "/dev/xvda", "r")]  # type: ignore[arg-type]


def test_the_request_becomes_a_config(load_stack: LoadStack) -> None:
    stack = web(load_stack, "init: true\nuser: www\nports: ['8080:80']\nulimits: {nofile: 100000}")
    config = oci_config(req(stack, init="/usr/bin/tini-static"), HostLimits(rlimits={"RLIMIT_NOFILE": 20000}))
    assert config["process"]["args"][:2] == [INIT_PATH, "--"]
    assert config["process"]["user"] == {"uid": 33, "gid": 33, "additionalGids": [50]}
    assert config["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000}]
    assert {"type": "network", "path": NETNS} in config["linux"]["namespaces"]
    assert config["hostname"] == "demo-web-1"
