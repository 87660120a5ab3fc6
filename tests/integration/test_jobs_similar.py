"""GET /documents/{document_id}/similar (lotabots.embeddings.routes): nearest documents by stored
embeddings, only among those the caller may see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lotabots.access import Principal, Role
from lotabots.db import session_scope
from lotabots.db.base import utcnow
from lotabots.documents.models import Document
from lotabots.embeddings import repository, vectors
from lotabots.embeddings.models import DocumentEmbedding
from tests.support.api import FakeLambdaContext, api_event, ensure_account, load_function
from tests.support.jobs import ADMIN, AUDITOR, ready_document

ALICE = Principal(user_id="alice", email="alice@example.com", role=Role.MEMBER)
BOB = Principal(user_id="bob", email="bob@example.com", role=Role.MEMBER)


@pytest.fixture
def handler(db: str) -> Iterator[Any]:
    """The deployed documents function, which includes the similarity router."""
    yield load_function("documents").lambda_handler


def _embed(document_id: str, owner: str, direction: list[float]) -> None:
    unit = vectors.normalise(direction)
    with session_scope() as session:
        session.add(
            DocumentEmbedding(
                document_id=document_id,
                owner_id=owner,
                version=1,
                job_id="job",
                model="all-MiniLM-L6-v2",
                dim=len(unit),
                chunk_count=1,
                vector=vectors.pack(unit),
            )
        )


def _axis(i: int, j: int = -1, weight: float = 0.0) -> list[float]:
    v = [0.0] * 384
    v[i] = 1.0
    if j >= 0:
        v[j] = weight
    return v


def _get(handler: Any, document_id: str, principal: Principal, k: str | None = None) -> tuple[int, Any]:
    import json

    event = api_event(
        "GET", f"/documents/{document_id}/similar", principal=principal, query={"k": k} if k else None
    )
    ensure_account(principal)  # functions re-read the caller's account from the database
    response = handler(event, FakeLambdaContext())
    return int(response["statusCode"]), json.loads(response["body"])


@pytest.fixture
def corpus(handler: Any) -> dict[str, str]:
    docs = {
        "a1": ready_document("alice", "a1", title="GPU scheduling"),
        "a2": ready_document("alice", "a2", title="GPU memory"),
        "a3": ready_document("alice", "a3", title="Cooking"),
        "b1": ready_document("bob", "b1", title="Bob's GPU notes"),
    }
    _embed(docs["a1"], "alice", _axis(0))
    _embed(docs["a2"], "alice", _axis(0, 1, 0.5))
    _embed(docs["a3"], "alice", _axis(2))
    _embed(docs["b1"], "bob", _axis(0, 1, 0.1))
    return docs


def test_a_member_sees_only_their_own_nearest_documents(handler: Any, corpus: dict[str, str]) -> None:
    status, body = _get(handler, corpus["a1"], ALICE)
    assert status == 200, body
    assert body["document_id"] == corpus["a1"] and body["model"] == "all-MiniLM-L6-v2" and body["k"] == 10
    assert [item["document_id"] for item in body["items"]] == [corpus["a2"], corpus["a3"]]
    assert body["items"][0]["title"] == "GPU memory"
    assert body["items"][0]["score"] == pytest.approx(1 / (1.25**0.5), abs=1e-5)
    assert body["items"][1]["score"] == pytest.approx(0.0, abs=1e-6)


def test_admin_and_auditor_see_everyone_and_k_limits(handler: Any, corpus: dict[str, str]) -> None:
    for principal in (ADMIN, AUDITOR):
        status, body = _get(handler, corpus["a1"], principal, k="2")
        assert status == 200
        assert [item["document_id"] for item in body["items"]] == [corpus["b1"], corpus["a2"]]


def test_another_members_document_is_404(handler: Any, corpus: dict[str, str]) -> None:
    status, body = _get(handler, corpus["b1"], ALICE)
    assert status == 404 and body["code"] == "not_found"


def test_deleted_documents_never_appear(handler: Any, corpus: dict[str, str]) -> None:
    with session_scope() as session:
        document = session.get(Document, corpus["a2"])
        assert document is not None
        document.deleted_at = utcnow()
    _status, body = _get(handler, corpus["a1"], ALICE)
    assert [item["document_id"] for item in body["items"]] == [corpus["a3"]]
    assert _get(handler, corpus["a2"], ALICE)[0] == 404


def test_a_document_without_embeddings_is_409(handler: Any) -> None:
    fresh = ready_document("alice", "not embedded yet")
    status, body = _get(handler, fresh, ALICE)
    assert status == 409 and body["code"] == "document_not_embedded"


@pytest.mark.parametrize("k", ["0", "51", "many"])
def test_k_out_of_range_is_422(handler: Any, corpus: dict[str, str], k: str) -> None:
    assert _get(handler, corpus["a1"], ALICE, k=k)[0] == 422


def test_pgvector_is_used_only_where_the_column_exists(db: str) -> None:
    """SQLite and PostgreSQL without the extension rank in process; the capability is detected."""
    with session_scope() as session:
        available = repository.has_pgvector(session)
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            assert available is False
        else:
            from sqlalchemy import text

            has_extension = session.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
            assert available is (has_extension is not None)


def test_route_is_in_the_access_map() -> None:
    from lotabots import access

    rule = access.rule_for("GET", "/documents/abc/similar")
    assert rule is not None and rule.template == "/documents/{document_id}/similar"
    assert Role.MEMBER in rule.roles and Role.AUDITOR in rule.roles
