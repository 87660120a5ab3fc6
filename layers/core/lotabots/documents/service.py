"""Document use cases behind the API, and the access helpers other domains call.

Object-level access: members (and operators) only ever see their own documents, and get
404, never 403, for anybody else's; admins and auditors see all, and every time they read or
change a document that is not theirs an audit entry records it. Deleted documents are 404
for everyone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from lotabots import audit, config, storage_keys
from lotabots.access import Principal, Role
from lotabots.config import DocumentSettings
from lotabots.db.base import as_utc, new_id, utcnow
from lotabots.documents import repository, storage
from lotabots.documents.models import Document, DocumentStatus
from lotabots.documents.schemas import (
    DocumentCreate,
    DocumentCreated,
    DocumentList,
    DocumentOut,
    DocumentPatch,
    NewVersion,
    UploadOut,
)
from lotabots.errors import AppError, BadRequest, NotFound, PayloadTooLarge, PreconditionFailed

TARGET = "document"
_PRIVILEGED_READERS = frozenset({Role.ADMIN, Role.AUDITOR})


class UnsupportedContentType(AppError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_content_type"


def _settings() -> DocumentSettings:
    return config.load(DocumentSettings)


# --- helpers other domains use (keep these names) -------------------------------------------


def visible_owner_filter(principal: Principal) -> str | None:
    """The owner id a principal's document queries must be restricted to; None = all owners."""
    return None if principal.role in _PRIVILEGED_READERS else principal.user_id


def get_visible_document(session: Session, principal: Principal, document_id: str) -> Document:
    """The (not deleted) document if `principal` may see it; NotFound otherwise, also for
    documents that exist but belong to someone else."""
    document = repository.get(session, document_id) if len(document_id) <= 64 else None
    if document is None:
        raise NotFound("document not found", details={"document_id": document_id[:64]})
    owner_filter = visible_owner_filter(principal)
    if owner_filter is not None and document.owner_id != owner_filter:
        raise NotFound("document not found", details={"document_id": document_id})
    return document


def load_text(session: Session, document_id: str) -> str | None:
    """Extracted text of a ready, not deleted document (None otherwise)."""
    document = repository.get(session, document_id)
    if document is None or document.status != DocumentStatus.READY:
        return None
    return repository.load_text(session, document_id)


# --- presentation -----------------------------------------------------------------------------


def to_out(document: Document, *, download_url: str | None = None) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        owner_id=document.owner_id,
        title=document.title,
        status=DocumentStatus(document.status),
        reason=document.reason,
        content_type=document.content_type,
        size_bytes=document.size_bytes,
        sha256=document.sha256,
        metadata=dict(document.meta or {}),
        version=document.version,
        revision=document.revision,
        word_count=document.word_count,
        page_count=document.page_count,
        excerpt=document.excerpt,
        text_truncated=document.text_truncated,
        extraction_note=document.extraction_note,
        created_at=as_utc(document.created_at),
        updated_at=as_utc(document.updated_at),
        ingested_at=as_utc(document.ingested_at) if document.ingested_at else None,
        download_url=download_url,
    )


def etag(document: Document) -> str:
    return f'"{document.revision}"'


def _check_if_match(document: Document, if_match: str | None) -> None:
    """412 unless If-Match (when given) names the current revision."""
    if if_match is None:
        return
    candidates = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    if "*" in candidates:
        return
    current = str(document.revision)
    for tag in candidates:
        if tag.removeprefix("W/").strip('"') == current:
            return
    raise PreconditionFailed(
        "the document changed since you read it; fetch it again and retry",
        details={"current_etag": etag(document)},
    )


def _check_declaration(content_type: str, size_bytes: int) -> str:
    settings = _settings()
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type not in settings.allowed_type_set:
        raise UnsupportedContentType(
            f"content type {content_type!r} is not accepted",
            details={"allowed": sorted(settings.allowed_type_set)},
        )
    if size_bytes > settings.max_bytes:
        raise PayloadTooLarge(
            f"documents may be at most {settings.max_bytes} bytes; {size_bytes} were declared",
            details={"limit_bytes": settings.max_bytes},
        )
    return content_type


def _upload_for(document: Document) -> UploadOut:
    settings = _settings()
    ttl = settings.upload_url_ttl_seconds
    presigned = storage.presign_upload(document.object_key, document.content_type, document.size_bytes, ttl)
    expires_at = document.upload_expires_at or utcnow() + timedelta(seconds=ttl)
    return UploadOut(
        url=presigned["url"],
        fields={str(k): str(v) for k, v in presigned["fields"].items()},
        expires_in=ttl,
        expires_at=as_utc(expires_at),
        max_bytes=document.size_bytes,
    )


def _audit(session: Session, principal: Principal, action: str, document: Document, **details: Any) -> None:
    if document.owner_id != principal.user_id:
        details = {**details, "owner_id": document.owner_id, "on_behalf": True}
    audit.record(
        session,
        actor_id=principal.user_id,
        action=action,
        target_type=TARGET,
        target_id=document.id,
        details=details,
    )


# --- use cases ----------------------------------------------------------------------------------


def create_document(session: Session, principal: Principal, body: DocumentCreate) -> DocumentCreated:
    content_type = _check_declaration(body.content_type, body.size_bytes)
    document_id = new_id()
    now = utcnow()
    document = Document(
        id=document_id,
        owner_id=principal.user_id,
        title=body.title,
        content_type=content_type,
        size_bytes=body.size_bytes,
        meta=dict(body.metadata),
        status=DocumentStatus.PENDING_UPLOAD,
        version=1,
        object_key=storage_keys.document_key(principal.user_id, document_id, 1),
        upload_expires_at=now + timedelta(seconds=_settings().upload_url_ttl_seconds),
        created_at=now,
        updated_at=now,
    )
    repository.add(session, document)
    _audit(
        session,
        principal,
        "document.created",
        document,
        content_type=content_type,
        size_bytes=body.size_bytes,
    )
    return DocumentCreated(document=to_out(document), upload=_upload_for(document))


def get_document(session: Session, principal: Principal, document_id: str) -> DocumentOut:
    document = get_visible_document(session, principal, document_id)
    if document.owner_id != principal.user_id:
        _audit(session, principal, "document.read", document)
    download_url = None
    if document.status == DocumentStatus.READY:
        download_url = storage.presign_download(
            document.object_key,
            document.title,
            document.content_type,
            _settings().download_url_ttl_seconds,
        )
    return to_out(document, download_url=download_url)


def list_documents(
    session: Session,
    principal: Principal,
    filters: repository.ListFilter,
    *,
    limit: int,
    cursor: str | None,
) -> DocumentList:
    own = visible_owner_filter(principal)
    if own is not None:
        if filters.owner_id not in (None, own):
            return DocumentList(items=[], next_cursor=None)
        filters = repository.ListFilter(**{**filters.__dict__, "owner_id": own})
    rows, next_cursor = repository.list_page(session, filters, limit=limit, cursor=cursor)
    others = [row.id for row in rows if row.owner_id != principal.user_id]
    if others:
        audit.record(
            session,
            actor_id=principal.user_id,
            action="document.listed",
            target_type=TARGET,
            details={"document_ids": others},
        )
    return DocumentList(items=[to_out(row) for row in rows], next_cursor=next_cursor)


def update_document(
    session: Session, principal: Principal, document_id: str, patch: DocumentPatch, if_match: str | None
) -> DocumentOut:
    document = get_visible_document(session, principal, document_id)
    _check_if_match(document, if_match)
    changed: dict[str, Any] = {}
    if patch.title is not None and patch.title != document.title:
        changed["title"] = {"from": document.title, "to": patch.title}
        document.title = patch.title
        repository.set_search_title(session, document.id, patch.title)
    if patch.metadata is not None and patch.metadata != document.meta:
        changed["metadata_keys"] = sorted(patch.metadata)
        document.meta = dict(patch.metadata)
    if changed:
        document.updated_at = utcnow()
        _flush(session)
        _audit(session, principal, "document.updated", document, changes=changed)
    return to_out(document)


def delete_document(session: Session, principal: Principal, document_id: str, if_match: str | None) -> None:
    document = get_visible_document(session, principal, document_id)
    _check_if_match(document, if_match)
    now = utcnow()
    document.deleted_at = now
    document.updated_at = now
    _flush(session)
    repository.delete_text(session, document.id)
    _audit(session, principal, "document.deleted", document, version=document.version)
    # Objects go before the commit: if S3 fails the delete is rolled back and can be retried.
    storage.delete_prefix(storage_keys.document_prefix(document.owner_id, document.id))


def new_version(
    session: Session, principal: Principal, document_id: str, body: NewVersion, if_match: str | None
) -> DocumentCreated:
    document = get_visible_document(session, principal, document_id)
    _check_if_match(document, if_match)
    content_type = _check_declaration(body.content_type, body.size_bytes)
    now = utcnow()
    document.version += 1
    document.object_key = storage_keys.document_key(document.owner_id, document.id, document.version)
    document.content_type = content_type
    document.size_bytes = body.size_bytes
    document.status = DocumentStatus.PENDING_UPLOAD
    document.reason = None
    document.sha256 = None
    document.word_count = None
    document.page_count = None
    document.excerpt = None
    document.text_truncated = False
    document.extraction_note = None
    document.processing_etag = None
    document.ingested_etag = None
    document.published_etag = None
    document.ingested_at = None
    document.upload_expires_at = now + timedelta(seconds=_settings().upload_url_ttl_seconds)
    document.updated_at = now
    _flush(session)
    _audit(
        session,
        principal,
        "document.version_created",
        document,
        version=document.version,
        content_type=content_type,
        size_bytes=body.size_bytes,
    )
    return DocumentCreated(document=to_out(document), upload=_upload_for(document))


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise PreconditionFailed("the document changed while you were changing it; retry") from None


def parse_metadata_filters(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    """`key:value` query values → pairs; 400 for anything else."""
    pairs = []
    for raw in values or []:
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise BadRequest("metadata filters look like metadata=key:value", details={"metadata": raw[:100]})
        pairs.append((key, value))
    return tuple(pairs)


def as_filter_time(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None
