"""``container_request``: one container of a service, as the ``ContainerRequest`` the runtime
driver turns into config.json, with Docker's and Compose's semantics:

- environment: the image's ``Env``, then the service's ``environment`` (unset variables are
  left out), then ``HOME`` of the user when neither set it;
- program: ``entrypoint`` (service, else image) followed by ``command`` (service, else image);
  setting ``entrypoint`` in the service clears the image's ``Cmd``, as Docker does; with
  ``init: true`` the init binary (catatonit or tini, from the host) runs it as ``init -- args``;
- ``working_dir`` (service, else image, else ``/``), ``user`` (see ``users``), ``hostname``
  (the container name unless set), ``tty``;
- security: ``cap_add``/``cap_drop``, ``privileged``, ``read_only``, ``security_opt``
  (``no-new-privileges``, ``seccomp=unconfined``; AppArmor/SELinux switched off is accepted);
- limits (see ``resources``), ``ulimits``, ``sysctls``, ``shm_size``, ``oom_score_adj``;
- namespaces: the network namespace chosen by the host driver; ``pid``/``ipc``/``uts``/
  ``cgroup: host`` share the host's;
- mounts (see ``mounts``; ``volumes_from`` in ``sharing``), the cgroup
  ``/<root>/<project>/<group>/<name>``, and annotations with every ``stackd.labels`` key
  (project, service, number, config hash and parts, group, image), Compose's own keys, the
  service's ``labels`` and ``annotations``, and the stop signal
  (``org.opencontainers.image.stopSignal``).

Pure: everything it needs is passed in (the image's /etc files as text, host paths as data).
A request the service cannot make is a ``PermanentDriverError`` naming the service.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stackd import labels
from stackd.drivers.containers.mounts import (
    INIT_PATH,
    FileUse,
    SharedMount,
    VolumeUse,
    file_uses,
    service_mounts,
    volume_uses,
)
from stackd.drivers.containers.paths import ContainerPaths
from stackd.drivers.containers.resources import service_resources, service_rlimits, shm_size
from stackd.drivers.containers.sharing import inherited_mounts
from stackd.drivers.containers.users import EtcFiles, home_of, resolve
from stackd.drivers.images.config import ImageConfig
from stackd.drivers.runtime.request import (
    HOST,
    PRIVATE,
    SECCOMP_DEFAULT,
    SECCOMP_UNCONFINED,
    ContainerRequest,
    Device,
    Namespaces,
)
from stackd.errors import PermanentDriverError
from stackd.spec.models import Service, Stack

STOP_SIGNAL_ANNOTATION = "org.opencontainers.image.stopSignal"
DEFAULT_STOP_SIGNAL = "SIGTERM"
_NO_LSM = (("apparmor", "unconfined"), ("label", "disable"))


@dataclass(frozen=True)
class Identity:
    """What the container is, for its annotations: the image it was made from and the config
    hash (and per-key parts) the planner recorded."""

    image: str
    image_id: str
    config_hash: str
    config_parts: Mapping[str, str] = field(default_factory=dict)


def program(svc: Service, image: ImageConfig, *, init: bool = False) -> tuple[str, ...]:
    """The container's argv (see the module docstring)."""
    entrypoint = svc.entrypoint if svc.entrypoint is not None else list(image.entrypoint or ())
    if svc.command is not None:
        command = svc.command
    elif svc.entrypoint is not None:
        command = []
    else:
        command = list(image.cmd or ())
    args = (*entrypoint, *command)
    if not args:
        raise PermanentDriverError(f"service {svc.name}: no command to run (the image sets no Entrypoint "
                                   "or Cmd; set `command` or `entrypoint`)")
    return (INIT_PATH, "--", *args) if init else args


def environment(svc: Service, image: ImageConfig, home: str) -> tuple[str, ...]:
    """``NAME=value`` entries: the image's, overridden by the service's, then ``HOME``."""
    merged: dict[str, str] = {}
    for item in image.env:
        merged[item.split("=", 1)[0]] = item
    for name, value in svc.environment.items():
        if value is not None:
            merged[name] = f"{name}={value}"
    merged.setdefault("HOME", f"HOME={home}")
    return tuple(merged.values())


def security(svc: Service) -> tuple[bool, str]:
    """(``no_new_privileges``, seccomp mode) from ``security_opt``."""
    no_new_privileges = False
    seccomp = SECCOMP_DEFAULT
    for opt in svc.security_opt:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        key, value = key.strip(), value.strip()
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise PermanentDriverError(
                    f"service {svc.name}: security_opt {opt!r}: expected true or false")
            no_new_privileges = value != "false"
        elif key == "seccomp" and value == "unconfined":
            seccomp = SECCOMP_UNCONFINED
        elif (key, value) in _NO_LSM or (key == "label" and not sep):
            continue  # no LSM profile is applied on this host: asking for none is what it gets
        else:
            raise PermanentDriverError(f"service {svc.name}: security_opt {opt!r} is not supported "
                                       "(supported: no-new-privileges, seccomp=unconfined)")
    return no_new_privileges, seccomp


def _share(svc: Service, key: str) -> str:
    value = getattr(svc, key)
    if value in (None, "", "private", "shareable"):
        return PRIVATE
    if value == "host":
        return HOST
    raise PermanentDriverError(f"service {svc.name}: {key}: {value!r} is not supported (use host or private)")


def namespaces(svc: Service, netns: str) -> Namespaces:
    """The container's namespaces; ``netns`` is ``host`` or the path of the one to join."""
    cgroup = HOST if svc.cgroup == "host" else PRIVATE
    return Namespaces(pid=_share(svc, "pid"), ipc=_share(svc, "ipc"), uts=_share(svc, "uts"), net=netns,
                      cgroup=cgroup)


def stop_signal(svc: Service, image: ImageConfig) -> tuple[str, bool]:
    """The signal that stops the container (service, else image, else SIGTERM) and whether the
    service set it."""
    if svc.stop_signal:
        return svc.stop_signal, True
    return image.stop_signal or DEFAULT_STOP_SIGNAL, False


def container_annotations(stack: Stack, svc: Service, number: int, identity: Identity) -> dict[str, str]:
    out: dict[str, str] = {k: v for k, v in svc.labels.items() if v is not None}
    out.update({k: v for k, v in svc.annotations.items() if v is not None})
    out.update({
        labels.PROJECT: stack.name, labels.SERVICE: svc.name, labels.NUMBER: str(number),
        labels.CONFIG_HASH: identity.config_hash,
        labels.CONFIG_PARTS: json.dumps(dict(identity.config_parts), sort_keys=True, separators=(",", ":")),
        labels.GROUP: svc.group, labels.IMAGE: identity.image, labels.IMAGE_ID: identity.image_id,
        labels.COMPOSE_PROJECT: stack.name, labels.COMPOSE_SERVICE: svc.name,
        labels.COMPOSE_NUMBER: str(number),
    })
    return out


def container_request(stack: Stack, service: str, number: int, name: str, *, image: ImageConfig,
                      paths: ContainerPaths, netns: str, identity: Identity, etc: EtcFiles | None = None,
                      net_files: ContainerPaths | None = None, init_binary: str | None = None,
                      devices: Sequence[Device] = (), uses: Sequence[VolumeUse] | None = None,
                      files: Sequence[FileUse] | None = None,
                      shared_from: Mapping[str, Sequence[SharedMount] | None] | None = None
                      ) -> ContainerRequest:
    """The request for container ``name`` (number ``number``) of ``service``.

    ``netns`` is ``host`` or the path of the network namespace to join; ``net_files`` are the
    paths whose hosts and resolv.conf it mounts (its own by default); ``init_binary`` the host
    path of the init to mount when the service sets ``init: true``; ``devices`` the resolved
    device nodes of ``devices:``; ``uses``/``files`` the volumes and secret/config copies
    (computed from the stack when not given); ``shared_from`` what each container the service
    names in ``volumes_from`` lends (see ``sharing.inherited_mounts``)."""
    svc = stack.services[service]
    etc = etc or EtcFiles()
    if svc.init and init_binary is None:
        raise PermanentDriverError(f"service {service}: `init: true` needs catatonit or tini on the host "
                                   "(apt-get install catatonit)")
    user = resolve(service, svc.user or image.user, etc, tuple(svc.group_add))
    no_new_privileges, seccomp = security(svc)
    signal, _ = stop_signal(svc, image)
    inherited = inherited_mounts(stack, svc, shared_from or {})
    volumes = volume_uses(stack, svc, image, name, inherited) if uses is None else uses
    copies = file_uses(svc) if files is None else files
    mounts = service_mounts(svc, volumes, copies, paths, net_files=net_files or paths,
                            init_binary=init_binary if svc.init else None, inherited=inherited)
    cwd = svc.working_dir or image.working_dir or "/"
    notes = container_annotations(stack, svc, number, identity)
    notes[STOP_SIGNAL_ANNOTATION] = signal
    try:
        return ContainerRequest(
            rootfs=str(paths.rootfs),
            args=program(svc, image, init=bool(svc.init)),
            env=environment(svc, image, home_of(user.uid, etc)),
            cwd=posixpath.normpath(cwd if cwd.startswith("/") else f"/{cwd}"),
            user=user,
            hostname=svc.hostname or name,
            domainname=svc.domainname or "",
            terminal=bool(svc.tty),
            readonly_rootfs=bool(svc.read_only),
            mounts=mounts,
            devices=tuple(devices),
            namespaces=namespaces(svc, netns),
            cgroups_path=paths.cgroups_path(stack.name, svc.group),
            resources=service_resources(svc),
            cap_add=tuple(svc.cap_add),
            cap_drop=tuple(svc.cap_drop),
            privileged=bool(svc.privileged),
            no_new_privileges=no_new_privileges,
            sysctls={k: v for k, v in svc.sysctls.items() if v is not None},
            rlimits=service_rlimits(svc),
            shm_size=shm_size(svc),
            oom_score_adj=svc.oom_score_adj,
            annotations=notes,
            seccomp=seccomp,
        )
    except ValueError as exc:
        raise PermanentDriverError(f"service {service}: {exc}") from exc


def device_specs(svc: Service) -> list[tuple[str, str, str]]:
    """``devices:`` as (host path, container path, permissions) triples."""
    out = []
    for item in svc.devices:
        if isinstance(item, str):
            parts = item.split(":")
            host = parts[0]
            target = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
            perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
        else:
            host, target, perms = item.source, item.target or item.source, item.permissions or "rwm"
        if not host.startswith("/") or not target.startswith("/"):
            raise PermanentDriverError(f"service {svc.name}: device {item!r}: paths must be absolute")
        out.append((host, target, perms))
    return out


__all__ = [
    "DEFAULT_STOP_SIGNAL", "STOP_SIGNAL_ANNOTATION", "EtcFiles", "Identity", "container_annotations",
    "container_request", "device_specs", "environment", "namespaces", "program",
    "security", "stop_signal",
]
