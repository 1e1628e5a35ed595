"""``.env`` parsing beyond the corpus: error positions, several mistakes at once, files, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackd.errors import Pos, SpecError
from stackd.spec.dotenv import parse_dotenv, read_dotenv, read_dotenv_files


def _problems(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(SpecError) as info:
        parse_dotenv(text, file="app.env")
    out: list[tuple[int, int, str]] = []
    for p in info.value.problems:
        assert p.pos is not None and p.pos.file == "app.env"
        out.append((p.pos.line, p.pos.column, p.message))
    return out


def test_basic_forms_in_one_file() -> None:
    text = (
        "# a comment\n"
        "\n"
        "PLAIN=value with spaces   \n"
        "export EXPORTED=1\n"
        "YAML: style\n"
        "EMPTY=\n"
        "SINGLE='no $PLAIN here'\n"
        'DOUBLE="tab\\there $PLAIN"\n'
        "   INDENTED = x # trailing comment\n"
        "HASH=a#b\n"
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value with spaces",
        "EXPORTED": "1",
        "YAML": "style",
        "EMPTY": "",
        "SINGLE": "no $PLAIN here",
        "DOUBLE": "tab\there value with spaces",
        "INDENTED": "x",
        "HASH": "a#b",
    }


def test_later_definition_wins_and_order_is_kept() -> None:
    result = parse_dotenv("B=1\nA=2\nB=3\n")
    assert result == {"B": "3", "A": "2"}
    assert list(result) == ["B", "A"]


def test_multi_line_quoted_values_and_crlf() -> None:
    text = 'A="one\r\ntwo"\r\nB=plain\r\nC\r\n'
    result = parse_dotenv(text, lookup={"C": "from env"}.get)
    assert result == {"A": "one\r\ntwo", "B": "plain", "C": "from env"}


def test_bare_name_without_final_newline_is_inherited() -> None:
    assert parse_dotenv("A=1\nHOME", lookup={"HOME": "/root"}.get) == {"A": "1", "HOME": "/root"}
    assert parse_dotenv("A=1\nHOME") == {"A": "1"}


def test_bare_name_keeps_an_earlier_value_when_the_lookup_has_none() -> None:
    assert parse_dotenv("A=1\nA\n") == {"A": "1"}
    assert parse_dotenv("A=1\nA\n", lookup={"A": "2"}.get) == {"A": "2"}


def test_lookup_wins_over_earlier_keys_inside_values_but_not_for_the_keys_themselves() -> None:
    result = parse_dotenv("A=file\nB=${A}\nC='${A}'\n", lookup={"A": "os"}.get)
    assert result == {"A": "file", "B": "os", "C": "${A}"}


def test_escaped_dollar_and_double_dollar_are_literal() -> None:
    text = 'A="\\$HOME"\nB=$$HOME\nC="$$HOME"\n'
    assert parse_dotenv(text, lookup={"HOME": "/root"}.get) == {"A": "$HOME", "B": "$HOME", "C": "$HOME"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("\\0101", "A"),
    ("\\0", "\\"),
    ("\\01", "\\1"),
    ("\\0777", "\\777"),
    ("\\0189", "\\189"),
    ("\\c", "\\c"),
    ("\\'", "\\'"),
    ("a\\\\b", "a\\b"),
])
def test_double_quote_escapes(raw: str, expected: str) -> None:
    assert parse_dotenv(f'K="{raw}"') == {"K": expected}


def test_single_quotes_only_unescape_the_quote() -> None:
    assert parse_dotenv("K='a\\'b\\nc'") == {"K": "a'b\\nc"}


def test_statements_can_follow_a_closing_quote() -> None:
    assert parse_dotenv('A="x" B=y\n') == {"A": "x", "B": "y"}


def test_utf8_bom_is_skipped() -> None:
    assert parse_dotenv("\ufeffA=1\n") == {"A": "1"}


def test_errors_name_line_and_column() -> None:
    assert _problems("A=1\n  B C=2\n") == [(2, 3, "key cannot contain a space")]
    assert _problems("A=1\nBAD$KEY=1\n") == [(2, 4, 'unexpected character "$" in variable name "BAD$KEY=1"')]
    assert _problems("A=1\nB='open\n\n") == [(2, 3, "unterminated quoted value 'open")]


def test_all_bad_lines_are_reported_at_once() -> None:
    text = "ONE TWO\nGOOD=1\nb@d=2\nV=${\nR=${NOPE:?needed}\nLAST='x\n"
    problems = _problems(text)
    assert [(line, col) for line, col, _ in problems] == [(1, 1), (3, 2), (4, 3), (5, 3), (6, 6)]
    assert problems[2][2].startswith("invalid interpolation format")
    assert problems[3][2] == "required variable NOPE is missing a value: needed"


def test_read_dotenv_uses_the_display_name(tmp_path: Path) -> None:
    path = tmp_path / "x.env"
    path.write_text("A=1\nB C\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        read_dotenv(str(path), display="config/x.env")
    assert info.value.problems[0].pos == Pos("config/x.env", 2, 1)


def test_read_dotenv_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"env file nothere\.env not found"):
        read_dotenv(str(tmp_path / "nothere.env"), display="nothere.env")
    with pytest.raises(SpecError, match="is a directory"):
        read_dotenv(str(tmp_path))


def test_read_dotenv_rejects_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.env"
    path.write_bytes(b"A=\xff\n")
    with pytest.raises(SpecError, match="not valid UTF-8"):
        read_dotenv(str(path))


def test_read_dotenv_keeps_carriage_returns_inside_quotes(tmp_path: Path) -> None:
    path = tmp_path / "crlf.env"
    path.write_bytes(b'A="1\r\n2"\r\nB=3\r\n')
    assert read_dotenv(str(path)) == {"A": "1\r\n2", "B": "3"}


def test_read_dotenv_files_precedence(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("HOST=a\nURL=http://${HOST}\nONLY_A=1\nPASS\n", encoding="utf-8")
    (tmp_path / "b.env").write_text("FROM_A=${ONLY_A}\nHOST=b\nURL=http://${HOST}\nONLY_A\n",
                                    encoding="utf-8")
    paths = [str(tmp_path / "a.env"), str(tmp_path / "b.env")]
    assert read_dotenv_files(paths) == {"HOST": "b", "URL": "http://b", "ONLY_A": "1", "FROM_A": "1"}
    env = {"HOST": "os", "PASS": "secret"}
    assert read_dotenv_files(paths, env.get) == {
        "HOST": "b", "URL": "http://os", "ONLY_A": "1", "PASS": "secret", "FROM_A": "1"}


def test_read_dotenv_files_stops_at_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("A=1\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not found"):
        read_dotenv_files([str(tmp_path / "a.env"), str(tmp_path / "b.env")])
