"""The AIOps functions' persisted state, charts and reports in S3 (a versioned bucket).

State documents are JSON under `<prefix>state/<name>.json`. A run reads a document with its
ETag and writes it back with `If-Match` (or `If-None-Match: *` when there was none): a second
run that overlapped it (a retried schedule, a manual invoke) loses the write with
`StateConflict` instead of silently overwriting what the first one learned. A document that is
not valid JSON comes back as `Stored(body=None, problem=...)`: the caller starts afresh and
reports it as a finding. Bucket versioning keeps every earlier version for inspection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lotabots import aws, config
from lotabots.config import AIOpsSettings

# S3 answers a failed If-Match / If-None-Match with 412, or 409 while a concurrent write is in flight.
_CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class StateConflict(RuntimeError):
    """Another run wrote the state since this run read it."""


@dataclass(frozen=True)
class Stored:
    body: Any | None  # the decoded document; None when missing or unreadable
    etag: str | None  # None when there is no object
    problem: str | None = None  # why an existing object could not be read


def settings() -> AIOpsSettings:
    return config.load(AIOpsSettings)


def key(*parts: str) -> str:
    return settings().prefix + "/".join(parts)


def state_key(name: str) -> str:
    return key("state", f"{name}.json")


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def load(name: str) -> Stored:
    """The state document `name`; missing → Stored(None, None); undecodable → problem set."""
    from botocore.exceptions import ClientError

    try:
        obj = aws.client("s3").get_object(Bucket=settings().bucket, Key=state_key(name))
    except ClientError as exc:
        if _code(exc) in _MISSING:
            return Stored(None, None)
        raise
    etag = str(obj["ETag"])
    raw = obj["Body"].read()
    try:
        return Stored(json.loads(raw.decode("utf-8")), etag)
    except (UnicodeDecodeError, ValueError) as exc:
        return Stored(None, etag, f"{name} state is not valid JSON ({type(exc).__name__})")


def save(name: str, body: Any, etag: str | None) -> str:
    """Write the document if nobody else did since it was read (`etag` from `load`); new ETag."""
    from botocore.exceptions import ClientError

    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        response = aws.client("s3").put_object(
            Bucket=settings().bucket,
            Key=state_key(name),
            Body=json.dumps(body, separators=(",", ":"), allow_nan=False).encode(),
            ContentType="application/json",
            **condition,
        )
    except ClientError as exc:
        if _code(exc) in _CONFLICT:
            raise StateConflict(f"{name} state was written by another run") from None
        raise
    return str(response["ETag"])


def put_bytes(object_key: str, data: bytes, content_type: str) -> None:
    aws.client("s3").put_object(Bucket=settings().bucket, Key=object_key, Body=data, ContentType=content_type)


def get_bytes(object_key: str) -> bytes | None:
    from botocore.exceptions import ClientError

    try:
        obj = aws.client("s3").get_object(Bucket=settings().bucket, Key=object_key)
    except ClientError as exc:
        if _code(exc) in _MISSING:
            return None
        raise
    data: bytes = obj["Body"].read()
    return data


def presigned_url(object_key: str, expires_s: int = 900) -> str:
    url: str = aws.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": settings().bucket, "Key": object_key}, ExpiresIn=expires_s
    )
    return url
