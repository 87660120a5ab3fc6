"""Every S3 key layout of the platform, in one place: who writes under which prefix, who reads.

Product code, the GPU jobs (`gpu_jobs` ships this package: the Batch image copies
`layers/core/lotabots`, the Modal image adds it as local source), the local stack and the CDK
app (bucket notifications, lifecycle rules, IAM object ARNs) all build keys and prefixes here,
never from string literals. Keys are built from ids only, never from user text.

Documents bucket
  `documents/<owner, URL-quoted>/<document id>/<version>`  a browser uploads (presigned POST);
      the S3 event on this prefix feeds ingest; the documents API reads and deletes it
  `quarantine/<owner>/<document id>/<version>`  ingest moves a rejected upload here
      (`DOCUMENT_QUARANTINE_PREFIX`; expires after 30 days)
Artifacts bucket
  `jobs/<job id>/input.txt`  dispatch stages an embed job's text; inference proofs re-read it
  `jobs/<job id>/<output>`, `result.json`, `report.json`  the GPU job writes (result after
      every output it names, report last); job results, embeddings and attestation read
  `jobs/.partial/<job id>/<run>/<output>`  a GPU job's uploads before they are complete
      (expire after a day)
  `aiops/...`  the AIOps schedules' learned state, charts and reports (`AIOPS_PREFIX`,
      layout in lotabots/aiops; versioned with the bucket)
Audit anchor bucket (Object Lock)
  `audit-anchors/<entries, 12 digits>-<head hash>.json`  written by the anchoring schedule
Access-log bucket
  one prefix per logged bucket (`ACCESS_LOG_PREFIXES`)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

DOCUMENTS_PREFIX = "documents/"
# The default of DocumentSettings.quarantine_prefix (DOCUMENT_QUARANTINE_PREFIX); the stack sets it.
QUARANTINE_PREFIX = "quarantine/"
JOBS_PREFIX = "jobs/"
JOBS_PARTIAL_PREFIX = f"{JOBS_PREFIX}.partial/"
AUDIT_ANCHORS_PREFIX = "audit-anchors/"
# The default of AIOpsSettings.prefix (AIOPS_PREFIX).
AIOPS_PREFIX = "aiops/"

JOB_INPUT_NAME = "input.txt"
RESULT_NAME = "result.json"
REPORT_NAME = "report.json"

# Server access logs of each bucket, in the access-log bucket.
ACCESS_LOG_PREFIXES = {
    "documents": "documents/",
    "artifacts": "artifacts/",
    "audit_anchors": "audit-anchors/",
}

_ANCHOR_KEY = re.compile(rf"^{re.escape(AUDIT_ANCHORS_PREFIX)}(\d{{12}})-([0-9a-f]{{64}})\.json$")


# --- documents --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentKey:
    owner_id: str
    document_id: str
    version: int


def document_key(owner_id: str, document_id: str, version: int) -> str:
    return f"{document_prefix(owner_id, document_id)}{version}"


def document_prefix(owner_id: str, document_id: str) -> str:
    """Every version of one document."""
    return f"{DOCUMENTS_PREFIX}{quote(owner_id, safe='')}/{document_id}/"


def parse_document_key(key: str) -> DocumentKey | None:
    """The parts of a document key (already URL-decoded), or None if it is not one."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != DOCUMENTS_PREFIX.rstrip("/") or not parts[3].isdigit():
        return None
    owner, document_id = unquote(parts[1]), parts[2]
    if not owner or not document_id:
        return None
    return DocumentKey(owner, document_id, int(parts[3]))


def quarantine_key(document_object_key: str, quarantine_prefix: str = QUARANTINE_PREFIX) -> str:
    """Where a rejected upload goes: the same owner/id/version under the quarantine prefix."""
    return f"{quarantine_prefix}{document_object_key.removeprefix(DOCUMENTS_PREFIX)}"


# --- GPU job artifacts ------------------------------------------------------------------------


def job_prefix(job_id: str) -> str:
    """Where every artifact of a job lives in the artifacts bucket."""
    return f"{JOBS_PREFIX}{job_id}/"


def job_key(job_id: str, name: str) -> str:
    return f"{job_prefix(job_id)}{name}"


def job_input_key(job_id: str) -> str:
    """The text an embed job reads (staged by dispatch)."""
    return job_key(job_id, JOB_INPUT_NAME)


def job_partial_prefix(job_id: str, run_id: str) -> str:
    """One run's uploads before they are complete (a lifecycle rule expires leftovers)."""
    return f"{JOBS_PARTIAL_PREFIX}{job_id}/{run_id}/"


# --- audit anchors ----------------------------------------------------------------------------


def anchor_key(entries: int, head: str) -> str:
    return f"{AUDIT_ANCHORS_PREFIX}{entries:012d}-{head}.json"


def parse_anchor_key(key: str) -> tuple[int, str] | None:
    """(entries, head) of an anchor key, or None for anything else under the prefix."""
    match = _ANCHOR_KEY.match(key)
    return (int(match.group(1)), match.group(2)) if match else None
