"""A job's artifacts in S3, written so that a crash never leaves a result that looks complete.

Large outputs are uploaded under `jobs/.partial/<job_id>/<run>/` (`lotabots.storage_keys`: one
literal prefix, so a bucket lifecycle rule can expire leftovers) and copied to their final key only once fully
written; `result.json` (which names them with size and SHA-256) is written after them and
`report.json` last, then the completion event is published. A reader that finds
`result.json` can therefore check every object it names.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from lotabots import aws
from lotabots.jobs.spec import parse_s3_uri, s3_uri
from lotabots.observability import logger
from lotabots.storage_keys import REPORT_NAME, RESULT_NAME, job_partial_prefix, job_prefix


@dataclass(frozen=True)
class StoredObject:
    uri: str
    sha256: str
    size: int


def read_text(uri: str) -> str:
    bucket, key = parse_s3_uri(uri)
    body: bytes = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body.decode("utf-8")


class ArtifactStore:
    def __init__(self, bucket: str, job_id: str, run_id: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = job_prefix(job_id)
        self.run_id = run_id or uuid.uuid4().hex
        self.partial_prefix = job_partial_prefix(job_id, self.run_id)
        self._partials: list[str] = []

    @property
    def _s3(self) -> Any:
        return aws.client("s3")

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, ServerSideEncryption="AES256"
        )

    def write_partial(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Upload under the run's temporary prefix; returns the temporary key."""
        key = f"{self.partial_prefix}{name}"
        self._put(key, data, content_type)
        self._partials.append(key)
        return key

    def promote(self, partial_key: str, name: str, data_sha256: str, size: int) -> StoredObject:
        """Copy a complete temporary object to its final key."""
        final_key = f"{self.prefix}{name}"
        self._s3.copy_object(
            Bucket=self.bucket,
            Key=final_key,
            CopySource={"Bucket": self.bucket, "Key": partial_key},
            ServerSideEncryption="AES256",
            MetadataDirective="COPY",
        )
        return StoredObject(uri=s3_uri(self.bucket, final_key), sha256=data_sha256, size=size)

    def store(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> StoredObject:
        partial = self.write_partial(name, data, content_type)
        return self.promote(partial, name, hashlib.sha256(data).hexdigest(), len(data))

    def write_result(self, result: dict[str, Any]) -> str:
        """`result.json`, written after every object it names."""
        key = f"{self.prefix}{RESULT_NAME}"
        self._put(key, json.dumps(result, separators=(",", ":")).encode(), "application/json")
        return s3_uri(self.bucket, key)

    def write_report(self, report: dict[str, Any]) -> str:
        key = f"{self.prefix}{REPORT_NAME}"
        self._put(key, json.dumps(report, separators=(",", ":")).encode(), "application/json")
        return s3_uri(self.bucket, key)

    def clean_partials(self) -> None:
        for key in self._partials:
            try:
                self._s3.delete_object(Bucket=self.bucket, Key=key)
            except Exception:  # leftovers under jobs/.partial/ are harmless: a lifecycle rule expires them
                logger.warning("could not delete a temporary object", extra={"key": key})
        self._partials.clear()
