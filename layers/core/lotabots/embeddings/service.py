"""Embeddings service: record an `embed` job's vectors, find similar documents.

An `embed` job's `result.json` names its vectors file (little-endian float32, one row per
chunk) with its size and SHA-256. The vectors are stored only if the file exists and
matches both, every row is finite and unit length, and the counts agree: a job that died
half-way through writing can never be recorded as a success.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy.orm import Session

from lotabots import aws
from lotabots.access import Principal
from lotabots.embeddings import repository as repo
from lotabots.embeddings import vectors
from lotabots.embeddings.models import ChunkEmbedding, DocumentEmbedding
from lotabots.embeddings.schemas import SimilarDocument, SimilarDocuments
from lotabots.errors import Conflict
from lotabots.jobs.errors import ResultRejected
from lotabots.jobs.models import Job
from lotabots.jobs.spec import parse_s3_uri
from lotabots.observability import logger
from lotabots.storage_keys import job_prefix

NORM_TOLERANCE = 1e-2
MAX_CANDIDATES = 500


@dataclass(frozen=True)
class PreparedEmbeddings:
    document_id: str
    owner_id: str | None
    version: int | None
    model: str
    dim: int
    rows: list[bytes]
    chunks: list[dict[str, int]]
    unit_mean: list[float]


class EmbedResultRecorder:
    """`lotabots.jobs.results` calls this for `embed` jobs."""

    def verify(self, job: Job, result: dict[str, Any]) -> PreparedEmbeddings:
        try:
            dim = int(result["dim"])
            count = int(result["count"])
            expected_bytes = int(result["vectors_bytes"])
            digest = str(result["vectors_sha256"])
            vectors_uri = str(result["vectors_uri"])
            chunks = list(result["chunks"])
            model = result["model"]["name"] if isinstance(result["model"], dict) else str(result["model"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultRejected(f"embed result is missing or has a malformed field: {exc}") from exc
        if result.get("dtype") != "float32":
            raise ResultRejected(f"embed vectors must be float32, not {result.get('dtype')!r}")
        if dim != vectors.EMBEDDING_DIM:
            raise ResultRejected(f"embed vectors have {dim} dimensions; expected {vectors.EMBEDDING_DIM}")
        if count < 1 or count != len(chunks):
            raise ResultRejected(f"embed result has {count} vectors for {len(chunks)} chunks")
        if str(result.get("document_id")) != str(job.input.get("document_id")):
            raise ResultRejected("embed result is for another document")
        bucket, key = parse_s3_uri(vectors_uri)
        if not key.startswith(job_prefix(job.id)):
            raise ResultRejected(f"vectors {vectors_uri} are outside this job's artifacts")
        try:
            blob: bytes = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                raise ResultRejected(f"vectors object {vectors_uri} does not exist") from exc
            raise
        if len(blob) != expected_bytes or len(blob) != count * dim * 4:
            raise ResultRejected(
                f"vectors object is {len(blob)} bytes; result.json says {expected_bytes} "
                f"and {count}x{dim} float32 is {count * dim * 4} (partial write?)"
            )
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ResultRejected("vectors object does not match the SHA-256 in result.json")
        row_bytes = dim * 4
        rows = [blob[i * row_bytes : (i + 1) * row_bytes] for i in range(count)]
        unpacked = [vectors.unpack(row) for row in rows]
        for index, row in enumerate(unpacked):
            norm = math.sqrt(math.fsum(x * x for x in row))
            if not math.isfinite(norm) or abs(norm - 1.0) > NORM_TOLERANCE:
                raise ResultRejected(f"vector {index} is not unit length (norm {norm:.4f})")
        parsed_chunks = []
        for chunk in chunks:
            try:
                parsed_chunks.append(
                    {"start": int(chunk["start"]), "end": int(chunk["end"]), "tokens": int(chunk["tokens"])}
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ResultRejected(f"chunk entry is malformed: {exc}") from exc
        version = job.input.get("version")
        return PreparedEmbeddings(
            document_id=str(job.input["document_id"]),
            owner_id=job.input.get("owner_id"),
            version=int(version) if version is not None else None,
            model=str(model),
            dim=dim,
            rows=rows,
            chunks=parsed_chunks,
            unit_mean=vectors.normalise(vectors.mean(unpacked)),
        )

    def store(self, session: Session, job: Job, prepared: PreparedEmbeddings) -> dict[str, Any]:
        existing = repo.get_document(session, prepared.document_id)
        if (
            existing is not None
            and existing.version is not None
            and prepared.version is not None
            and existing.version > prepared.version
        ):
            logger.info(
                "a newer version is already embedded; keeping it",
                extra={
                    "document_id": prepared.document_id,
                    "stored": existing.version,
                    "job": prepared.version,
                },
            )
            return {"stored": False, "reason": f"version {existing.version} is already embedded"}
        document = DocumentEmbedding(
            document_id=prepared.document_id,
            owner_id=prepared.owner_id,
            version=prepared.version,
            job_id=job.id,
            model=prepared.model,
            dim=prepared.dim,
            chunk_count=len(prepared.rows),
            vector=vectors.pack(prepared.unit_mean),
        )
        chunks = [
            ChunkEmbedding(
                document_id=prepared.document_id,
                chunk_index=index,
                version=prepared.version,
                job_id=job.id,
                start_char=chunk["start"],
                end_char=chunk["end"],
                token_count=chunk["tokens"],
                vector=row,
            )
            for index, (row, chunk) in enumerate(zip(prepared.rows, prepared.chunks, strict=True))
        ]
        repo.replace_document(session, document, chunks, prepared.unit_mean)
        return {"stored": True, "document_id": prepared.document_id, "version": prepared.version}


def similar_documents(session: Session, principal: Principal, document_id: str, k: int) -> SimilarDocuments:
    """The `k` documents nearest to `document_id` among those the caller may see."""
    from lotabots.documents import repository as document_repository
    from lotabots.documents import service as documents

    documents.get_visible_document(session, principal, document_id)  # 404 for what the caller can't see
    target = repo.get_document(session, document_id)
    if target is None:
        raise Conflict(
            f"document {document_id} has no embeddings yet; they are computed after ingestion",
            code="document_not_embedded",
        )
    owner = documents.visible_owner_filter(principal)
    ranked = repo.nearest(session, document_id, owner_id=owner, limit=MAX_CANDIDATES)
    # One query for the candidates' titles; deleted documents and other owners' drop out.
    titles = document_repository.titles(session, [candidate_id for candidate_id, _ in ranked], owner_id=owner)
    items = [
        SimilarDocument(document_id=candidate_id, score=round(score, 6), title=titles[candidate_id])
        for candidate_id, score in ranked
        if candidate_id in titles
    ][:k]
    return SimilarDocuments(document_id=document_id, model=target.model, k=k, items=items)
