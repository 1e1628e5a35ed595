"""Cache keys: an unchanged context hits every step, a changed file invalidates from the first COPY
that selects it on, and what should not matter (mtimes, comments, spacing) does not."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from textwrap import dedent

import pytest

from stackd.build.cache import content_digest, load_context, select_sources, stage_keys, step_key
from stackd.build.dockerfile import parse_dockerfile
from stackd.build.resolve import resolve
from stackd.errors import SpecError

DOCKERFILE = """
    FROM debian:bookworm AS build
    ARG VERSION=1
    WORKDIR /src
    COPY requirements.txt ./
    RUN pip install -r requirements.txt
    COPY app/ ./app/
    RUN make VERSION=$VERSION
    FROM debian:bookworm-slim
    COPY --from=build /src/out /app
    CMD ["/app/run"]
"""
IMAGES = {"debian:bookworm": "sha256:" + "1" * 64, "debian:bookworm-slim": "sha256:" + "2" * 64}


def keys(context: Path, text: str = DOCKERFILE, args: Mapping[str, str] | None = None,
         ignore: tuple[str, ...] = (), images: Mapping[str, str] = IMAGES) -> dict[int, tuple[str, ...]]:
    plan = resolve(parse_dockerfile(dedent(text).lstrip("\n")), build_args=args, platform="linux/amd64")
    return stage_keys(plan, load_context(context, ignore), images)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "requirements.txt").write_text("flask\n")
    (tmp_path / "app" / "main.py").write_text("print('hi')\n")
    (tmp_path / "app" / "util.py").write_text("X = 1\n")
    (tmp_path / "README.md").write_text("docs\n")
    return tmp_path


def first_difference(a: tuple[str, ...], b: tuple[str, ...]) -> int | None:
    assert len(a) == len(b)
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None)


def test_one_key_per_step_plus_the_base(context: Path) -> None:
    k = keys(context)
    assert [len(v) for v in k.values()] == [7, 3]
    assert len({key for v in k.values() for key in v}) == 10


def test_unchanged_context_gives_the_same_keys(context: Path) -> None:
    assert keys(context) == keys(context)


def test_mtime_alone_changes_nothing(context: Path) -> None:
    before = keys(context)
    os.utime(context / "app" / "main.py", (1_000_000, 1_000_000))
    os.utime(context / "requirements.txt", (2_000_000, 2_000_000))
    assert keys(context) == before


def test_changed_file_invalidates_from_the_copy_that_selects_it(context: Path) -> None:
    before = keys(context)
    (context / "app" / "util.py").write_text("X = 2\n")
    after = keys(context)
    # keys: FROM, ARG, WORKDIR, COPY requirements, RUN, COPY app/ <- the first to change
    assert first_difference(before[0], after[0]) == 5
    assert first_difference(before[1], after[1]) == 1  # COPY --from=build reads the changed stage

    (context / "requirements.txt").write_text("flask\nrequests\n")
    assert first_difference(after[0], keys(context)[0]) == 3


def test_mode_change_and_new_file_count(context: Path) -> None:
    before = keys(context)
    os.chmod(context / "app" / "main.py", 0o755)
    after_chmod = keys(context)
    assert first_difference(before[0], after_chmod[0]) == 5
    (context / "app" / "new.py").write_text("")
    assert first_difference(after_chmod[0], keys(context)[0]) == 5


def test_files_no_copy_selects_do_not_count(context: Path) -> None:
    before = keys(context)
    (context / "README.md").write_text("changed docs\n")
    assert keys(context) == before


def test_ignored_files_do_not_count(context: Path) -> None:
    before = keys(context, ignore=("**/*.pyc",))
    (context / "app" / "main.pyc").write_bytes(b"\x00")
    assert keys(context, ignore=("**/*.pyc",)) == before


def test_comments_and_spacing_do_not_count_but_substituted_values_do(context: Path) -> None:
    spaced = DOCKERFILE.replace("WORKDIR /src", "# where the code goes\n    WORKDIR   /src")
    assert keys(context, spaced) == keys(context)
    moved = DOCKERFILE.replace("WORKDIR /src", "WORKDIR /code")
    assert first_difference(keys(context)[0], keys(context, moved)[0]) == 2


def test_a_changed_build_arg_invalidates_from_its_first_use(context: Path) -> None:
    before = keys(context)
    after = keys(context, args={"VERSION": "2"})
    # the first RUN after the ARG (a RUN sees every ARG in scope), not the ARG step itself
    assert first_difference(before[0], after[0]) == 4


def test_another_base_image_invalidates_everything(context: Path) -> None:
    other = {**IMAGES, "debian:bookworm": "sha256:" + "3" * 64}
    assert first_difference(keys(context)[0], keys(context, images=other)[0]) == 0


def test_missing_sources_and_image_ids(context: Path) -> None:
    with pytest.raises(SpecError, match=r"COPY: 'nope\.txt' not found in the build context"):
        keys(context, "FROM scratch\nCOPY nope.txt /\n")
    with pytest.raises(LookupError, match="no image id was given for 'debian:bookworm'"):
        keys(context, images={})


def test_select_sources() -> None:
    entries = ["a.txt", "app", "app/x.py", "app/sub", "app/sub/y.py", "b.txt", "bin", "bin/tool"]
    assert select_sources(entries, ["app"]) == ("app", "app/sub", "app/sub/y.py", "app/x.py")
    assert select_sources(entries, ["/app/sub/"]) == ("app/sub", "app/sub/y.py")
    assert select_sources(entries, ["*.txt"]) == ("a.txt", "b.txt")
    assert select_sources(entries, ["app/*.py"]) == ("app/x.py",)
    assert select_sources(entries, ["b?n"]) == ("bin", "bin/tool")
    assert select_sources(entries, ["."]) == tuple(sorted(entries))
    assert select_sources(entries, ["../../a.txt"]) == ("a.txt",)
    assert select_sources(entries, ["app"], exclude=["**/sub"]) == ("app", "app/x.py")
    assert select_sources(entries, ["https://example.org/x.tgz"]) == ()
    with pytest.raises(ValueError, match=r"'\*\.md' not found"):
        select_sources(entries, ["a.txt", "*.md"])


def test_content_digest_covers_symlink_targets_and_ignores_order(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    os.symlink("f", tmp_path / "l")
    first = content_digest(tmp_path, ["f", "l"])
    assert content_digest(tmp_path, ["l", "f"]) == first
    (tmp_path / "l").unlink()
    os.symlink("g", tmp_path / "l")
    assert content_digest(tmp_path, ["f", "l"]) != first


def test_step_key_depends_on_every_part() -> None:
    base = step_key("p", "t", "c", ["r"])
    assert len({base, step_key("q", "t", "c", ["r"]), step_key("p", "u", "c", ["r"]),
                step_key("p", "t", "d", ["r"]), step_key("p", "t", "c", ["s"])}) == 5
