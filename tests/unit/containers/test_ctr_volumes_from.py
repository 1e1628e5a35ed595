"""``volumes_from``: the mounts a container takes from another (its volumes, anonymous ones by the
same name, and its binds; not its tmpfs), ``:ro`` forcing read-only, and clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stackd.drivers.containers.info import ContainerInfo
from stackd.drivers.containers.mounts import SharedMount, anonymous_volume_name, volume_uses
from stackd.drivers.containers.request import Identity, container_request
from stackd.drivers.containers.sharing import inherited_mounts, shared_mounts, sources
from stackd.drivers.images.config import ImageConfig
from stackd.drivers.runtime import ContainerRequest, Mount
from stackd.errors import PermanentDriverError
from stackd.spec.models import Stack
from tests.unit.containers.conftest import LoadStack, image, paths

IDENTITY = Identity("busybox:latest", "sha256:" + "a" * 64, "h" * 64)
DB_IMAGE = image(volumes=("/logs",))


def two(load_stack: LoadStack, tmp_path: Path, app: str) -> Stack:
    return load_stack(textwrap.dedent(f"""\
        services:
          db:
            image: busybox
            volumes:
              - data:/var/lib/data
              - /cache
              - {tmp_path}:/conf:ro
              - {{type: tmpfs, target: /scratch}}
          app:
            image: busybox
        """) + textwrap.indent(textwrap.dedent(app).strip(), "    ") + "\nvolumes:\n  data: {}\n")


def lent(stack: Stack, service: str = "db") -> tuple[SharedMount, ...]:
    """What the first container of ``service`` lends, as the host driver records it."""
    name = f"demo-{service}-1"
    svc = stack.services[service]
    uses = volume_uses(stack, svc, DB_IMAGE, name)
    return shared_mounts(svc, uses, paths(name))


def req(stack: Stack, shared_from: dict[str, tuple[SharedMount, ...] | None], *,
        img: ImageConfig | None = None) -> ContainerRequest:
    return container_request(stack, "app", 1, "demo-app-1", image=img or image(), paths=paths("demo-app-1"),
                             netns="/run/netns/x", identity=IDENTITY, shared_from=shared_from)


def mounts_at(request: ContainerRequest) -> dict[str, Mount]:
    return {m.destination: m for m in request.mounts}


def test_every_volume_and_bind_of_the_source_at_the_same_place_but_not_its_tmpfs(
        load_stack: LoadStack, tmp_path: Path) -> None:
    stack = two(load_stack, tmp_path, "volumes_from: [db]")
    got = mounts_at(req(stack, {"demo-db-1": lent(stack)}))
    cache, logs = (anonymous_volume_name("demo-db-1", t) for t in ("/cache", "/logs"))
    assert got["/var/lib/data"] == Mount("/var/lib/data", "/data/volumes/demo_data/_data", "bind", ("rbind",))
    assert got["/cache"].source == f"/data/volumes/{cache}/_data"  # the source's anonymous volume
    assert got["/logs"].source == f"/data/volumes/{logs}/_data"  # and its image VOLUME
    assert got["/conf"] == Mount("/conf", str(tmp_path), "bind", ("rbind", "ro"))  # keeps its own mode
    assert "/scratch" not in got


def test_ro_makes_every_mount_read_only_and_rw_keeps_each_mode(load_stack: LoadStack, tmp_path: Path) -> None:
    ro = two(load_stack, tmp_path, "volumes_from: ['db:ro']")
    got = mounts_at(req(ro, {"demo-db-1": lent(ro)}))
    assert all("ro" in got[t].options for t in ("/var/lib/data", "/cache", "/logs", "/conf"))
    rw = two(load_stack, tmp_path, "volumes_from: ['db:rw']")
    got = mounts_at(req(rw, {"demo-db-1": lent(rw)}))
    assert got["/var/lib/data"].options == ("rbind",) and got["/conf"].options == ("rbind", "ro")


def test_borrowed_volumes_are_not_the_containers_own(load_stack: LoadStack, tmp_path: Path) -> None:
    stack = two(load_stack, tmp_path, "volumes_from: [db]\nvolumes: ['/own', '/tmp/x:/cache']")
    inherited = inherited_mounts(stack, stack.services["app"], {"demo-db-1": lent(stack)})
    img = image(volumes=("/logs", "/img"))
    uses = volume_uses(stack, stack.services["app"], img, "demo-app-1", inherited)
    # its own anonymous volume and the image VOLUME nothing covers; /logs comes from db
    assert [u.target for u in uses] == ["/own", "/img"]
    got = mounts_at(req(stack, {"demo-db-1": lent(stack)}))
    assert got["/cache"].source == "/tmp/x"  # the service's own mount wins over the borrowed one
    # what app lends in turn: its own mounts and what it borrowed that they do not cover (chains)
    passed = shared_mounts(stack.services["app"], uses, paths("demo-app-1"), inherited)
    assert {m.target: m.source for m in passed}["/cache"] == "/tmp/x"
    assert {m.target for m in passed} == {"/var/lib/data", "/cache", "/logs", "/conf", "/own", "/img"}


def test_container_name_of_a_stackd_container(load_stack: LoadStack, tmp_path: Path) -> None:
    stack = two(load_stack, tmp_path, "volumes_from: ['container:other-box:ro']")
    found = [(s.container, s.read_only) for s in sources(stack, stack.services["app"])]
    assert found == [("other-box", True)]
    got = mounts_at(req(stack, {"other-box": lent(stack)}))
    assert got["/var/lib/data"].options == ("rbind", "ro")


def test_a_later_entry_wins_at_the_same_target(load_stack: LoadStack, tmp_path: Path) -> None:
    stack = two(load_stack, tmp_path, "volumes_from: [db, 'container:x']")
    other = (SharedMount("/cache", "/elsewhere"),)
    assert mounts_at(req(stack, {"demo-db-1": lent(stack), "x": other}))["/cache"].source == "/elsewhere"


@pytest.mark.parametrize(("app", "shared_from", "message"), [
    ("volumes_from: [db]", {}, "service app: volumes_from db: container demo-db-1 does not exist"),
    ("volumes_from: ['container:nope']", {}, "container nope does not exist on this host as a stackd"),
    ("volumes_from: [db]", {"demo-db-1": None}, "made by an older stackd .* recreate it"),
    ("volumes_from: ['db:rx']", {"demo-db-1": ()}, "mode 'rx' must be ro or rw"),
])
def test_errors_name_the_service_and_the_entry(load_stack: LoadStack, tmp_path: Path, app: str,
                                                shared_from: dict[str, tuple[SharedMount, ...] | None],
                                                message: str) -> None:
    stack = two(load_stack, tmp_path, app)
    with pytest.raises(PermanentDriverError, match=message):
        req(stack, shared_from)


def test_the_record_keeps_what_a_container_lends(load_stack: LoadStack, tmp_path: Path) -> None:
    stack = two(load_stack, tmp_path, "volumes_from: [db]")
    info = ContainerInfo(name="demo-db-1", project="demo", service="db", number=1, image="i", image_id="x",
                         cgroups_path="/c", hostname="h", shared_mounts=lent(stack))
    assert ContainerInfo.from_json(info.to_json()) == info
    old = ContainerInfo(name="a", project="demo", service="db", number=1, image="i", image_id="x",
                        cgroups_path="/c", hostname="h")
    assert ContainerInfo.from_json(old.to_json()).shared_mounts is None
