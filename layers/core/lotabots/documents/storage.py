"""Document objects in S3: presigned POST/GET, streaming reads, quarantine, removal.

Keys (`documents/<owner>/<document id>/<version>`) come from `lotabots.storage_keys`: built
from ids only, never from the title, so no user text can shape a key or a path.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from lotabots import aws, config, storage_keys
from lotabots.config import DocumentSettings


def _settings() -> DocumentSettings:
    return config.load(DocumentSettings)


def _s3() -> Any:
    return aws.client("s3")


def presign_upload(key: str, content_type: str, size_bytes: int, expires_in: int) -> dict[str, Any]:
    """A presigned POST that only accepts this key, this Content-Type and 1..size_bytes bytes."""
    return dict(
        _s3().generate_presigned_post(
            Bucket=_settings().bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, size_bytes],
            ],
            ExpiresIn=expires_in,
        )
    )


def _content_disposition(filename: str) -> str:
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\/;' else "_" for c in filename)
    return (
        f"attachment; filename=\"{ascii_name[:150] or 'document'}\"; filename*=UTF-8''{quote(filename[:150])}"
    )


def presign_download(key: str, filename: str, content_type: str, expires_in: int) -> str:
    return str(
        _s3().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": _settings().bucket,
                "Key": key,
                "ResponseContentDisposition": _content_disposition(filename),
                "ResponseContentType": content_type,
            },
            ExpiresIn=expires_in,
        )
    )


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str | None


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound", "412", "PreconditionFailed"}


def head(key: str) -> ObjectInfo | None:
    """Size, ETag and Content-Type of an object; None when it does not exist (any more)."""
    try:
        response = _s3().head_object(Bucket=_settings().bucket, Key=key)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise
    return ObjectInfo(
        key=key,
        size=int(response["ContentLength"]),
        etag=str(response["ETag"]).strip('"'),
        content_type=response.get("ContentType"),
    )


def iter_object(info: ObjectInfo, chunk_bytes: int) -> Generator[bytes, None, None] | None:
    """Stream the exact object `info` describes (If-Match), or None if it was replaced/removed."""
    try:
        response = _s3().get_object(Bucket=_settings().bucket, Key=info.key, IfMatch=f'"{info.etag}"')
    except ClientError as exc:
        if _missing(exc):
            return None
        raise
    body = response["Body"]
    return _chunks(body, chunk_bytes)


def _chunks(body: Any, chunk_bytes: int) -> Generator[bytes, None, None]:
    try:
        yield from body.iter_chunks(chunk_size=chunk_bytes)
    finally:
        body.close()


def quarantine(info: ObjectInfo) -> str | None:
    """Move a rejected object out of `documents/` (or delete it when quarantine is off).

    Returns the quarantine key, if any. The object is only removed if it is still the one
    that was checked, so a newer upload to the same key is never lost.
    """
    settings = _settings()
    current = head(info.key)
    if current is None or current.etag != info.etag:
        return None
    target: str | None = None
    if settings.quarantine_prefix:
        target = storage_keys.quarantine_key(info.key, settings.quarantine_prefix)
        _s3().copy_object(
            Bucket=settings.bucket,
            Key=target,
            CopySource={"Bucket": settings.bucket, "Key": info.key},
            CopySourceIfMatch=f'"{info.etag}"',
            MetadataDirective="COPY",
        )
    _s3().delete_object(Bucket=settings.bucket, Key=info.key)
    return target


def delete_prefix(prefix: str, *, keep: str | None = None) -> int:
    """Delete every object under `prefix` except `keep`; returns how many were deleted."""
    settings = _settings()
    paginator = _s3().get_paginator("list_objects_v2")
    deleted = 0
    for page in paginator.paginate(Bucket=settings.bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", []) if item["Key"] != keep]
        if not keys:
            continue
        response = _s3().delete_objects(Bucket=settings.bucket, Delete={"Objects": keys, "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            raise RuntimeError(f"could not delete {len(errors)} object(s) under {prefix}: {errors[0]}")
        deleted += len(keys)
    return deleted
