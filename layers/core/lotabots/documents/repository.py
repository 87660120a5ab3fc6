"""Queries and conditional writes on the documents tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from lotabots import pagination
from lotabots.db.base import utcnow
from lotabots.documents import search
from lotabots.documents.models import Document, DocumentStatus, DocumentText
from lotabots.pagination import decode_time_cursor


def add(session: Session, document: Document) -> Document:
    session.add(document)
    session.add(DocumentText(document_id=document.id, title=document.title, body=""))
    session.flush()
    return document


def get(session: Session, document_id: str, *, include_deleted: bool = False) -> Document | None:
    statement = select(Document).where(Document.id == document_id)
    if not include_deleted:
        statement = statement.where(Document.deleted_at.is_(None))
    return session.scalars(statement).first()


def titles(session: Session, document_ids: Sequence[str], *, owner_id: str | None) -> dict[str, str]:
    """Titles of the not deleted documents among `document_ids` (only `owner_id`'s when given)."""
    if not document_ids:
        return {}
    statement = select(Document.id, Document.title).where(
        Document.id.in_(document_ids), Document.deleted_at.is_(None)
    )
    if owner_id is not None:
        statement = statement.where(Document.owner_id == owner_id)
    return {str(row.id): str(row.title) for row in session.execute(statement)}


@dataclass(frozen=True)
class ListFilter:
    owner_id: str | None = None
    status: str | None = None
    content_type: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    query: str | None = None


def list_page(
    session: Session, filters: ListFilter, *, limit: int, cursor: str | None
) -> tuple[Sequence[Document], str | None]:
    """One page, newest first; the cursor is the position after the last item returned."""
    conditions: list[Any] = [Document.deleted_at.is_(None)]
    if filters.owner_id is not None:
        conditions.append(Document.owner_id == filters.owner_id)
    if filters.status is not None:
        conditions.append(Document.status == filters.status)
    if filters.content_type is not None:
        conditions.append(Document.content_type == filters.content_type)
    for key, value in filters.metadata:
        conditions.append(Document.meta[key].as_string() == value)
    if filters.created_after is not None:
        conditions.append(Document.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(Document.created_at < filters.created_before)
    if filters.query:
        conditions.append(search.matches(session.get_bind().dialect.name, filters.query))
    if cursor:
        conditions.append(
            pagination.after(session, Document.created_at, Document.id, decode_time_cursor(cursor))
        )
    statement = (
        select(Document)
        .where(*conditions)
        .order_by(Document.created_at.desc(), Document.id.desc())
        .limit(limit + 1)
    )
    return pagination.page(session.scalars(statement).all(), limit, lambda d: (d.created_at, d.id))


def set_search_title(session: Session, document_id: str, title: str) -> None:
    session.execute(update(DocumentText).where(DocumentText.document_id == document_id).values(title=title))


def set_text(session: Session, document_id: str, body: str) -> None:
    session.execute(update(DocumentText).where(DocumentText.document_id == document_id).values(body=body))


def delete_text(session: Session, document_id: str) -> None:
    session.execute(delete(DocumentText).where(DocumentText.document_id == document_id))


def load_text(session: Session, document_id: str) -> str | None:
    return session.scalars(select(DocumentText.body).where(DocumentText.document_id == document_id)).first()


# --- conditional writes used by ingest (safe under concurrent, redelivered messages) --------


def claim_for_ingest(session: Session, document_id: str, version: int, etag: str) -> bool:
    """Mark the document `processing` for this object unless that object was already ingested."""
    result = session.execute(
        update(Document)
        .where(
            Document.id == document_id,
            Document.version == version,
            Document.deleted_at.is_(None),
            or_(Document.ingested_etag.is_(None), Document.ingested_etag != etag),
        )
        .values(
            status=DocumentStatus.PROCESSING,
            processing_etag=etag,
            reason=None,
            revision=Document.revision + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def finish_ingest(
    session: Session, document_id: str, version: int, etag: str, values: dict[str, Any]
) -> bool:
    """Record the outcome for this object; False if the document moved on meanwhile (new
    version, deleted, or another worker already finished the same object)."""
    now = utcnow()
    result = session.execute(
        update(Document)
        .where(
            Document.id == document_id,
            Document.version == version,
            Document.deleted_at.is_(None),
            Document.processing_etag == etag,
            or_(Document.ingested_etag.is_(None), Document.ingested_etag != etag),
        )
        .values(
            **values,
            ingested_etag=etag,
            ingested_at=now,
            revision=Document.revision + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def mark_published(session: Session, document_id: str, etag: str) -> None:
    session.execute(
        update(Document)
        .where(Document.id == document_id, Document.ingested_etag == etag)
        .values(published_etag=etag)
        .execution_options(synchronize_session=False)
    )
