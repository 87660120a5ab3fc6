"""Anchors: the chain's head written to an S3 bucket with Object Lock (compliance mode).

An anchor says "the first N entries of the chain hash to H". Its key carries exactly that,
`audit-anchors/<N, 12 digits>-<H>.json`, so keys sort by N and verifying needs one
ListObjectVersions page per 1,000 anchors, no GET per anchor. The body repeats it with the
head entry's seq and time, for people reading the bucket.

Why this cannot be rewritten without detection:
- compliance-mode retention: no principal, root included, can delete or shorten the retention
  of a stored version before it expires;
- the writer uses `If-None-Match: *`, so it never stores a second version of a key; a second
  version (someone overwrote the key) or a delete marker (someone "deleted" it) shows in the
  version listing and is reported, while the locked original is still read;
- S3's LastModified, not the writer, says when an anchor was made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lotabots import aws
from lotabots.storage_keys import AUDIT_ANCHORS_PREFIX, anchor_key, parse_anchor_key

# S3 answers a failed `If-None-Match: *` with 412, or 409 while a concurrent write of the key is in flight.
_ALREADY_WRITTEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


@dataclass(frozen=True)
class Anchor:
    key: str
    entries: int
    head: str
    anchored_at: datetime  # S3 LastModified of the first stored version
    versions: int = 1
    delete_marked: bool = False


@dataclass
class AnchorListing:
    bucket: str
    anchors: list[Anchor] = field(default_factory=list)  # ascending by entries
    foreign_keys: list[str] = field(default_factory=list)  # objects under the prefix that are no anchor

    @property
    def latest(self) -> Anchor | None:
        return self.anchors[-1] if self.anchors else None


def list_anchors(bucket: str) -> AnchorListing:
    """Every anchor in the bucket, from its version listing (delete markers and overwrites included)."""
    versions: dict[str, list[dict[str, Any]]] = {}
    marked: set[str] = set()
    paginator = aws.client("s3").get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=AUDIT_ANCHORS_PREFIX):
        for version in page.get("Versions", []):
            versions.setdefault(version["Key"], []).append(version)
        for marker in page.get("DeleteMarkers", []):
            marked.add(marker["Key"])
    listing = AnchorListing(bucket=bucket)
    for key in sorted(versions.keys() | marked):
        parsed = parse_anchor_key(key)
        stored = versions.get(key, [])
        if parsed is None or not stored:
            listing.foreign_keys.append(key)
            continue
        listing.anchors.append(
            Anchor(
                key=key,
                entries=parsed[0],
                head=parsed[1],
                anchored_at=min(v["LastModified"] for v in stored),
                versions=len(stored),
                delete_marked=key in marked,
            )
        )
    listing.anchors.sort(key=lambda a: (a.entries, a.key))
    return listing


def write_anchor(
    bucket: str, *, entries: int, head: str, head_seq: int, head_at: datetime, stage: str
) -> tuple[str, bool]:
    """Store the anchor for (entries, head); returns (key, False) when it already exists."""
    from botocore.exceptions import ClientError  # imported on use: every audit writer imports this module

    key = anchor_key(entries, head)
    body = {
        "format": 1,
        "stage": stage,
        "entries": entries,
        "head": head,
        "head_seq": head_seq,
        "head_at": head_at.isoformat(),
    }
    try:
        aws.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(body, sort_keys=True).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
            # Object Lock uploads need an integrity checksum.
            ChecksumAlgorithm="SHA256",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _ALREADY_WRITTEN:
            return key, False
        raise
    return key, True
