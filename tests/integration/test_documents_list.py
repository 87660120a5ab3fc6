"""GET /documents: visibility, filters, cursor pagination and full-text search, on SQLite
(FTS5) and PostgreSQL (tsvector + GIN) alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from lotabots.db import session_scope
from lotabots.documents.models import Document
from tests.support.api import api_event, invoke
from tests.support.documents import (
    ADMIN,
    ALICE,
    AUDITOR,
    BOB,
    OPERATOR,
    create,
    create_and_upload,
    make_pdf,
    run_ingest,
)

pytestmark = pytest.mark.usefixtures("db", "aws_env")


def _list(principal: Any = ALICE, **query: Any) -> dict[str, Any]:
    params = {key: str(value) for key, value in query.items()}
    status, _, body = invoke(
        "documents", api_event("GET", "/documents", principal=principal, query=params or None)
    )
    assert status == 200, body
    return dict(body)


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


def _multi_query_event(principal: Any, values: dict[str, list[str]]) -> dict[str, Any]:
    event = api_event("GET", "/documents", principal=principal, query={k: v[-1] for k, v in values.items()})
    event["multiValueQueryStringParameters"] = values
    return event


def _search(q: str, principal: Any = ALICE) -> set[str]:
    return {item["title"] for item in _list(principal, q=q)["items"]}


@pytest.fixture
def corpus() -> dict[str, str]:
    """Four of Alice's documents and one of Bob's, ingested."""
    specs: list[tuple[Any, str, bytes, dict[str, Any]]] = [
        (ALICE, "Solar panels", b"Photovoltaic modules convert sunlight into electricity.", {}),
        (
            ALICE,
            "Wind farms",
            b"Offshore turbines generate electricity from strong winds.",
            {"metadata": {"team": "energy"}},
        ),
        (
            ALICE,
            "Gardening notes",
            b"Tomatoes need sunlight and water.",
            {"content_type": "text/markdown", "metadata": {"team": "home"}},
        ),
        (
            ALICE,
            "Invoice 2026",
            make_pdf(["Invoice for consulting services", "Payment by bank transfer"]),
            {"content_type": "application/pdf"},
        ),
        (BOB, "Bob's secret", b"Sunlight secret electricity plan.", {}),
    ]
    docs = {
        title: create_and_upload(owner, data, title=title, **extra) for owner, title, data, extra in specs
    }
    _, response = run_ingest()
    assert response["batchItemFailures"] == []
    return {title: doc["id"] for title, doc in docs.items()}


def test_members_list_only_their_own_documents_newest_first(corpus: dict[str, str]) -> None:
    body = _list()
    assert _ids(body) == [
        corpus[t] for t in ["Invoice 2026", "Gardening notes", "Wind farms", "Solar panels"]
    ]
    assert body["next_cursor"] is None
    assert _ids(_list(BOB)) == [corpus["Bob's secret"]]


def test_operators_are_members_for_documents_while_admin_and_auditor_see_all(corpus: dict[str, str]) -> None:
    assert _list(OPERATOR)["items"] == []
    assert len(_list(ADMIN)["items"]) == 5
    assert len(_list(AUDITOR)["items"]) == 5
    assert _ids(_list(ADMIN, owner_id=BOB.user_id)) == [corpus["Bob's secret"]]


def test_filters_by_status_content_type_metadata_and_creation_time(corpus: dict[str, str]) -> None:
    pending = create(ALICE, title="Not uploaded yet", size_bytes=10)[2]["document"]["id"]
    assert _ids(_list(status="pending_upload")) == [pending]
    assert len(_list(status="ready")["items"]) == 4
    assert _ids(_list(content_type="application/pdf")) == [corpus["Invoice 2026"]]
    assert _ids(_list(metadata="team:energy")) == [corpus["Wind farms"]]
    assert _list(metadata="team:nobody")["items"] == []
    both = invoke("documents", _multi_query_event(ALICE, {"metadata": ["team:home", "team:energy"]}))[2]
    assert both["items"] == []

    old = datetime(2020, 1, 1, tzinfo=UTC)
    with session_scope() as session:
        session.execute(
            update(Document)
            .where(Document.id == corpus["Solar panels"])
            .values(created_at=old)
            .execution_options(synchronize_session=False)
        )
    cutoff = (old + timedelta(days=1)).isoformat()
    assert _ids(_list(created_before=cutoff)) == [corpus["Solar panels"]]
    assert corpus["Solar panels"] not in _ids(_list(created_after=cutoff))
    assert len(_list(created_after=cutoff)["items"]) == 4


def test_bad_filters_are_refused() -> None:
    for query, code in (
        ({"status": "lost"}, 422),
        ({"limit": "0"}, 422),
        ({"limit": "101"}, 422),
        ({"created_after": "yesterday"}, 422),
        ({"metadata": "no-colon"}, 400),
        ({"cursor": "garbage!!"}, 400),
    ):
        status, _, body = invoke("documents", api_event("GET", "/documents", principal=ALICE, query=query))
        assert status == code, (query, body)
        assert set(body) == {"message", "code", "details", "request_id"}


def test_cursor_pagination_walks_every_document_once(corpus: dict[str, str]) -> None:
    for i in range(3):
        create(ALICE, title=f"Extra {i}", size_bytes=10)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        body = _list(limit=2, **({"cursor": cursor} if cursor else {}))
        seen.extend(_ids(body))
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 7
    assert seen == _ids(_list(limit=100))


def test_pagination_is_stable_when_creation_times_are_equal(corpus: dict[str, str]) -> None:
    same = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    with session_scope() as session:
        session.execute(update(Document).values(created_at=same).execution_options(synchronize_session=False))
    first = _list(limit=3)
    second = _list(limit=3, cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    assert sorted(_ids(first) + _ids(second)) == sorted(corpus[t] for t in corpus if t != "Bob's secret")


def test_full_text_search_covers_title_and_extracted_text(corpus: dict[str, str]) -> None:
    assert _search("electricity") == {"Solar panels", "Wind farms"}
    assert _search("sunlight") == {"Solar panels", "Gardening notes"}
    assert _search("gardening") == {"Gardening notes"}  # title only
    assert _search("bank transfer") == {"Invoice 2026"}  # PDF text
    assert _search("sunlight electricity") == {"Solar panels"}


def test_search_understands_stems_phrases_or_and_exclusion(corpus: dict[str, str]) -> None:
    assert _search("turbine") == {"Wind farms"}  # stemmed: turbines
    assert _search('"convert sunlight"') == {"Solar panels"}
    assert _search('"sunlight convert"') == set()
    assert _search("tomatoes or turbines") == {"Gardening notes", "Wind farms"}
    assert _search("sunlight -tomatoes") == {"Solar panels"}


def test_search_never_crosses_owners_and_odd_input_is_harmless(corpus: dict[str, str]) -> None:
    assert _search("secret") == set()
    assert _search("secret", principal=BOB) == {"Bob's secret"}
    assert _search("secret", principal=ADMIN) == {"Bob's secret"}
    for odd in ("NEAR(a b)", '"', "'; DROP TABLE documents; --", "title:x*", "-", "(((", "東京"):
        assert isinstance(_list(q=odd)["items"], list)
    assert len(_list()["items"]) == 4


def test_search_combines_with_filters_and_follows_renames(corpus: dict[str, str]) -> None:
    assert _search("electricity") == {"Solar panels", "Wind farms"}
    assert _ids(_list(q="electricity", metadata="team:energy")) == [corpus["Wind farms"]]
    status, _, _ = invoke(
        "documents",
        api_event(
            "PATCH",
            f"/documents/{corpus['Solar panels']}",
            body={"title": "Rooftop photovoltaics"},
            principal=ALICE,
        ),
    )
    assert status == 200
    assert _search("rooftop") == {"Rooftop photovoltaics"}
    assert _search("solar") == set()


def test_deleted_documents_leave_the_search_index(corpus: dict[str, str]) -> None:
    invoke("documents", api_event("DELETE", f"/documents/{corpus['Wind farms']}", principal=ALICE))
    assert _search("electricity") == {"Solar panels"}
    assert _search("electricity", principal=ADMIN) == {"Solar panels", "Bob's secret"}
