"""The documents API contract (pydantic models are the OpenAPI spec) and its event shapes."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from lotabots import config
from lotabots.config import DocumentSettings
from lotabots.documents.models import DocumentStatus

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_METADATA_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_METADATA_VALUE_CHARS = 256

ContentType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=100)]


def clean_title(value: str) -> str:
    """NFC-normalised, trimmed, no control or bidi-override characters. Path-like text is fine:
    titles are data, never part of an object key or a file path."""
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("title must not be empty")
    if len(value) > 200:
        raise ValueError("title must be at most 200 characters")
    if _CONTROL.search(value):
        raise ValueError("title must not contain control characters")
    return value


def check_metadata(value: dict[str, str]) -> dict[str, str]:
    """A flat string → string map within the configured key count and serialized size."""
    settings = config.load(DocumentSettings)
    if len(value) > settings.max_metadata_keys:
        raise ValueError(f"metadata may have at most {settings.max_metadata_keys} keys")
    for key, item in value.items():
        if not _METADATA_KEY.match(key):
            raise ValueError(
                f"metadata key {key[:70]!r} must be 1-64 letters, digits or _.:- and start with a "
                "letter or digit"
            )
        if len(item) > MAX_METADATA_VALUE_CHARS:
            raise ValueError(f"metadata value of {key!r} must be at most {MAX_METADATA_VALUE_CHARS} chars")
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > settings.max_metadata_bytes:
        raise ValueError(
            f"metadata is {size} bytes as JSON; the limit is {settings.max_metadata_bytes} bytes"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentCreate(_Strict):
    """Declares an upload: the presigned POST will only accept exactly this."""

    title: str = Field(description="Display title; any text (it never becomes part of a key or path)")
    content_type: ContentType = Field(description="One of the allowed types, e.g. application/pdf")
    size_bytes: int = Field(gt=0, description="Exact size of the file that will be uploaded")
    metadata: dict[str, Annotated[str, Field(strict=True)]] = Field(
        default_factory=dict, description="Flat string → string map (≤ 32 keys, ≤ 2 KiB as JSON)"
    )

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return clean_title(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        return check_metadata(value)


class NewVersion(_Strict):
    """Declares the upload of a new version of an existing document."""

    content_type: ContentType
    size_bytes: int = Field(gt=0)


class DocumentPatch(_Strict):
    """Changes title and/or metadata (metadata is replaced as a whole)."""

    title: str | None = None
    metadata: dict[str, Annotated[str, Field(strict=True)]] | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else clean_title(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else check_metadata(value)

    @model_validator(mode="after")
    def _require_a_change(self) -> DocumentPatch:
        if self.title is None and self.metadata is None:
            raise ValueError("give title and/or metadata to change")
        return self


class DocumentOut(BaseModel):
    id: str
    owner_id: str
    title: str
    status: DocumentStatus
    reason: str | None = Field(None, description="Why the upload was rejected")
    content_type: str
    size_bytes: int
    sha256: str | None = None
    metadata: dict[str, str]
    version: int = Field(description="Content version: the number of uploads so far")
    revision: int = Field(description="Changes so far; the ETag, for If-Match")
    word_count: int | None = None
    page_count: int | None = None
    excerpt: str | None = None
    text_truncated: bool = Field(False, description="The stored text is not all of the document's text")
    extraction_note: str | None = Field(
        None,
        description="Why the text of a ready document is partial (a page, size or time budget of "
        "extraction ran out, or pages could not be read)",
    )
    created_at: datetime
    updated_at: datetime
    ingested_at: datetime | None = None
    download_url: str | None = Field(None, description="Short-lived presigned GET, when ready")


class UploadOut(BaseModel):
    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str] = Field(description="Form fields to send, in order, before the file field")
    expires_in: int = Field(description="Seconds the upload form stays valid")
    expires_at: datetime
    max_bytes: int


class DocumentCreated(BaseModel):
    document: DocumentOut
    upload: UploadOut


class DocumentList(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None = None


class DocumentIngestedDetail(BaseModel):
    """Detail of the `DocumentIngested` event (source `lotabots.documents`)."""

    document_id: str
    owner_id: str
    version: int
    content_type: str
    sha256: str
    size_bytes: int
    word_count: int
    page_count: int | None


# --- S3 notifications arriving through SQS (Parser models for the ingest worker) -------------
# Lenient on purpose: real S3 sends more fields than moto, and only these are needed.


class S3BucketRef(BaseModel):
    name: str


class S3ObjectRef(BaseModel):
    key: str
    size: int | None = None
    eTag: str | None = None
    sequencer: str | None = None


class S3Entity(BaseModel):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3Record(BaseModel):
    eventSource: Literal["aws:s3"] = "aws:s3"
    eventName: str
    s3: S3Entity


class S3Notification(BaseModel):
    Records: list[S3Record]


class S3TestEvent(BaseModel):
    """Sent once when a notification configuration is saved; carries no object."""

    Event: Literal["s3:TestEvent"]
    Bucket: str | None = None
