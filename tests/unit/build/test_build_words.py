"""Word splitting and ``$VAR`` substitution as Docker does them in Dockerfile instructions."""

from __future__ import annotations

import pytest

from stackd.build.words import WordError, expand, split_words

ENV = {"NAME": "web", "EMPTY": "", "SPACED": "a b"}


def test_split_keeps_quoted_whitespace_and_the_quotes() -> None:
    words = split_words('A="two words" B=\'x y\' C=a\\ b  D')
    assert [w.text for w in words] == ['A="two words"', "B='x y'", "C=a\\ b", "D"]
    assert (words[0].start, words[0].end) == (0, 13)


def test_split_with_backtick_escape() -> None:
    assert [w.text for w in split_words("a` b c", "`")] == ["a` b", "c"]


@pytest.mark.parametrize(("word", "expected"), [
    ("$NAME", "web"),
    ("${NAME}", "web"),
    ("pre-${NAME}-post", "pre-web-post"),
    ("$NAME.conf", "web.conf"),
    ("$UNSET", ""),
    ("${UNSET:-fallback}", "fallback"),
    ("${EMPTY:-fallback}", "fallback"),
    ("${EMPTY-fallback}", ""),
    ("${UNSET-fallback}", "fallback"),
    ("${NAME:-fallback}", "web"),
    ("${NAME:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET:+alt}", ""),
    ("${UNSET:-${NAME}}", "web"),
    ("${UNSET:-a b}", "a b"),
    ("\\$NAME", "$NAME"),
    ("'$NAME'", "$NAME"),
    ('"$NAME"', "web"),
    ('"a \\" b"', 'a " b'),
    ('"a \\n b"', "a \\n b"),
    ("a\\ b", "a b"),
    ("$", "$"),
    ("cost: $5", "cost: "),
    ("100%", "100%"),
    ("$SPACED", "a b"),
])
def test_expand(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_expand_with_backtick_escape_keeps_backslashes() -> None:
    assert expand("C:\\dir\\$NAME", ENV, "`") == "C:\\dir\\web"
    assert expand("`$NAME", ENV, "`") == "$NAME"


def test_heredoc_bodies_keep_quotes() -> None:
    assert expand("echo '$NAME' \"$NAME\"", ENV, quotes=False) == "echo 'web' \"web\""


@pytest.mark.parametrize(("word", "message"), [
    ("'open", "single-quote"),
    ('"open', "double-quote"),
    ("${NAME", "matching }"),
    ("${}", "bad substitution"),
    ("${NAME/x/y}", "unsupported modifier (/)"),
    ("${UNSET:?must be set}", "UNSET: must be set"),
    ("${EMPTY:?}", "EMPTY: is empty"),
])
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(WordError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(word, ENV)


def test_question_modifier_without_colon_accepts_empty() -> None:
    assert expand("${EMPTY?unset}", ENV) == ""
