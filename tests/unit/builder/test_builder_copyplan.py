"""COPY/ADD destination rules (Docker's), on a context directory and an image made of layer
directories: where each entry lands, which parents are created, owners and modes."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from stackd.build.lexer import Heredoc
from stackd.drivers.builder.copyplan import CopyRequest, plan_copy
from stackd.drivers.builder.fsview import ContextFS, LayeredFS
from stackd.drivers.builder.layertar import CopyError, Entry, write_layer
from stackd.drivers.images.whiteouts import MemoryWhiteouts


@pytest.fixture
def context(tmp_path: Path) -> ContextFS:
    root = tmp_path / "ctx"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a.txt").write_text("a")
    (root / "dir" / "sub" / "b.txt").write_text("b")
    (root / "dir" / "skip.log").write_text("log")
    (root / "dir" / "link").symlink_to("a.txt")
    (root / "one.txt").write_text("1")
    (root / "two.txt").write_text("2")
    (root / "tool").write_text("#!/bin/sh\n")
    os.chmod(root / "tool", 0o755)
    os.chmod(root / "dir", 0o750)
    (root / "alias").symlink_to("one.txt")
    entries = [str(p.relative_to(root)) for p in root.rglob("*")]
    return ContextFS(root, entries)


@pytest.fixture
def image(tmp_path: Path) -> LayeredFS:
    layer = tmp_path / "layer"
    (layer / "usr" / "bin").mkdir(parents=True)
    (layer / "etc").mkdir()
    (layer / "bin").symlink_to("usr/bin")
    (layer / "etc" / "existing.conf").write_text("old")
    return LayeredFS([layer], MemoryWhiteouts())


def plan(context: ContextFS, image: LayeredFS, sources: tuple[str, ...], dest: str,
         **kw: object) -> dict[str, Entry]:
    req = CopyRequest(sources, dest, **kw)  # type: ignore[arg-type]
    return {e.path: e for e in plan_copy(req, context, image)}


def test_a_file_to_a_new_path_is_copied_to_that_name(context: ContextFS, image: LayeredFS) -> None:
    out = plan(context, image, ("one.txt",), "/opt/renamed")
    assert list(out) == ["opt", "opt/renamed"]
    assert out["opt"].kind == "dir" and out["opt"].mode == 0o755
    assert out["opt/renamed"].source == context.root / "one.txt"


def test_a_trailing_slash_or_an_existing_directory_keeps_the_name(context: ContextFS,
                                                                  image: LayeredFS) -> None:
    assert list(plan(context, image, ("one.txt",), "/opt/")) == ["opt", "opt/one.txt"]
    assert list(plan(context, image, ("one.txt",), "/etc")) == ["etc/one.txt"]


def test_a_directory_copies_its_contents(context: ContextFS, image: LayeredFS) -> None:
    out = plan(context, image, ("dir",), "/app")
    assert sorted(out) == ["app", "app/a.txt", "app/link", "app/skip.log", "app/sub", "app/sub/b.txt"]
    assert out["app"].mode == 0o750  # the new directory takes the source directory's mode
    assert out["app/link"].kind == "symlink" and out["app/link"].target == "a.txt"


def test_wildcards_matching_several_files_copy_into_a_directory(context: ContextFS, image: LayeredFS) -> None:
    assert sorted(plan(context, image, ("*.txt",), "/out")) == ["out", "out/one.txt", "out/two.txt"]
    assert sorted(plan(context, image, ("o*.txt",), "/out")) == ["out"]  # one match: the file is /out


def test_a_relative_destination_is_under_the_working_directory(context: ContextFS, image: LayeredFS) -> None:
    out = plan(context, image, ("one.txt",), "rel/", workdir="/srv")
    assert list(out) == ["srv", "srv/rel", "srv/rel/one.txt"]


def test_symlinks_in_the_image_are_followed_at_the_destination(context: ContextFS, image: LayeredFS) -> None:
    assert list(plan(context, image, ("tool",), "/bin/")) == ["usr/bin/tool"]
    assert list(plan(context, image, ("tool",), "/bin/renamed")) == ["usr/bin/renamed"]


def test_a_source_named_as_a_symlink_is_followed(context: ContextFS, image: LayeredFS) -> None:
    out = plan(context, image, ("alias",), "/x/")
    assert out["x/alias"].kind == "file" and out["x/alias"].source == context.root / "one.txt"


def test_several_sources_need_a_directory_destination(context: ContextFS, image: LayeredFS) -> None:
    with pytest.raises(CopyError, match="must be a directory"):
        plan(context, image, ("one.txt", "two.txt"), "/out")
    out = plan(context, image, ("one.txt", "two.txt"), "/out/")
    assert sorted(out) == ["out", "out/one.txt", "out/two.txt"]


def test_a_missing_source_is_an_error(context: ContextFS, image: LayeredFS) -> None:
    with pytest.raises(CopyError, match=r"'nope\.txt' not found"):
        plan(context, image, ("nope.txt",), "/x/")
    with pytest.raises(CopyError, match="matches nothing"):
        plan(context, image, ("*.md",), "/x/")


def test_exclude_and_parents(context: ContextFS, image: LayeredFS) -> None:
    assert "app/skip.log" not in plan(context, image, ("dir",), "/app", exclude=("**/*.log",))
    out = plan(context, image, ("dir/sub/b.txt", "one.txt"), "/p/", parents=True)
    assert sorted(out) == ["p", "p/dir", "p/dir/sub", "p/dir/sub/b.txt", "p/one.txt"]


def test_owner_applies_to_everything_made_chmod_only_to_what_is_copied(context: ContextFS,
                                                                      image: LayeredFS) -> None:
    out = plan(context, image, ("dir",), "/new/app", owner=(1000, 50), chmod="u=rwX,go=")
    assert {(e.uid, e.gid) for e in out.values()} == {(1000, 50)}
    assert out["new"].mode == 0o755
    assert (out["new/app"].mode, out["new/app/a.txt"].mode) == (0o700, 0o600)


def test_heredocs_become_files(context: ContextFS, image: LayeredFS) -> None:
    doc = Heredoc("motd", "hello\n")
    out = plan(context, image, (), "/etc/", heredocs=(doc,))
    assert out["etc/motd"].data == b"hello\n" and out["etc/motd"].mode == 0o644


def _tar_gz(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid = len(data), 7
            tf.addfile(info, io.BytesIO(data))


def test_add_unpacks_local_archives_into_the_destination(tmp_path: Path, image: LayeredFS) -> None:
    root = tmp_path / "actx"
    root.mkdir()
    _tar_gz(root / "site.tar.gz", {"index.html": b"<p>", "css/a.css": b"a{}"})
    (root / "fake.tar.gz").write_text("not an archive")
    ctx = ContextFS(root, ["site.tar.gz", "fake.tar.gz"])
    request = CopyRequest(("site.tar.gz", "fake.tar.gz"), "/www/", unpack_archives=True)
    entries = plan_copy(request, ctx, image)
    buf = io.BytesIO()
    write_layer(entries, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert sorted(members) == ["www", "www/css/a.css", "www/fake.tar.gz", "www/index.html"]
    assert members["www/index.html"].uid == 7  # an archive keeps its owners without --chown
    copied = plan_copy(CopyRequest(("site.tar.gz",), "/www/"), ctx, image)  # COPY never unpacks
    assert [e.path for e in copied] == ["www", "www/site.tar.gz"]


def test_an_archive_cannot_climb_out_of_its_destination(tmp_path: Path, image: LayeredFS) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    _tar_gz(root / "evil.tgz", {"../../etc/passwd": b"x"})
    entries = plan_copy(CopyRequest(("evil.tgz",), "/opt/", unpack_archives=True),
                        ContextFS(root, ["evil.tgz"]), image)
    with pytest.raises(CopyError, match="climbs out"):
        write_layer(entries, io.BytesIO())


def test_copy_dot_dot_copies_the_whole_context_into_the_working_directory(context: ContextFS,
                                                                          image: LayeredFS) -> None:
    out = plan(context, image, (".",), ".", workdir="/srv")
    assert {"srv", "srv/one.txt", "srv/dir/sub/b.txt", "srv/alias"} <= set(out)
    assert out["srv/alias"].kind == "symlink"  # below the named source, symlinks stay symlinks
