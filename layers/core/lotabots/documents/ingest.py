"""Ingest of one uploaded object: check it against its declaration, hash, extract, record.

Runs for every S3 ObjectCreated notification (at least once, maybe concurrently). The S3
ETag of the object is the idempotency key: an object that was already ingested changes
nothing when its notification comes again, while a genuinely new upload to the same key is
processed. `DocumentIngested` goes out once per (version, content), after the outcome is
committed, and is retried on redelivery until it has been sent.

Nothing is held in memory whole: the object streams in chunks through SHA-256 and, for text,
an incremental UTF-8 decoder; a PDF is spooled to a temporary file that a budgeted child
process reads (see `pdf_worker`): over a budget the document is `ready` with the text read so
far and an `extraction_note`, or `rejected`; either way the message is acknowledged. A document
starts only when the invocation has DOCUMENT_EXTRACT_SECONDS (plus a margin) left; otherwise
`IngestDeferred` leaves it to the next delivery, so the worker never outruns its own timeout.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Literal

from lotabots import audit, config, events, storage_keys
from lotabots.config import DocumentSettings
from lotabots.db import session_scope
from lotabots.documents import repository, storage
from lotabots.documents.extraction import (
    ExtractedText,
    TextCollector,
    UnacceptableContent,
    Utf8Decoder,
)
from lotabots.documents.models import DocumentStatus
from lotabots.documents.pdf_budget import PdfBudget
from lotabots.documents.pdf_extraction import PdfUnreadable, extract_pdf
from lotabots.documents.schemas import DocumentIngestedDetail
from lotabots.documents.sniffing import HEAD_BYTES, PDF_TYPE, mismatch_reason, sniff
from lotabots.observability import logger, metrics

EVENT_SOURCE = "lotabots.documents"
EVENT_TYPE = "DocumentIngested"

Status = Literal["ready", "rejected", "duplicate", "ignored"]
# Time kept back after extraction for the database writes, the event and the quarantine copy.
FINISH_MARGIN_S = 5.0


@dataclass(frozen=True)
class IngestOutcome:
    status: Status
    document_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Inspection:
    sha256: str | None
    extracted: ExtractedText | None
    reason: str | None  # set when rejected


class ObjectChanged(Exception):
    """The object was replaced or removed while it was being read; its own event will follow."""


class IngestDeferred(Exception):
    """Too little of the invocation is left to give this document its full budget: nothing was
    changed, and the message is left for its next delivery (a batch item failure)."""


@dataclass(frozen=True)
class _Doc:
    """What ingest needs of the document row, read in a short transaction."""

    id: str
    owner_id: str
    content_type: str
    size_bytes: int
    version: int
    object_key: str
    status: str
    deleted: bool
    ingested_etag: str | None
    published_etag: str | None
    sha256: str | None
    word_count: int | None
    page_count: int | None


def _settings() -> DocumentSettings:
    return config.load(DocumentSettings)


def _load(document_id: str) -> _Doc | None:
    with session_scope() as session:
        row = repository.get(session, document_id, include_deleted=True)
        if row is None:
            return None
        return _Doc(
            id=row.id,
            owner_id=row.owner_id,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            version=row.version,
            object_key=row.object_key,
            status=row.status,
            deleted=row.deleted_at is not None,
            ingested_etag=row.ingested_etag,
            published_etag=row.published_etag,
            sha256=row.sha256,
            word_count=row.word_count,
            page_count=row.page_count,
        )


def ingest_object(bucket: str, key: str, *, deadline: float | None = None) -> IngestOutcome:
    """Process one S3 object notification (key already URL-decoded). Idempotent.

    `deadline` (a `time.monotonic()` value) is when the invocation must be done."""
    settings = _settings()
    if bucket != settings.bucket:
        logger.warning("notification for another bucket ignored", extra={"bucket": bucket})
        return IngestOutcome("ignored", reason="not the documents bucket")
    parts = storage_keys.parse_document_key(key)
    if parts is None:
        logger.warning("object key is not a document key", extra={"key": key[:300]})
        return IngestOutcome("ignored", reason="not a document key")
    doc = _load(parts.document_id)
    if doc is None or doc.owner_id != parts.owner_id:
        logger.warning("object has no document", extra={"key": key[:300]})
        return IngestOutcome("ignored", parts.document_id, "no such document")
    if doc.deleted:
        # An upload through a form issued before the delete: the document stays deleted.
        storage.delete_prefix(storage_keys.document_prefix(doc.owner_id, doc.id))
        return IngestOutcome("ignored", doc.id, "document was deleted")
    if parts.version != doc.version or key != doc.object_key:
        return IngestOutcome("ignored", doc.id, f"version {parts.version} was superseded")
    info = storage.head(key)
    if info is None:
        return IngestOutcome("ignored", doc.id, "object no longer exists")
    if doc.ingested_etag == info.etag:
        _finalize(doc, info)
        metrics.add_metric(name="DocumentIngestDuplicates", unit="Count", value=1)
        return IngestOutcome("duplicate", doc.id)
    if deadline is not None:
        left = deadline - time.monotonic()
        if left < settings.extract_seconds + FINISH_MARGIN_S:
            metrics.add_metric(name="DocumentIngestsDeferred", unit="Count", value=1)
            raise IngestDeferred(f"{left:.1f} s left; a document needs {settings.extract_seconds:g} s")

    with session_scope() as session:
        claimed = repository.claim_for_ingest(session, doc.id, doc.version, info.etag)
    if not claimed:
        return IngestOutcome("duplicate", doc.id)

    try:
        inspection = inspect(info, doc.content_type, doc.size_bytes)
    except ObjectChanged:
        return IngestOutcome("ignored", doc.id, "object changed while it was read")
    return _record(doc, info, inspection)


def _record(doc: _Doc, info: storage.ObjectInfo, inspection: Inspection) -> IngestOutcome:
    extracted = inspection.extracted
    note: str | None = None
    if inspection.reason is None and extracted is not None:
        note = extracted.note
        values: dict[str, object] = {
            "status": DocumentStatus.READY,
            "reason": None,
            "sha256": inspection.sha256,
            "size_bytes": info.size,
            "word_count": extracted.word_count,
            "page_count": extracted.page_count,
            "excerpt": extracted.excerpt,
            "text_truncated": extracted.truncated,
            "extraction_note": note,
        }
        body = extracted.text
    else:
        values = {
            "status": DocumentStatus.REJECTED,
            "reason": (inspection.reason or "the file could not be read")[:500],
            "sha256": inspection.sha256,
            "word_count": None,
            "page_count": None,
            "excerpt": None,
            "text_truncated": False,
            "extraction_note": None,
        }
        body = ""
    with session_scope() as session:
        if not repository.finish_ingest(session, doc.id, doc.version, info.etag, values):
            logger.info("document moved on during ingest; result discarded", extra={"document_id": doc.id})
            return IngestOutcome("ignored", doc.id, "document changed during ingest")
        repository.set_text(session, doc.id, body)
        audit.record(
            session,
            actor_id=None,
            action="document.ingested" if values["status"] == DocumentStatus.READY else "document.rejected",
            target_type="document",
            target_id=doc.id,
            details={
                "version": doc.version,
                "sha256": inspection.sha256,
                "size_bytes": info.size,
                "reason": values["reason"],
                "extraction_note": values["extraction_note"],
            },
        )
    done = _load(doc.id)
    if done is not None:
        _finalize(done, info)
    if values["status"] == DocumentStatus.READY:
        metrics.add_metric(name="DocumentsIngested", unit="Count", value=1)
        if note is not None:
            metrics.add_metric(name="DocumentsPartiallyExtracted", unit="Count", value=1)
        logger.info("document ready", extra={"document_id": doc.id, "version": doc.version, "note": note})
        return IngestOutcome("ready", doc.id, note)
    metrics.add_metric(name="DocumentsRejected", unit="Count", value=1)
    logger.info("document rejected", extra={"document_id": doc.id, "reason": values["reason"]})
    return IngestOutcome("rejected", doc.id, str(values["reason"]))


def _finalize(doc: _Doc, info: storage.ObjectInfo) -> None:
    """The side effects of an outcome; safe to repeat (runs again on redelivery)."""
    if doc.deleted or doc.ingested_etag != info.etag:
        return
    if doc.status == DocumentStatus.REJECTED:
        storage.quarantine(info)
        return
    if doc.status != DocumentStatus.READY:
        return
    if doc.published_etag != info.etag:
        assert doc.sha256 is not None and doc.word_count is not None
        detail = DocumentIngestedDetail(
            document_id=doc.id,
            owner_id=doc.owner_id,
            version=doc.version,
            content_type=doc.content_type,
            sha256=doc.sha256,
            size_bytes=doc.size_bytes,
            word_count=doc.word_count,
            page_count=doc.page_count,
        )
        events.publish(EVENT_SOURCE, EVENT_TYPE, detail.model_dump())
        with session_scope() as session:
            repository.mark_published(session, doc.id, info.etag)
    # Earlier versions' objects are no longer served once this one is ready.
    storage.delete_prefix(storage_keys.document_prefix(doc.owner_id, doc.id), keep=doc.object_key)


def inspect(info: storage.ObjectInfo, declared_type: str, declared_size: int) -> Inspection:
    """Check the object against its declaration and extract its text, streaming it once."""
    settings = _settings()
    if info.size == 0:
        return Inspection(None, None, "the file is empty")
    if info.size > settings.max_bytes:
        return Inspection(
            None, None, f"the file is {info.size} bytes; the limit is {settings.max_bytes} bytes"
        )
    if info.size != declared_size:
        comparison = "larger" if info.size > declared_size else "smaller"
        return Inspection(
            None,
            None,
            f"the file is {info.size} bytes, {comparison} than the {declared_size} bytes declared",
        )
    uploaded_type = (info.content_type or "").split(";", 1)[0].strip().lower()
    if uploaded_type and uploaded_type != declared_type:
        return Inspection(
            None, None, f"the file was uploaded as {uploaded_type} but declared as {declared_type}"
        )
    chunks = storage.iter_object(info, settings.ingest_chunk_bytes)
    if chunks is None:
        raise ObjectChanged(info.key)
    with closing(chunks):
        return _stream(chunks, declared_type, declared_size, settings)


def _stream(
    chunks: Iterator[bytes], declared_type: str, declared_size: int, settings: DocumentSettings
) -> Inspection:
    hasher = hashlib.sha256()
    head = b""
    pending: list[bytes] = []
    for chunk in chunks:
        pending.append(chunk)
        head += chunk[: HEAD_BYTES - len(head)]
        if len(head) >= HEAD_BYTES:
            break
    reason = mismatch_reason(declared_type, sniff(head))
    if reason is not None:
        return Inspection(None, None, reason)

    collector = TextCollector(settings.max_text_chars)
    total = 0
    try:
        if declared_type == PDF_TYPE:
            with tempfile.NamedTemporaryFile(dir=settings.spool_dir, suffix=".pdf") as spool:
                total = _consume(pending, chunks, declared_size, (hasher.update, spool.write))
                spool.flush()
                result = extract_pdf(spool.name, collector, PdfBudget.starting_now(settings))
            logger.info(
                "PDF extracted",
                extra={
                    "pages": result.page_count,
                    "seconds": round(result.seconds, 3),
                    "peak_rss": result.peak_rss,
                    "note": result.note,
                },
            )
            extracted = collector.finish(page_count=result.page_count, note=result.note)
        else:
            decoder = Utf8Decoder(collector)
            total = _consume(pending, chunks, declared_size, (hasher.update, decoder.feed))
            decoder.feed(b"", final=True)
            extracted = collector.finish()
            if declared_type == "application/json":
                _check_json(extracted)
    except PdfUnreadable as exc:
        logger.info("PDF unreadable", extra={"seconds": round(exc.seconds, 3), "peak_rss": exc.peak_rss})
        return Inspection(hasher.hexdigest(), None, exc.reason)
    except UnacceptableContent as exc:
        digest = hasher.hexdigest() if total == declared_size else None
        return Inspection(digest, None, exc.reason)
    return Inspection(hasher.hexdigest(), extracted, None)


def _consume(
    pending: list[bytes],
    chunks: Iterator[bytes],
    declared_size: int,
    sinks: tuple[Callable[[bytes], object], ...],
) -> int:
    """Feed every chunk (the already-read head first) to `sinks`; returns the byte count."""
    total = 0

    def take(chunk: bytes) -> None:
        nonlocal total
        total += len(chunk)
        if total > declared_size:
            raise UnacceptableContent(f"the file is larger than the {declared_size} bytes declared")
        for sink in sinks:
            sink(chunk)

    for chunk in pending:
        take(chunk)
    pending.clear()
    for chunk in chunks:
        take(chunk)
    if total != declared_size:
        raise OSError(f"object stream ended after {total} of {declared_size} bytes")
    return total


def _check_json(extracted: ExtractedText) -> None:
    """Full syntax check when the whole text was kept (bounded by DOCUMENT_MAX_TEXT_CHARS)."""
    if extracted.truncated:
        stripped = extracted.text.lstrip()
        if stripped[:1] not in ("{", "["):
            raise UnacceptableContent("the file is not valid JSON (it does not start with { or [)")
        return
    try:
        json.loads(extracted.text)
    except ValueError as exc:
        raise UnacceptableContent(f"the file is not valid JSON ({str(exc)[:120]})") from None
    except RecursionError:
        raise UnacceptableContent("the file is not accepted as JSON (it is nested too deeply)") from None
