"""oci_config, field by field: Docker's defaults, capabilities, privileged, user, rlimits,
namespaces, cgroups, resources, mounts, seccomp."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from stackd.drivers.runtime.request import (
    HOST,
    ContainerRequest,
    Device,
    HostLimits,
    Mount,
    Namespaces,
    Resources,
    Rlimit,
    User,
)
from stackd.drivers.runtime.spec import RLIM_INFINITY, discarded, oci_config
from stackd.errors import PermanentDriverError

DOCKER_CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}
DOCKER_MASKED = {
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}
DOCKER_READONLY = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
LIMITS = HostLimits(rlimits={"RLIMIT_NOFILE": 20000}, arch="x86_64", cap_last_cap=40)


def req(**kw: Any) -> ContainerRequest:
    return ContainerRequest(rootfs="/var/lib/stackd/rootfs/abc", args=("nginx", "-g", "daemon off;"), **kw)


def config(**kw: Any) -> dict[str, Any]:
    return oci_config(req(**kw), LIMITS)


def caps_of(cfg: dict[str, Any]) -> dict[str, set[str]]:
    return {k: set(v) for k, v in cfg["process"]["capabilities"].items()}


def mounts_by_dest(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["destination"]: m for m in cfg["mounts"]}


# -- defaults ------------------------------------------------------------------------------------


def test_default_capabilities_are_dockers_fourteen_and_inheritable_is_empty() -> None:
    caps = caps_of(config())
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == DOCKER_CAPS
    assert caps["inheritable"] == set()


def test_default_masked_and_readonly_paths_are_dockers() -> None:
    linux = config()["linux"]
    assert set(linux["maskedPaths"]) == DOCKER_MASKED
    assert set(linux["readonlyPaths"]) == DOCKER_READONLY


def test_default_mounts_are_dockers_standard_set() -> None:
    mounts = mounts_by_dest(config())
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert mounts["/proc"]["type"] == "proc"
    assert set(mounts["/proc"]["options"]) == {"nosuid", "noexec", "nodev"}
    assert mounts["/dev"]["type"] == "tmpfs"
    assert set(mounts["/dev"]["options"]) == {"nosuid", "strictatime", "mode=755", "size=65536k"}
    assert mounts["/dev/pts"]["type"] == "devpts"
    assert {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"} <= set(mounts["/dev/pts"]["options"])
    assert mounts["/sys"]["type"] == "sysfs" and "ro" in mounts["/sys"]["options"]
    assert mounts["/sys/fs/cgroup"]["type"] == "cgroup" and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert mounts["/dev/mqueue"]["type"] == "mqueue"
    assert mounts["/dev/shm"]["type"] == "tmpfs"
    assert {"mode=1777", "size=67108864", "nosuid", "noexec", "nodev"} <= set(mounts["/dev/shm"]["options"])


def test_shm_size_sets_the_size_of_dev_shm() -> None:
    shm = mounts_by_dest(config(shm_size=256 << 20))["/dev/shm"]
    assert "size=268435456" in shm["options"]


def test_default_namespaces_are_all_private_with_no_paths() -> None:
    kinds = [ns["type"] for ns in config()["linux"]["namespaces"]]
    assert sorted(kinds) == ["cgroup", "ipc", "mount", "network", "pid", "uts"]
    assert all("path" not in ns for ns in config()["linux"]["namespaces"])


def test_default_device_rules_deny_all_then_allow_the_standard_nodes() -> None:
    rules = config()["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    allowed = {(r.get("type"), r.get("major"), r.get("minor")) for r in rules[1:] if r["allow"]}
    for node in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)]:
        assert ("c", *node) in allowed
    assert ("c", 136, None) in allowed  # the pseudo-terminals


def test_defaults_for_process_root_and_environment() -> None:
    cfg = config()
    assert cfg["ociVersion"].startswith("1.0")
    assert cfg["root"] == {"path": "/var/lib/stackd/rootfs/abc", "readonly": False}
    proc = cfg["process"]
    assert proc["args"] == ["nginx", "-g", "daemon off;"]
    assert proc["cwd"] == "/"
    assert proc["terminal"] is False
    assert proc["user"] == {"uid": 0, "gid": 0}
    assert proc["noNewPrivileges"] is False
    assert proc["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert "rlimits" not in proc and "oomScoreAdj" not in proc
    assert "hostname" not in cfg and "annotations" not in cfg
    assert "cgroupsPath" not in cfg["linux"]


def test_default_seccomp_profile_is_present() -> None:
    profile = config()["linux"]["seccomp"]
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "SCMP_ARCH_X86_64" in profile["architectures"]
    denied = {n for s in profile["syscalls"] for n in s["names"]}
    assert {"mount", "unshare", "keyctl", "kexec_load", "init_module"} <= denied


# -- capabilities ----------------------------------------------------------------------------------


def test_cap_add_and_cap_drop_change_the_default_set() -> None:
    caps = caps_of(config(cap_add=("NET_ADMIN", "cap_sys_time"), cap_drop=("CHOWN", "CAP_NET_RAW")))
    expected = (DOCKER_CAPS - {"CAP_CHOWN", "CAP_NET_RAW"}) | {"CAP_NET_ADMIN", "CAP_SYS_TIME"}
    assert caps["bounding"] == expected
    assert caps["effective"] == caps["bounding"]


def test_cap_drop_all_keeps_only_the_added_ones() -> None:
    caps = caps_of(config(cap_drop=("ALL",), cap_add=("NET_BIND_SERVICE",)))
    assert caps["bounding"] == {"CAP_NET_BIND_SERVICE"}


def test_cap_add_all_gives_every_known_capability_but_the_dropped() -> None:
    caps = caps_of(config(cap_add=("ALL",), cap_drop=("SYS_ADMIN",)))
    assert "CAP_SYS_ADMIN" not in caps["bounding"]
    assert {"CAP_SYS_MODULE", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"} <= caps["bounding"]
    assert len(caps["bounding"]) == 40


def test_an_added_capability_wins_over_the_same_one_dropped() -> None:
    assert "CAP_CHOWN" in caps_of(config(cap_add=("CHOWN",), cap_drop=("CHOWN",)))["bounding"]


def test_capabilities_unknown_to_the_kernel_are_left_out() -> None:
    cfg = oci_config(req(cap_add=("ALL",)), dataclasses.replace(LIMITS, cap_last_cap=37))
    assert "CAP_PERFMON" not in cfg["process"]["capabilities"]["bounding"]
    assert "CAP_AUDIT_READ" in cfg["process"]["capabilities"]["bounding"]


def test_an_unknown_capability_is_refused() -> None:
    with pytest.raises(PermanentDriverError, match="NET_FLY"):
        config(cap_add=("NET_FLY",))


# -- privileged, read-only, user -------------------------------------------------------------------


def test_privileged_has_every_capability_no_masks_no_seccomp_and_all_devices() -> None:
    host_dev = Device("/dev/sda", "b", 8, 0, 0o660, 0, 6)
    limits = dataclasses.replace(LIMITS, devices=(host_dev,))
    cfg = oci_config(req(privileged=True, cap_drop=("ALL",)), limits)
    assert len(cfg["process"]["capabilities"]["bounding"]) == 41
    assert cfg["linux"]["maskedPaths"] == [] and cfg["linux"]["readonlyPaths"] == []
    assert "seccomp" not in cfg["linux"]
    assert cfg["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert cfg["linux"]["devices"] == [
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660, "uid": 0, "gid": 6}]
    mounts = mounts_by_dest(cfg)
    assert "ro" not in mounts["/sys"]["options"] and "rw" in mounts["/sys"]["options"]
    assert "ro" not in mounts["/sys/fs/cgroup"]["options"]


def test_read_only_root() -> None:
    assert config(readonly_rootfs=True)["root"]["readonly"] is True


def test_user_with_additional_groups() -> None:
    cfg = config(user=User(uid=101, gid=103, additional_gids=(4, 27)))
    assert cfg["process"]["user"] == {"uid": 101, "gid": 103, "additionalGids": [4, 27]}


def test_no_new_privileges_and_oom_score_adj_and_cwd() -> None:
    proc = config(no_new_privileges=True, oom_score_adj=-500, cwd="/srv")["process"]
    assert proc["noNewPrivileges"] is True
    assert proc["oomScoreAdj"] == -500
    assert proc["cwd"] == "/srv"


# -- environment and hostname ---------------------------------------------------------------------


def test_environment_overrides_path_and_keeps_order() -> None:
    env = config(env=("A=1", "PATH=/opt/bin", "B=2", "A=3"), hostname="web")["process"]["env"]
    assert env == ["PATH=/opt/bin", "HOSTNAME=web", "A=3", "B=2"]


def test_hostname_needs_a_private_uts_namespace() -> None:
    assert config(hostname="web")["hostname"] == "web"
    cfg = config(hostname="web", namespaces=Namespaces(uts=HOST))
    assert "hostname" not in cfg
    assert all(ns["type"] != "uts" for ns in cfg["linux"]["namespaces"])


def test_domainname_is_set_in_a_private_uts_namespace_only() -> None:
    assert config(hostname="web", domainname="example.org")["domainname"] == "example.org"
    assert "domainname" not in config(hostname="web")
    assert "domainname" not in config(domainname="example.org", namespaces=Namespaces(uts=HOST))


def test_terminal_sets_term() -> None:
    cfg = config(terminal=True)
    assert cfg["process"]["terminal"] is True
    assert "TERM=xterm" in cfg["process"]["env"]


# -- rlimits --------------------------------------------------------------------------------------


def test_rlimits_are_clamped_to_the_callers_hard_limits() -> None:
    cfg = config(rlimits=(Rlimit("nofile", 65536, 1048576), Rlimit("RLIMIT_NPROC", 100, 200)))
    assert cfg["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000},
        {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
    ]


def test_rlimit_below_the_host_limit_is_kept_and_unlimited_is_clamped() -> None:
    cfg = config(rlimits=(Rlimit("nofile", 1024, 4096), Rlimit("core", -1, -1)))
    assert cfg["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
        {"type": "RLIMIT_CORE", "soft": RLIM_INFINITY, "hard": RLIM_INFINITY},
    ]
    clamped = oci_config(req(rlimits=(Rlimit("nofile", -1, -1),)), LIMITS)["process"]["rlimits"]
    assert clamped == [{"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000}]


def test_unknown_rlimit_is_refused() -> None:
    with pytest.raises(PermanentDriverError, match="rlimit"):
        config(rlimits=(Rlimit("wishes", 1, 1),))


# -- namespaces, cgroups, sysctls, annotations -----------------------------------------------------


def test_netns_path_is_joined() -> None:
    namespaces = config(namespaces=Namespaces(net="/run/netns/stk-1a2b3c"))["linux"]["namespaces"]
    assert {"type": "network", "path": "/run/netns/stk-1a2b3c"} in namespaces


def test_host_namespaces_are_left_out_and_paths_joined() -> None:
    ns = Namespaces(pid=HOST, ipc="/proc/42/ns/ipc", net=HOST, cgroup=HOST)
    namespaces = config(namespaces=ns)["linux"]["namespaces"]
    assert namespaces == [{"type": "mount"}, {"type": "ipc", "path": "/proc/42/ns/ipc"}, {"type": "uts"}]


def test_host_ipc_binds_the_hosts_dev_shm() -> None:
    shm = mounts_by_dest(config(namespaces=Namespaces(ipc=HOST)))["/dev/shm"]
    assert shm["type"] == "bind" and shm["source"] == "/dev/shm"


def test_cgroups_path() -> None:
    path = "/stackd/shop/fg/shop-web-1"
    assert config(cgroups_path=path)["linux"]["cgroupsPath"] == path


def test_sysctls_and_annotations() -> None:
    cfg = config(sysctls={"net.core.somaxconn": "1024"}, annotations={"io.stackd.project": "shop"})
    assert cfg["linux"]["sysctl"] == {"net.core.somaxconn": "1024"}
    assert cfg["annotations"] == {"io.stackd.project": "shop"}


# -- resources ------------------------------------------------------------------------------------


def test_cpus_become_quota_over_a_100ms_period() -> None:
    cpu = config(resources=Resources(cpus=1.5))["linux"]["resources"]["cpu"]
    assert cpu == {"quota": 150000, "period": 100000}


def test_explicit_cpu_quota_period_shares_and_cpuset() -> None:
    cpu = config(resources=Resources(cpu_quota=50000, cpu_period=200000, cpu_shares=512,
                                     cpuset_cpus="0-1", cpuset_mems="0"))["linux"]["resources"]["cpu"]
    assert cpu == {"shares": 512, "quota": 50000, "period": 200000, "cpus": "0-1", "mems": "0"}


def test_memory_limit_gets_as_much_swap_by_default() -> None:
    cfg = config(resources=Resources(memory=32 << 20, memory_reservation=16 << 20))
    memory = cfg["linux"]["resources"]["memory"]
    assert memory == {"limit": 32 << 20, "swap": 64 << 20, "reservation": 16 << 20}


def test_memory_swap_explicit_and_unlimited() -> None:
    res = config(resources=Resources(memory=32 << 20, memory_swap=48 << 20))["linux"]["resources"]
    assert res["memory"]["swap"] == 48 << 20
    res = config(resources=Resources(memory=32 << 20, memory_swap=-1))["linux"]["resources"]
    assert res["memory"]["swap"] == -1


def test_no_swap_setting_without_swap_accounting() -> None:
    limits = dataclasses.replace(LIMITS, swap_accounting=False)
    cfg = oci_config(req(resources=Resources(memory=32 << 20)), limits)
    assert cfg["linux"]["resources"]["memory"] == {"limit": 32 << 20}


def test_pids_and_blkio_weight() -> None:
    res = config(resources=Resources(pids_limit=100, blkio_weight=300))["linux"]["resources"]
    assert res["pids"] == {"limit": 100}
    assert res["blockIO"] == {"weight": 300}


def test_settings_the_host_lacks_are_left_out_and_reported() -> None:
    res = Resources(memory=32 << 20, memory_swap=64 << 20, memory_swappiness=10, cpus=1, cpu_shares=2,
                    cpuset_cpus="0", pids_limit=10, blkio_weight=100)
    lacking = HostLimits(swap_accounting=False, memory_swappiness=False, cpu_shares=False, cpu_quota=False,
                         cpuset=False, pids_limit=False, blkio_weight=False)
    assert oci_config(req(resources=res), lacking)["linux"]["resources"] == {
        "devices": config()["linux"]["resources"]["devices"], "memory": {"limit": 32 << 20}}
    warnings = discarded(req(resources=res), lacking)
    assert len(warnings) == 7
    assert any("blkio weight discarded" in w for w in warnings)
    assert discarded(req(resources=res), LIMITS) == []
    full = oci_config(req(resources=res), LIMITS)["linux"]["resources"]
    assert set(full) == {"devices", "memory", "cpu", "pids", "blockIO"}
    assert full["memory"]["swappiness"] == 10


def test_no_resources_means_only_device_rules() -> None:
    assert set(config()["linux"]["resources"]) == {"devices"}


# -- mounts and devices ---------------------------------------------------------------------------


def test_user_mounts_follow_the_standard_ones_parents_first_and_binds_are_rbind_rprivate() -> None:
    mounts = config(mounts=(
        Mount("/data/cache", "/srv/cache"),
        Mount("/data", "/srv/data", options=("ro",)),
        Mount("/run", "tmpfs", "tmpfs", ("mode=755",)),
    ))["mounts"]
    assert [m["destination"] for m in mounts[-3:]] == ["/data", "/run", "/data/cache"]
    data = mounts[-3]
    assert data["type"] == "bind" and data["source"] == "/srv/data"
    assert data["options"] == ["rbind", "ro", "rprivate"]
    assert mounts[-2] == {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}


def test_a_user_mount_replaces_the_standard_one_at_the_same_place() -> None:
    mounts = config(mounts=(Mount("/dev/shm", "/srv/shm", options=("bind", "shared")),))["mounts"]
    shm = [m for m in mounts if m["destination"] == "/dev/shm"]
    assert shm == [
        {"destination": "/dev/shm", "type": "bind", "source": "/srv/shm", "options": ["bind", "shared"]}]


def test_a_user_dev_replaces_every_standard_mount_under_dev() -> None:
    dests = [m["destination"] for m in config(mounts=(Mount("/dev", "/srv/dev"),))["mounts"]]
    assert dests == ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]


def test_requested_devices_are_created_and_allowed() -> None:
    cfg = config(devices=(Device("/dev/fuse", "c", 10, 229),))
    assert cfg["linux"]["devices"] == [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}]
    rule = {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
    assert rule in cfg["linux"]["resources"]["devices"]


# -- seccomp choices and purity -------------------------------------------------------------------


def test_seccomp_unconfined_and_custom_profile() -> None:
    assert "seccomp" not in config(seccomp="unconfined")["linux"]
    custom = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}
    assert config(seccomp_profile=custom)["linux"]["seccomp"] == custom


def test_added_capabilities_lift_their_seccomp_rules() -> None:
    denied = {n for s in config(cap_add=("SYS_ADMIN",))["linux"]["seccomp"]["syscalls"] for n in s["names"]}
    assert "mount" not in denied and "unshare" not in denied
    assert "keyctl" in denied


def test_same_input_same_output_and_input_untouched() -> None:
    r = req(mounts=(Mount("/data", "/srv/data"),), sysctls={"b": "2", "a": "1"},
            rlimits=(Rlimit("nofile", 1, 2),))
    before = copy.deepcopy(r)
    first = oci_config(r, LIMITS)
    assert oci_config(r, LIMITS) == first
    assert list(first["linux"]["sysctl"]) == ["a", "b"]
    first["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    assert "CAP_SYS_ADMIN" not in first["process"]["capabilities"]["effective"]
    assert "CAP_SYS_ADMIN" not in oci_config(r, LIMITS)["process"]["capabilities"]["bounding"]
    assert r == before
