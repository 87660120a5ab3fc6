"""Storage and nearest-neighbour queries for embeddings.

On PostgreSQL whose migration could create the pgvector extension, `document_embeddings`
has an `embedding vector(384)` column with an HNSW cosine index, and ranking happens in SQL
(`<=>`). Everywhere else (SQLite, PostgreSQL without pgvector) the float32 blobs are ranked
in the process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from lotabots.embeddings import vectors
from lotabots.embeddings.models import ChunkEmbedding, DocumentEmbedding

_lock = threading.Lock()
_pgvector: dict[str, bool] = {}
SCAN_LIMIT = 50_000


def has_pgvector(session: Session) -> bool:
    """Whether this database has the pgvector column (checked once per database URL)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    url = bind.engine.url.render_as_string(hide_password=True)
    with _lock:
        if url in _pgvector:
            return _pgvector[url]
    found = session.execute(
        text(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'document_embeddings' AND column_name = 'embedding'"
        )
    ).first()
    with _lock:
        _pgvector[url] = found is not None
    return found is not None


def forget_capabilities() -> None:
    with _lock:
        _pgvector.clear()


def get_document(session: Session, document_id: str) -> DocumentEmbedding | None:
    return session.get(DocumentEmbedding, document_id)


def replace_document(
    session: Session,
    document: DocumentEmbedding,
    chunks: Sequence[ChunkEmbedding],
    unit_vector: Sequence[float],
) -> None:
    """Store a document's vectors, replacing whatever an earlier version left."""
    session.execute(delete(ChunkEmbedding).where(ChunkEmbedding.document_id == document.document_id))
    existing = session.get(DocumentEmbedding, document.document_id)
    if existing is None:
        session.add(document)
    else:
        for column in ("owner_id", "version", "job_id", "model", "dim", "chunk_count", "vector"):
            setattr(existing, column, getattr(document, column))
    session.add_all(chunks)
    session.flush()
    if has_pgvector(session):
        session.execute(
            text("UPDATE document_embeddings SET embedding = CAST(:v AS vector) WHERE document_id = :id"),
            {"v": vectors.to_pgvector(unit_vector), "id": document.document_id},
        )


def nearest(
    session: Session, document_id: str, *, owner_id: str | None, limit: int
) -> list[tuple[str, float]]:
    """Other documents by cosine similarity to `document_id`'s vector, best first."""
    target = session.get(DocumentEmbedding, document_id)
    if target is None:
        return []
    if has_pgvector(session):
        rows = session.execute(
            text(
                "SELECT d.document_id, 1 - (d.embedding <=> t.embedding) AS score "
                "FROM document_embeddings d, document_embeddings t "
                "WHERE t.document_id = :id AND d.document_id <> :id AND d.embedding IS NOT NULL "
                "AND (CAST(:owner AS TEXT) IS NULL OR d.owner_id = CAST(:owner AS TEXT)) "
                "ORDER BY d.embedding <=> t.embedding LIMIT :limit"
            ),
            {"id": document_id, "owner": owner_id, "limit": limit},
        ).all()
        return [(str(r[0]), float(r[1])) for r in rows]
    query = select(DocumentEmbedding.document_id, DocumentEmbedding.vector).where(
        DocumentEmbedding.document_id != document_id, DocumentEmbedding.dim == target.dim
    )
    if owner_id is not None:
        query = query.where(DocumentEmbedding.owner_id == owner_id)
    candidates = [(str(r[0]), bytes(r[1])) for r in session.execute(query.limit(SCAN_LIMIT)).all()]
    return vectors.rank(bytes(target.vector), candidates)[:limit]
