""".dockerignore reading and matching, checked against the examples of Docker's documentation,
and the build context those patterns select."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackd.build.ignore import IgnoreMatcher, context_files, parse_dockerignore, read_dockerignore
from stackd.errors import Pos, SpecError


def excluded(patterns: str, path: str) -> bool:
    return IgnoreMatcher(parse_dockerignore(patterns)).excluded(path)


DOC_EXAMPLE = """\
# comment
*/temp*
*/*/temp*
temp?
"""


@pytest.mark.parametrize(("path", "expected"), [
    ("somedir/temporary.txt", True),    # */temp*: names starting with temp one level down
    ("somedir/temp", True),
    ("somedir/temp/inside.txt", True),  # ... and what is inside such a directory
    ("temporary.txt", False),           # not in the root
    ("somedir/subdir/temporary.txt", True),  # */*/temp*: two levels down
    ("a/b/c/temporary.txt", False),     # but not three
    ("tempa", True),                    # temp?: one more character, root only
    ("tempb", True),
    ("tempab", False),
    ("tempa/inside.txt", True),
])
def test_documented_example(path: str, expected: bool) -> None:
    assert excluded(DOC_EXAMPLE, path) is expected


def test_comment_lines_are_ignored() -> None:
    assert parse_dockerignore(DOC_EXAMPLE) == ("*/temp*", "*/*/temp*", "temp?")


def test_double_star_matches_any_number_of_directories() -> None:
    assert excluded("**/*.go", "main.go")
    assert excluded("**/*.go", "cmd/tool/main.go")
    assert not excluded("**/*.go", "main.go.txt")
    assert excluded("a/**/b", "a/b") and excluded("a/**/b", "a/x/y/b")
    assert not excluded("a/**/b", "c/a/b")
    assert excluded("dir/**", "dir/x/y") and not excluded("dir/**", "dirx")
    assert excluded("**", "anything/at/all")
    assert excluded("**/.git", ".git/HEAD") and excluded("**/.git", "sub/.git/config")


def test_exceptions_in_order() -> None:
    only_readme = "*.md\n!README.md\n"
    assert excluded(only_readme, "CHANGES.md") and not excluded(only_readme, "README.md")
    assert not excluded(only_readme, "docs/guide.md")  # *.md is anchored at the root

    no_secret = "*.md\n!README*.md\nREADME-secret.md\n"
    assert excluded(no_secret, "CHANGES.md") and excluded(no_secret, "README-secret.md")
    assert not excluded(no_secret, "README-public.md")

    all_readmes = "*.md\nREADME-secret.md\n!README*.md\n"
    assert not excluded(all_readmes, "README-secret.md") and excluded(all_readmes, "notes.md")


def test_patterns_are_cleaned() -> None:
    assert parse_dockerignore("/foo/bar/\n./baz\n a//b \n!/keep\nx/../y\n/\n") == (
        "foo/bar", "baz", "a/b", "!keep", "y", "/")
    assert excluded("/foo/bar/", "foo/bar/x") and excluded("./baz", "baz")


def test_parent_directory_match_excludes_children() -> None:
    assert excluded("node_modules", "node_modules/left-pad/index.js")
    assert not excluded("node_modules", "app/node_modules/x")
    assert not excluded("node_modules\n!node_modules/keep", "node_modules/keep/file")


def test_character_classes_and_escapes() -> None:
    assert excluded("file[0-9].txt", "file7.txt") and not excluded("file[0-9].txt", "filex.txt")
    assert excluded("a\\*b", "a*b") and not excluded("a\\*b", "axb")
    assert excluded("a(b)+c.txt", "a(b)+c.txt") and not excluded("a.c", "abc")


def test_docker_suffix_rule_for_leading_double_star() -> None:
    assert excluded("**.log", "app.log") and excluded("**.log", "logs/x/app.log")


def test_bad_patterns_name_their_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_dockerignore("ok\nfile[0-9.txt\n!\ntrail\\\n", ".dockerignore")
    assert [(p.pos, p.message.split(":")[0]) for p in info.value.problems] == [
        (Pos(".dockerignore", 2, 1), "bad pattern 'file[0-9.txt'"),
        (Pos(".dockerignore", 3, 1), 'illegal exclusion pattern'),
        (Pos(".dockerignore", 4, 1), "bad pattern 'trail\\\\'"),
    ]


def make_tree(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def test_context_files(tmp_path: Path) -> None:
    make_tree(tmp_path, {
        "Dockerfile": "FROM scratch\n", "app/main.py": "", "app/__pycache__/main.pyc": "",
        "node_modules/a/index.js": "", "node_modules/keep/x.js": "", "docs/README.md": "",
        "secret.env": "", "tmp/.keep": "",
    })
    (tmp_path / "empty").mkdir()
    os.symlink("app/main.py", tmp_path / "link")
    os.symlink("/etc", tmp_path / "etc-link")
    patterns = ["**/__pycache__", "node_modules", "!node_modules/keep", "*.env", "tmp/*"]
    assert context_files(tmp_path, patterns) == [
        "Dockerfile", "app", "app/main.py", "docs", "docs/README.md", "empty", "etc-link", "link",
        "node_modules", "node_modules/keep", "node_modules/keep/x.js", "tmp",
    ]
    assert "app/__pycache__/main.pyc" in context_files(tmp_path, [])


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is not a directory"):
        context_files(tmp_path / "nope", [])


def test_read_dockerignore_prefers_the_dockerfile_specific_one(tmp_path: Path) -> None:
    assert read_dockerignore(tmp_path) == ()
    (tmp_path / ".dockerignore").write_text("*.log\n")
    assert read_dockerignore(tmp_path) == ("*.log",)
    (tmp_path / "build").mkdir()
    dockerfile = tmp_path / "build" / "app.Dockerfile"
    assert read_dockerignore(tmp_path, dockerfile) == ("*.log",)
    (tmp_path / "build" / "app.Dockerfile.dockerignore").write_text("*.tmp\n")
    assert read_dockerignore(tmp_path, dockerfile) == ("*.tmp",)
