"""API contract of `GET /documents/{document_id}/similar`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SimilarDocument(BaseModel):
    document_id: str
    score: float = Field(description="Cosine similarity of the documents' mean embeddings, -1..1")
    title: str | None = None


class SimilarDocuments(BaseModel):
    document_id: str
    model: str
    k: int
    items: list[SimilarDocument]
