"""Tables of the documents domain.

`documents` holds one row per document (its current version); `document_texts` holds the
title and the extracted text that full-text search indexes (an SQLite FTS5 external-content
table or a PostgreSQL `tsvector` column with a GIN index, both created by migration
0003_documents). Owners are referenced by id only: users live in another domain.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from lotabots.db.base import Base, TimestampMixin, new_id


class DocumentStatus(StrEnum):
    PENDING_UPLOAD = "pending_upload"
    PROCESSING = "processing"
    READY = "ready"
    REJECTED = "rejected"


# Characters of extracted text that full-text search indexes (the rest is kept for readers
# such as embeddings). Bounded so a PostgreSQL tsvector can never exceed its 1 MiB limit.
SEARCH_INDEX_CHARS = 100_000


class Document(TimestampMixin, Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    # Declared size until the upload is checked; then the checked size (they must be equal).
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=DocumentStatus.PENDING_UPLOAD)
    reason: Mapped[str | None] = mapped_column(String(500))
    # Content version: each new upload gets the next one (and its own object key).
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Row version for optimistic concurrency (the ETag); bumped by every change.
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    object_key: Mapped[str] = mapped_column(String(400), nullable=False)
    upload_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    word_count: Mapped[int | None] = mapped_column(Integer)
    page_count: Mapped[int | None] = mapped_column(Integer)
    excerpt: Mapped[str | None] = mapped_column(String(400))
    text_truncated: Mapped[bool] = mapped_column(nullable=False, default=False)
    # Why a `ready` document's text is partial (an extraction budget ran out); migration 0050.
    extraction_note: Mapped[str | None] = mapped_column(String(500))
    # S3 ETag of the object whose ingest is running / finished / announced: makes ingest
    # idempotent under redelivery while a genuinely new upload is still processed.
    processing_etag: Mapped[str | None] = mapped_column(String(100))
    ingested_etag: Mapped[str | None] = mapped_column(String(100))
    published_etag: Mapped[str | None] = mapped_column(String(100))
    ingested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __mapper_args__: Any = {"version_id_col": revision}
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending_upload', 'processing', 'ready', 'rejected')", name="status_valid"
        ),
        CheckConstraint("size_bytes >= 0", name="size_non_negative"),
        Index("ix_documents_owner_created", "owner_id", "created_at", "id"),
        Index("ix_documents_created", "created_at", "id"),
    )


class DocumentText(Base):
    """Title and extracted text of a document: what full-text search indexes.

    The integer primary key is the SQLite FTS5 rowid; it never changes (unlike an implicit rowid).
    """

    __tablename__ = "document_texts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    title: Mapped[str] = mapped_column(Text, nullable=False, default="")
    body: Mapped[str] = mapped_column(Text, nullable=False, default="")
