"""Full-text search over title + extracted text, on SQLite (FTS5) and PostgreSQL.

The query language is PostgreSQL's `websearch_to_tsquery`: words are ANDed, `"a phrase"`
matches words in order, `or` between words means either, `-word` excludes. On SQLite the
same query is translated into an FTS5 expression in which every word is a quoted string,
so no user input is ever parsed as FTS5 syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, false, text

from lotabots.documents.models import Document

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORDY = re.compile(r"\w")


@dataclass(frozen=True)
class Term:
    text: str
    negated: bool = False


def parse(query: str) -> list[list[Term]]:
    """OR-separated groups of terms (each group is an AND of its terms)."""
    groups: list[list[Term]] = [[]]
    for match in _TOKEN.finditer(query):
        negated_phrase, phrase, word = match.group(1), match.group(2), match.group(3)
        if word is not None and word.lower() == "or":
            if groups[-1]:
                groups.append([])
            continue
        if word is not None:
            negated = word.startswith("-") and len(word) > 1
            value = word[1:] if negated else word
        else:
            negated, value = bool(negated_phrase), phrase
        if _WORDY.search(value):
            groups[-1].append(Term(value, negated))
    return [group for group in groups if any(not term.negated for term in group)]


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def fts5_expression(query: str) -> str | None:
    """The FTS5 MATCH expression for a websearch-style query; None when nothing can match."""
    parts = []
    for group in parse(query):
        positives = [_quoted(t.text) for t in group if not t.negated]
        expression = " AND ".join(positives)
        for term in group:
            if term.negated:
                expression = f"({expression}) NOT {_quoted(term.text)}"
        parts.append(f"({expression})")
    return " OR ".join(parts) if parts else None


def matches(dialect: str, query: str) -> ColumnElement[bool]:
    """A WHERE clause keeping the documents whose title or text matches `query`."""
    if dialect == "postgresql":
        subquery = text(
            "SELECT document_id FROM document_texts "
            "WHERE search_vector @@ websearch_to_tsquery('english', :search_query)"
        ).bindparams(search_query=query)
    elif dialect == "sqlite":
        expression = fts5_expression(query)
        if expression is None:
            return false()
        subquery = text(
            "SELECT document_texts.document_id FROM documents_fts "
            "JOIN document_texts ON document_texts.id = documents_fts.rowid "
            "WHERE documents_fts MATCH :search_query"
        ).bindparams(search_query=expression)
    else:
        raise RuntimeError(f"full-text search is not available on {dialect}")
    return Document.id.in_(subquery.columns(document_id=String))
