"""The web-search query language and its translation to FTS5 (no user text becomes syntax)."""

from __future__ import annotations

from lotabots.documents.search import fts5_expression, parse


def test_words_are_anded_and_each_is_quoted() -> None:
    assert fts5_expression("alpha beta") == '("alpha" AND "beta")'


def test_phrases_stay_phrases() -> None:
    assert fts5_expression('"quarterly report" 2026') == '("quarterly report" AND "2026")'


def test_or_splits_groups_and_minus_excludes() -> None:
    assert fts5_expression("alpha or beta -gamma") == '("alpha") OR (("beta") NOT "gamma")'


def test_fts5_operators_and_quotes_in_input_are_just_words() -> None:
    expression = fts5_expression('NEAR(a b) AND title:x "unterminated')
    assert expression == '("NEAR(a" AND "b)" AND "AND" AND "title:x" AND "unterminated")'
    assert fts5_expression('say "it""s"') == '("say" AND "it" AND "s")'


def test_a_query_with_only_exclusions_or_punctuation_matches_nothing() -> None:
    assert fts5_expression("-alpha") is None
    assert fts5_expression("!!! ---") is None
    assert parse("or or") == []
