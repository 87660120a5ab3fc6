"""Turning a job's evidence into a recorded, signed verdict.

`accept()` is the one door evidence goes through: it claims the attestation's nonce with a
conditional update (a second report for the same attestation is a replay and changes
nothing), checks the evidence bytes against the digest the job committed to in its
result, appraises them under the policy the attestation started with, and records the
verdict with its EAR token. A failed verdict makes the pool untrusted (or the model failed)
and publishes `AttestationFailed`, which the alert pipeline turns into a Slack alert. Every
verdict is appended to the audit chain.

`job_failed()` gives a verdict to an attestation whose job never produced evidence (crash,
timeout, refused by the backend): that is a failure too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from lotabots import audit, aws, config, events
from lotabots.attestation import ear, service, verifier
from lotabots.attestation import repository as repo
from lotabots.attestation.evidence import (
    INFERENCE_SCHEMA,
    MAX_EVIDENCE_BYTES,
    MODEL_SCHEMA,
    HardwareEvidence,
    InferenceEvidence,
    ModelEvidence,
)
from lotabots.attestation.models import Attestation, AttestationStatus, TrustState
from lotabots.attestation.policies import Policy
from lotabots.attestation.verdicts import Verdict
from lotabots.config import AuthSettings
from lotabots.db.base import as_utc, utcnow
from lotabots.jobs.errors import ResultRejected
from lotabots.jobs.models import Job
from lotabots.jobs.spec import parse_s3_uri
from lotabots.observability import logger, metrics
from lotabots.storage_keys import job_prefix

SOURCE = "lotabots.attestation"
FAILED_EVENT = "AttestationFailed"
SUBMODULE = {"hardware": "gpu-hardware", "model": "ai-model", "inference": "inference-proof"}


@dataclass(frozen=True)
class Submitted:
    """Evidence as the results path read it: bytes, where from, and the digest the job committed to."""

    raw: bytes | None
    uri: str | None
    committed_sha256: str | None
    problem: str | None = None


# --- reading evidence (results path, before the unit of work) --------------------------------


def read_evidence(job: Job, result: dict[str, Any]) -> Submitted:
    """The evidence object a job's result names; problems become claims, not exceptions."""
    uri = result.get("evidence_uri")
    sha = result.get("evidence_sha256")
    if not isinstance(uri, str) or not isinstance(sha, str):
        return Submitted(None, None, None, "the job's result names no evidence")
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError:
        return Submitted(None, uri, sha, "evidence URI is not an s3:// URI")
    if bucket != jobs_bucket() or not key.startswith(job_prefix(job.id)):
        return Submitted(None, uri, sha, "evidence lies outside this job's artifacts")
    from botocore.exceptions import ClientError

    try:
        obj = aws.client("s3").get_object(Bucket=bucket, Key=key)
        if int(obj.get("ContentLength") or 0) > MAX_EVIDENCE_BYTES:
            return Submitted(None, uri, sha, f"evidence is larger than {MAX_EVIDENCE_BYTES} bytes")
        raw = obj["Body"].read(MAX_EVIDENCE_BYTES + 1)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
            return Submitted(None, uri, sha, "evidence object does not exist")
        raise
    return Submitted(raw, uri, sha)


def jobs_bucket() -> str:
    from lotabots.jobs import service as jobs

    return jobs.settings().artifacts_bucket


# --- the door -------------------------------------------------------------------------------


def accept(
    session: Session, attestation_id: str, submitted: Submitted, *, received_at: datetime | None = None
) -> str:
    """Appraise evidence for a pending attestation; returns the outcome (for logs and tests)."""
    attestation = repo.get(session, attestation_id)
    if attestation is None:
        logger.warning(
            "evidence for an unknown attestation; ignored", extra={"attestation_id": attestation_id}
        )
        return "unknown_attestation"
    if not repo.claim_nonce(session, attestation.id, attestation.nonce):
        metrics.add_metric(name="AttestationReplays", unit="Count", value=1)
        logger.warning(
            "evidence for an attestation whose nonce was already used; ignored",
            extra={"attestation_id": attestation.id},
        )
        return "replay"
    session.refresh(attestation)
    policy = Policy.model_validate(attestation.policy_document)
    verdict = Verdict()
    raw = submitted.raw
    if submitted.problem or raw is None:
        verdict.add("evidence_integrity", "fail", submitted.problem or "no evidence", "sourced-data")
    elif hashlib.sha256(raw).hexdigest() != submitted.committed_sha256:
        verdict.add(
            "evidence_integrity",
            "fail",
            "evidence bytes differ from the digest the job committed to (tampered after the job wrote it)",
            "sourced-data",
        )
    else:
        verdict = _appraise(session, attestation, policy, raw, received_at or utcnow())
    record(session, attestation, policy, verdict, raw=raw, uri=submitted.uri)
    return "passed" if verdict.passed else "failed"


def _context(session: Session, attestation: Attestation, received_at: datetime) -> verifier.Context:
    pinned: tuple[str, ...] = ()
    if attestation.type == "hardware":
        pool = repo.pool(session, attestation.subject)
        pinned = tuple(pool.known_gpu_uuids or []) if pool else ()
    return verifier.Context(
        attestation_id=attestation.id,
        nonce=attestation.nonce,
        nonce_expires_at=as_utc(attestation.nonce_expires_at),
        received_at=as_utc(received_at),
        pinned_uuids=pinned,
    )


def _parse(model: type[Any], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        return f"evidence is malformed: {exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}"


def _appraise(
    session: Session, attestation: Attestation, policy: Policy, raw: bytes, received_at: datetime
) -> Verdict:
    ctx = _context(session, attestation, received_at)
    kind = attestation.type
    parsed = _parse(
        {"hardware": HardwareEvidence, "model": ModelEvidence, "inference": InferenceEvidence}[kind], raw
    )
    if isinstance(parsed, str):
        verdict = Verdict()
        verdict.add("evidence_schema", "fail", parsed, "sourced-data")
        return verdict
    if kind == "hardware":
        return verifier.appraise_hardware(parsed, ctx, policy)
    if kind == "model":
        from lotabots.attestation import model_check

        return model_check.appraise_model(
            parsed, ctx, policy, service.get_model(session, attestation.subject)
        )
    return _appraise_inference(parsed, ctx)


def _appraise_inference(evidence: InferenceEvidence, ctx: verifier.Context) -> Verdict:
    verdict = Verdict()
    if not verifier.check_binding(
        verdict, ctx, evidence.attestation_id, evidence.nonce, evidence.schema_, INFERENCE_SCHEMA
    ):
        return verdict
    if evidence.error:
        verdict.add("proofs", "fail", evidence.error, "runtime-opaque")
        return verdict
    if not evidence.checked:
        verdict.add("proofs", "fail", "no proof was checked", "runtime-opaque")
        return verdict
    bad = [c for c in evidence.checked if not c.get("valid")]
    if bad:
        first = bad[0]
        verdict.add(
            "proofs",
            "fail",
            f"{len(bad)} of {len(evidence.checked)} sampled chunks do not match their TOPLOC proofs"
            f" (chunk {first.get('chunk')}: {first.get('detail')}): not the attested model or precision",
            "runtime-opaque",
        )
    else:
        verdict.add(
            "proofs",
            "pass",
            f"{len(evidence.checked)} sampled chunks match their TOPLOC proofs"
            f" (model {evidence.model_digest})",
            "runtime-opaque",
        )
    verdict.assurance = "consistent" if not bad else "none"
    return verdict


# --- recording ----------------------------------------------------------------------------------


def record(
    session: Session,
    attestation: Attestation,
    policy: Policy,
    verdict: Verdict,
    *,
    raw: bytes | None,
    uri: str | None,
) -> None:
    """Store the verdict, sign its token, update the subject, audit it; alert on failure."""
    if not verdict.passed:
        verdict.assurance = "none"
    digest_b64 = ear.evidence_digest(raw) if raw is not None else None
    status = AttestationStatus.PASSED if verdict.passed else AttestationStatus.FAILED
    auth = config.load(AuthSettings)
    claims = ear.build_claims(
        issuer=auth.jwt_issuer,
        audience=service.settings().token_audience,
        attestation_id=attestation.id,
        submodule=SUBMODULE[attestation.type],
        status=verdict.ear_status,
        vector=verdict.trustworthiness_vector(),
        claims=[c.as_dict() for c in verdict.claims],
        assurance=verdict.assurance,
        policy_id=f"{attestation.policy_name}@{attestation.policy_version}",
        nonce=attestation.nonce,
        evidence_sha256_b64=digest_b64,
        subject=f"{attestation.type}:{attestation.subject}",
        ttl_s=policy.token_ttl_s,
        verifier_build=_build(),
    )
    token, kid = ear.sign(claims)
    moved = repo.finish(
        session,
        attestation.id,
        status=status,
        ear_status=verdict.ear_status,
        assurance=verdict.assurance,
        claims=[c.as_dict() for c in verdict.claims],
        facts={k: v for k, v in (verdict.facts or {}).items() if not k.startswith("_")} or None,
        evidence_uri=uri,
        evidence_sha256=hashlib.sha256(raw).hexdigest() if raw is not None else None,
        evidence_bytes=len(raw) if raw is not None else None,
        token=token,
        token_kid=kid,
    )
    if not moved:
        return
    summary = {
        "attestation_id": attestation.id,
        "status": status.value,
        "ear_status": verdict.ear_status,
        "assurance": verdict.assurance,
        "at": utcnow().isoformat(),
        "reason": verdict.reasons() or None,
    }
    if attestation.type == "hardware":
        _update_pool(session, attestation, verdict, summary)
    elif attestation.type == "model":
        from lotabots.attestation import model_check

        model_check.update_model(session, attestation, verdict)
    audit.record(
        session,
        actor_id=attestation.requested_by,
        action=f"attestation.{status.value}",
        target_type=f"attestation_{attestation.type}",
        target_id=attestation.id,
        details={
            "subject": attestation.subject,
            "ear_status": verdict.ear_status,
            "assurance": verdict.assurance,
            "policy": f"{attestation.policy_name}@{attestation.policy_version}",
            "evidence_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None,
            "failed": [c.name for c in verdict.failed],
        },
    )
    metrics.add_metric(
        name="AttestationsPassed" if verdict.passed else "AttestationsFailed", unit="Count", value=1
    )
    if not verdict.passed:
        events.publish(
            SOURCE,
            FAILED_EVENT,
            {
                "attestation_id": attestation.id,
                "kind": attestation.type,
                "subject": attestation.subject,
                "policy": attestation.policy_name,
                "device": (verdict.facts or {}).get("uuid"),
                "reason": verdict.reasons() or "attestation failed",
            },
        )
    logger.info(
        "attestation verdict",
        extra={"attestation_id": attestation.id, "verdict": status.value, "assurance": verdict.assurance},
    )


def _update_pool(
    session: Session, attestation: Attestation, verdict: Verdict, summary: dict[str, Any]
) -> None:
    pool = repo.pool(session, attestation.subject)
    if pool is None:
        return
    pool.last_attestation_id = attestation.id
    pool.last_verdict = summary
    if verdict.passed:
        pool.trust_state = TrustState.TRUSTED
        pool.trust_reason = f"attestation {attestation.id} passed ({verdict.assurance})"
        uuid = (verdict.facts or {}).get("uuid")
        if uuid and not pool.known_gpu_uuids:
            pool.known_gpu_uuids = [uuid]
    else:
        pool.trust_state = TrustState.UNTRUSTED
        pool.trust_reason = f"attestation {attestation.id} failed: {verdict.reasons()}"[:2000]


def job_failed(session: Session, job: Job, error: str) -> None:
    """An attestation job that ended without evidence: the attestation fails with that reason."""
    attestation_id = (job.input or {}).get("attestation_id")
    attestation = repo.get(session, str(attestation_id)) if attestation_id else None
    if attestation is None or attestation.status != AttestationStatus.PENDING:
        return
    if not repo.claim_nonce(session, attestation.id, attestation.nonce):
        return
    verdict = Verdict()
    verdict.add("job", "fail", f"the attestation job failed: {error[:500]}", "sourced-data")
    record(
        session, attestation, Policy.model_validate(attestation.policy_document), verdict, raw=None, uri=None
    )


def expire(session: Session, attestation: Attestation) -> None:
    """A pending attestation whose nonce expired with no evidence: it fails, and says so."""
    if not repo.claim_nonce(session, attestation.id, attestation.nonce):
        return
    verdict = Verdict()
    verdict.add(
        "freshness",
        "fail",
        f"no evidence arrived before the nonce expired (job {attestation.job_id} cancelled, lost or stuck)",
        "sourced-data",
    )
    record(
        session, attestation, Policy.model_validate(attestation.policy_document), verdict, raw=None, uri=None
    )


def _build() -> str:
    import lotabots

    return f"lotabots-verifier {getattr(lotabots, '__version__', '0')}"


# --- the results path -----------------------------------------------------------------------------


class AttestationRecorder:
    """`jobs.results` recorder for the three attestation job types."""

    def verify(self, job: Job, result: dict[str, Any]) -> Submitted:
        if result.get("attestation_id") != (job.input or {}).get("attestation_id"):
            raise ResultRejected("result answers another attestation than the job's")
        return read_evidence(job, result)

    def store(self, session: Session, job: Job, prepared: Submitted) -> dict[str, Any]:
        attestation_id = str((job.input or {}).get("attestation_id"))
        outcome = accept(session, attestation_id, prepared)
        return {"attestation_id": attestation_id, "verdict": outcome}


def evidence_document(session: Session, attestation: Attestation) -> dict[str, Any]:
    """The stored evidence of an attestation, as JSON (for GET .../evidence)."""
    from lotabots.errors import Conflict, NotFound

    if not attestation.evidence_uri or not attestation.evidence_sha256:
        raise NotFound(f"attestation {attestation.id} has no evidence", code="evidence_not_found")
    from botocore.exceptions import ClientError

    bucket, key = parse_s3_uri(attestation.evidence_uri)
    try:
        raw = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read(MAX_EVIDENCE_BYTES + 1)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
            raise NotFound(
                f"the evidence of attestation {attestation.id} is no longer stored", code="evidence_not_found"
            ) from None
        raise
    if hashlib.sha256(raw).hexdigest() != attestation.evidence_sha256:
        raise Conflict(
            f"the evidence of attestation {attestation.id} changed after it was appraised",
            code="evidence_changed",
        )
    document: dict[str, Any] = json.loads(raw)
    return document


__all__ = ["MODEL_SCHEMA", "AttestationRecorder", "accept", "job_failed", "read_evidence"]
