"""Embedding tables: one vector per chunk (`embeddings`) and one per document (`document_embeddings`,
the normalised mean of its chunks, used for document-to-document similarity).

Vectors are little-endian float32 blobs everywhere; on PostgreSQL with pgvector the migration
adds a `vector(384)` column to `document_embeddings`, kept in step by the repository."""

from __future__ import annotations

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from lotabots.db.base import Base, TimestampMixin


class DocumentEmbedding(TimestampMixin, Base):
    __tablename__ = "document_embeddings"

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(64), nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False)
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ChunkEmbedding(Base):
    __tablename__ = "embeddings"

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(32), nullable=False)
    start_char: Mapped[int] = mapped_column(Integer, nullable=False)
    end_char: Mapped[int] = mapped_column(Integer, nullable=False)
    token_count: Mapped[int] = mapped_column(Integer, nullable=False)
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
