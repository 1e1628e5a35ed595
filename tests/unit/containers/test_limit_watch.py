"""``LimitWatch`` over real inotify, on plain directories standing in for cgroup directories: a
write to a limit file marks its container written until its own project asks; writes to
``cgroup.procs`` or ``tasks`` do not count; a removed directory counts (its watch went); one
project's pass never takes another's writes; forgotten containers are not watched any more."""

from __future__ import annotations

from pathlib import Path

from stackd.drivers.containers.drift import LimitWatch


def test_writes_stay_pending_for_their_own_project(tmp_path: Path) -> None:
    dirs = {name: tmp_path / name for name in ("a-web-1", "a-db-1", "b-web-1")}
    for d in dirs.values():
        d.mkdir()
    watch = LimitWatch()
    try:
        for name, d in dirs.items():
            watch.watch(name, [d])
        assert all(watch.watched(n) for n in dirs)
        (dirs["a-web-1"] / "cgroup.procs").write_text("1")  # a process joined: not a limit
        (dirs["a-db-1"] / "tasks").write_text("1")
        assert watch.written({"a-web-1", "a-db-1"}) == set()
        (dirs["b-web-1"] / "pids.max").write_text("77")
        (dirs["a-db-1"] / "memory.limit_in_bytes").write_text("1")
        assert watch.collect() == {"b-web-1", "a-db-1"}
        assert watch.written({"a-web-1", "a-db-1"}) == {"a-db-1"}  # project a's pass
        assert watch.written({"a-web-1", "a-db-1"}) == set()
        assert watch.written({"b-web-1"}) == {"b-web-1"}  # still there for project b's pass
        (dirs["a-web-1"] / "cgroup.procs").unlink()
        dirs["a-web-1"].rmdir()  # the container stopped: its cgroup went
        assert watch.written({"a-web-1"}) == {"a-web-1"} and not watch.watched("a-web-1")
        watch.forget({"b-web-1"})
        (dirs["b-web-1"] / "pids.max").write_text("78")
        assert not watch.watched("b-web-1") and watch.written({"b-web-1"}) == set()
    finally:
        watch.close()


def test_a_write_that_a_pass_read_first_is_still_told_to_the_host_watch(tmp_path: Path) -> None:
    """A pass (or a stamp) that reads the queue takes the host watch's events away: what it
    found is announced on the watch's descriptor, so the written container's project is woken
    at once, not at the next resync."""
    import select

    dirs = {name: tmp_path / name for name in ("a-web-1", "b-web-1")}
    for d in dirs.values():
        d.mkdir()
    watch = LimitWatch()
    fd = watch.fileno()
    assert fd is not None

    def readable() -> bool:
        return bool(select.select([fd], [], [], 0)[0])

    try:
        for name, d in dirs.items():
            watch.watch(name, [d])
        assert not readable()
        (dirs["a-web-1"] / "pids.max").write_text("77")
        assert readable()
        assert watch.written({"b-web-1"}) == set()  # project b's pass read the queue first
        assert readable()  # still told
        assert watch.collect() == {"a-web-1"}
        assert not readable()
        assert watch.pending({"a-web-1"}) and watch.written({"a-web-1"}) == {"a-web-1"}
        assert watch.collect() == set() and not readable()
    finally:
        watch.close()
