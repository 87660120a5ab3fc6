"""Attestation service: policies, GPU pools, models, and starting attestations.

Starting one creates the attestation (its nonce and expiry) and its GPU job in one unit of
work; the caller enqueues the job after the commit, as the jobs API does. Verdicts are
recorded by `appraisal` when the job's result arrives.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from lotabots import audit, config
from lotabots.access import Principal
from lotabots.attestation import repository as repo
from lotabots.attestation.models import (
    Attestation,
    AttestationPolicy,
    AttestationStatus,
    AttestedModel,
    GpuPool,
    TrustState,
)
from lotabots.attestation.policies import BUILT_IN, Policy
from lotabots.attestation.schemas import (
    AttestationList,
    AttestationOut,
    AttestationStarted,
    ClaimOut,
    ModelCreate,
    ModelList,
    ModelOut,
    PolicyList,
    PolicyOut,
    PoolList,
    PoolOut,
    PoolPut,
    Utilisation,
    VerdictSummary,
)
from lotabots.config import AttestationSettings
from lotabots.db.base import as_utc, new_id, utcnow
from lotabots.errors import Conflict, NotFound, UnprocessableEntity
from lotabots.jobs import creation as job_creation
from lotabots.jobs import service as jobs
from lotabots.jobs.models import Job, JobStatus
from lotabots.jobs.spec import s3_uri
from lotabots.observability import logger, metrics
from lotabots.pagination import decode_cursor, decode_time_cursor, page
from lotabots.storage_keys import job_input_key

HARDWARE_JOB = "attest_hardware"
MODEL_JOB = "attest_model"
INFERENCE_JOB = "attest_inference"
JOB_TYPES = frozenset({HARDWARE_JOB, MODEL_JOB, INFERENCE_JOB})


def settings() -> AttestationSettings:
    return config.load(AttestationSettings)


def aware(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


# --- policies ---------------------------------------------------------------------------------


def resolve_policy(session: Session, name: str) -> tuple[Policy, int, bool]:
    """(policy, version, built in); 422 for a name that is neither stored nor built in."""
    row = repo.policy(session, name)
    if row is not None:
        return Policy.model_validate(row.document), row.version, False
    if name in BUILT_IN:
        return BUILT_IN[name], 0, True
    raise UnprocessableEntity(f"no attestation policy named {name!r}", code="unknown_policy")


def policy_out(
    name: str, policy: Policy, version: int, built_in: bool, row: AttestationPolicy | None = None
) -> PolicyOut:
    return PolicyOut(
        name=name,
        version=version,
        built_in=built_in,
        document=policy,
        updated_by=row.updated_by if row else None,
        updated_at=aware(row.updated_at) if row else None,
    )


def get_policy(session: Session, name: str) -> PolicyOut:
    row = repo.policy(session, name)
    if row is None and name not in BUILT_IN:
        raise NotFound(f"no attestation policy named {name!r}", code="policy_not_found")
    policy, version, built_in = resolve_policy(session, name)
    return policy_out(name, policy, version, built_in, row)


def list_policies(session: Session, *, limit: int, cursor: str | None) -> PolicyList:
    """Built-in and stored policies by name (a stored one replaces the built-in of its name).
    Stored ones are read one page at a time; the built-ins are a handful, merged in."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    stored = repo.policies(session, after=after, limit=limit + 1)
    replaced = repo.stored_policy_names(session, list(BUILT_IN))
    items = [
        policy_out(name, policy, 0, True)
        for name, policy in BUILT_IN.items()
        if name not in replaced and (after is None or name > after)
    ]
    items += [policy_out(r.name, Policy.model_validate(r.document), r.version, False, r) for r in stored]
    found, next_cursor = page(sorted(items, key=lambda p: p.name), limit, lambda p: (p.name,))
    return PolicyList(items=found, next_cursor=next_cursor)


def put_policy(session: Session, principal: Principal, name: str, document: Policy) -> tuple[PolicyOut, bool]:
    """Create or replace a policy; every change bumps its version and is audited."""
    row = repo.policy(session, name)
    data = document.model_dump(mode="json")
    created = row is None
    if row is None:
        row = AttestationPolicy(name=name, version=1, document=data, updated_by=principal.user_id)
        session.add(row)
    elif row.document != data:
        row.version += 1
        row.document = data
        row.updated_by = principal.user_id
    else:
        return policy_out(name, document, row.version, False, row), False
    session.flush()
    audit.record(
        session,
        actor_id=principal.user_id,
        action="attestation_policy.put",
        target_type="attestation_policy",
        target_id=name,
        details={"version": row.version, "document": data},
    )
    return policy_out(name, document, row.version, False, row), created


# --- pools ------------------------------------------------------------------------------------


def _utilisation(session: Session, name: str) -> Utilisation:
    finished = [job for job in repo.pool_jobs(session, name) if job.type not in JOB_TYPES]
    readings = [job.gpu_used or {} for job in finished]
    means = [float(r["utilization_mean_pct"]) for r in readings if "utilization_mean_pct" in r]
    maxima = [float(r["utilization_max_pct"]) for r in readings if "utilization_max_pct" in r]
    peaks = [float(r["peak_memory_used_mib"]) for r in readings if "peak_memory_used_mib" in r]
    return Utilisation(
        jobs=len(finished),
        utilization_mean_pct=round(sum(means) / len(means), 1) if means else None,
        utilization_max_pct=max(maxima) if maxima else None,
        peak_memory_used_mib=max(peaks) if peaks else None,
        last_job_at=aware(finished[0].finished_at) if finished else None,
    )


def pool_out(session: Session, pool: GpuPool) -> PoolOut:
    verdict = VerdictSummary.model_validate(pool.last_verdict) if pool.last_verdict else None
    return PoolOut(
        name=pool.name,
        backend=pool.backend,  # type: ignore[arg-type]
        gpu_type=pool.gpu_type,
        policy=pool.policy,
        reattest_every_s=pool.reattest_every_s,
        description=pool.description,
        trust_state=TrustState(pool.trust_state),
        trust_reason=pool.trust_reason,
        known_gpu_uuids=list(pool.known_gpu_uuids or []),
        last_verdict=verdict,
        utilisation=_utilisation(session, pool.name),
        created_at=aware(pool.created_at),  # type: ignore[arg-type]
        updated_at=aware(pool.updated_at),  # type: ignore[arg-type]
    )


def get_pool(session: Session, name: str) -> GpuPool:
    pool = repo.pool(session, name)
    if pool is None:
        raise NotFound(f"no GPU pool named {name!r}", code="pool_not_found")
    return pool


def list_pools(session: Session, *, limit: int, cursor: str | None) -> PoolList:
    """Pools by name."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    found, next_cursor = page(repo.pools(session, after=after, limit=limit + 1), limit, lambda p: (p.name,))
    return PoolList(items=[pool_out(session, p) for p in found], next_cursor=next_cursor)


def put_pool(session: Session, principal: Principal, name: str, request: PoolPut) -> tuple[GpuPool, bool]:
    """Create or change a pool. A change of backend, GPU type, policy or known GPUs makes the
    pool unverified again: its earlier verdicts were about other hardware or other rules."""
    resolve_policy(session, request.policy)
    pool = repo.pool(session, name)
    created = pool is None
    if pool is None:
        pool = GpuPool(
            name=name,
            backend=request.backend,
            gpu_type=request.gpu_type,
            policy=request.policy,
            reattest_every_s=request.reattest_every_s,
            description=request.description,
            trust_state=TrustState.UNVERIFIED,
            trust_reason="never attested",
            known_gpu_uuids=list(request.known_gpu_uuids or []),
            updated_by=principal.user_id,
        )
        session.add(pool)
        changed = ["created"]
    else:
        changed = []
        for field in ("backend", "gpu_type", "policy", "reattest_every_s", "description"):
            if getattr(pool, field) != getattr(request, field):
                changed.append(field)
                setattr(pool, field, getattr(request, field))
        if (
            request.known_gpu_uuids is not None
            and list(pool.known_gpu_uuids or []) != request.known_gpu_uuids
        ):
            changed.append("known_gpu_uuids")
            pool.known_gpu_uuids = list(request.known_gpu_uuids)
        if set(changed) & {"backend", "gpu_type", "policy", "known_gpu_uuids"}:
            pool.trust_state = TrustState.UNVERIFIED
            pool.trust_reason = f"changed ({', '.join(changed)}); attest again"
        if changed:
            pool.updated_by = principal.user_id
    session.flush()
    if changed:
        audit.record(
            session,
            actor_id=principal.user_id,
            action="gpu_pool.put",
            target_type="gpu_pool",
            target_id=name,
            details={"changed": changed, **request.model_dump(mode="json")},
        )
    return pool, created


def dispatch_refusal(session: Session, job: Job) -> str | None:
    """Why dispatch must not send this job to its pool (None: it may). Attestation jobs always go."""
    if not job.pool or job.type in JOB_TYPES:
        return None
    pool = repo.pool(session, job.pool)
    if pool is None:
        return f"GPU pool {job.pool} no longer exists"
    if pool.trust_state != TrustState.TRUSTED:
        why = pool.trust_reason or pool.trust_state
        return (
            f"GPU pool {pool.name} is {pool.trust_state} ({why});"
            " jobs run there again once it passes attestation"
        )
    return None


def embed_model_baseline(session: Session) -> dict[str, Any] | None:
    """The file digests of the embed model's last passing attestation, which embed jobs enforce
    before loading it (None: never attested; the job falls back to its packaged registry)."""
    model = repo.latest_model_named(session, settings().embed_model_name)
    if model is None or not model.baseline_files or not model.last_passed_attestation_id:
        return None
    return {
        "attestation_id": model.last_passed_attestation_id,
        "model_id": model.id,
        "files": model.baseline_files,
    }


# --- starting attestations ----------------------------------------------------------------


def _new_attestation(
    session: Session, *, type_: str, subject: str, policy_name: str, principal: Principal | None, source: str
) -> tuple[Attestation, Policy]:
    policy, version, _ = resolve_policy(session, policy_name)
    now = utcnow()
    attestation = Attestation(
        id=new_id(),
        type=type_,
        subject=subject,
        status=AttestationStatus.PENDING,
        policy_name=policy_name,
        policy_version=version,
        policy_document=policy.model_dump(mode="json"),
        nonce=secrets.token_urlsafe(32),
        nonce_expires_at=now + timedelta(seconds=policy.nonce_ttl_s),
        requested_by=principal.user_id if principal else None,
        source=source,
    )
    session.add(attestation)
    session.flush()
    return attestation, policy


def _attach_job(
    session: Session,
    attestation: Attestation,
    policy: Policy,
    *,
    job_type: str,
    job_input: dict[str, Any],
    backend: str | None,
    gpu: str | None,
    pool: str | None,
) -> Job:
    job = job_creation.create_internal_job(
        session,
        job_type=job_type,
        job_input=job_input,
        backend=backend,
        gpu=gpu,
        pool=pool,
        timeout_s=policy.nonce_ttl_s + settings().job_grace_seconds,
        requested_by=attestation.requested_by,
        source="attestation",
        dedupe_key=f"attestation:{attestation.id}",
    )
    attestation.job_id = job.id
    session.flush()
    return job


def start_hardware(
    session: Session,
    principal: Principal | None,
    pool_name: str,
    policy_name: str | None,
    *,
    source: str = "api",
) -> Attestation:
    pool = get_pool(session, pool_name)
    attestation, policy = _new_attestation(
        session,
        type_="hardware",
        subject=pool.name,
        policy_name=policy_name or pool.policy,
        principal=principal,
        source=source,
    )
    _attach_job(
        session,
        attestation,
        policy,
        job_type=HARDWARE_JOB,
        job_input={
            "attestation_id": attestation.id,
            "nonce": attestation.nonce,
            "pool": pool.name,
            "dtype": policy.challenge_dtype,
            "cells": policy.challenge_cells,
            "min_n_cpu": policy.min_challenge_n_cpu,
            "collect_nvidia_cc": policy.require_confidential_computing,
        },
        backend=pool.backend,
        gpu=pool.gpu_type,
        pool=pool.name,
    )
    pool.last_attempt_at = utcnow()
    metrics.add_metric(name="AttestationsStarted", unit="Count", value=1)
    logger.info("hardware attestation started", extra={"attestation_id": attestation.id, "pool": pool.name})
    return attestation


def start_model(
    session: Session, principal: Principal, model_id: str, policy_name: str | None, pool_name: str | None
) -> Attestation:
    model = get_model(session, model_id)
    pool = get_pool(session, pool_name) if pool_name else None
    attestation, policy = _new_attestation(
        session,
        type_="model",
        subject=model.id,
        policy_name=policy_name or "default",
        principal=principal,
        source="api",
    )
    job_input: dict[str, Any] = {
        "attestation_id": attestation.id,
        "nonce": attestation.nonce,
        "model_id": model.id,
        "artifact_uri": model.artifact_uri,
        "golden_inputs": list(model.golden_inputs),
    }
    if model.signature:
        job_input["signature"] = model.signature
        job_input["public_key_pem"] = model.signing_public_key
    _attach_job(
        session,
        attestation,
        policy,
        job_type=MODEL_JOB,
        job_input=job_input,
        backend=pool.backend if pool else None,
        gpu=pool.gpu_type if pool else None,
        pool=pool.name if pool else None,
    )
    model.last_attestation_id = attestation.id
    return attestation


def start_inference(session: Session, principal: Principal, job_id: str, sample: int) -> Attestation:
    target = jobs.get_job(session, job_id)
    if target.type != "embed" or target.status != JobStatus.SUCCEEDED:
        raise Conflict(
            f"job {job_id} is a {target.status} {target.type} job;"
            " only succeeded embed jobs carry inference proofs",
            code="job_not_provable",
        )
    result = target.result or {}
    proofs_uri = result.get("proofs_uri")
    text_uri = s3_uri(jobs.settings().artifacts_bucket, job_input_key(target.id))
    if not proofs_uri:
        raise Conflict(f"job {job_id} wrote no TOPLOC proofs", code="no_inference_proofs")
    attestation, policy = _new_attestation(
        session, type_="inference", subject=job_id, policy_name="default", principal=principal, source="api"
    )
    _attach_job(
        session,
        attestation,
        policy,
        job_type=INFERENCE_JOB,
        job_input={
            "attestation_id": attestation.id,
            "nonce": attestation.nonce,
            "target_job_id": job_id,
            "proofs_uri": proofs_uri,
            "text_uri": text_uri,
            "sample": sample,
            "model_baseline": embed_model_baseline(session),
        },
        backend=None,
        gpu=None,
        pool=None,
    )
    return attestation


def started(attestation: Attestation) -> AttestationStarted:
    return AttestationStarted(
        id=attestation.id,
        type=attestation.type,  # type: ignore[arg-type]
        subject=attestation.subject,
        status=AttestationStatus(attestation.status),
        nonce=attestation.nonce,
        nonce_expires_at=aware(attestation.nonce_expires_at),  # type: ignore[arg-type]
        job_id=attestation.job_id,
    )


def reattest_due(session: Session, now: datetime | None = None) -> list[tuple[str, str]]:
    """The schedule: first, attestations whose nonce expired (plus the job grace) without evidence
    fail (their job was cancelled, lost or is stuck); then a fresh attestation for every pool whose
    interval has passed and that has none in flight. Returns [(attestation id, job id)] to enqueue
    after the commit."""
    now = now or utcnow()
    from lotabots.attestation import appraisal

    grace = timedelta(seconds=settings().job_grace_seconds)
    for stale in repo.stale_pending(session, expired_before=now - grace):
        appraisal.expire(session, stale)
    due: list[tuple[str, str]] = []
    for pool in repo.all_pools(session):
        if pool.reattest_every_s <= 0:
            continue
        last = aware(pool.last_attempt_at)
        if last is not None and last + timedelta(seconds=pool.reattest_every_s) > now:
            continue
        if repo.pending_for(session, "hardware", pool.name, now=now) is not None:
            continue
        attestation = start_hardware(session, None, pool.name, None, source="schedule")
        due.append((attestation.id, attestation.job_id or ""))
    return due


# --- models -----------------------------------------------------------------------------------


def register_model(session: Session, principal: Principal, request: ModelCreate) -> AttestedModel:
    if repo.model_by_name(session, request.name, request.version) is not None:
        raise Conflict(f"model {request.name} {request.version} is already registered", code="model_exists")
    model = AttestedModel(
        id=new_id(),
        name=request.name,
        version=request.version,
        artifact_uri=request.artifact_uri,
        description=request.description,
        golden_inputs=list(request.golden_inputs),
        status="registered",
        registered_by=principal.user_id,
    )
    session.add(model)
    session.flush()
    audit.record(
        session,
        actor_id=principal.user_id,
        action="model.register",
        target_type="model",
        target_id=model.id,
        details=request.model_dump(mode="json"),
    )
    return model


def get_model(session: Session, model_id: str) -> AttestedModel:
    model = repo.model(session, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found", code="model_not_found")
    return model


def model_out(model: AttestedModel) -> ModelOut:
    return ModelOut(
        id=model.id,
        name=model.name,
        version=model.version,
        artifact_uri=model.artifact_uri,
        description=model.description,
        golden_inputs=list(model.golden_inputs),
        status=model.status,  # type: ignore[arg-type]
        baseline_digest=model.baseline_digest,
        baseline_files=model.baseline_files,
        signed=bool(model.signature),
        last_attestation_id=model.last_attestation_id,
        last_passed_attestation_id=model.last_passed_attestation_id,
        registered_by=model.registered_by,
        created_at=aware(model.created_at),  # type: ignore[arg-type]
        updated_at=aware(model.updated_at),  # type: ignore[arg-type]
    )


def _decode(cursor: str | None) -> tuple[datetime, str] | None:
    return decode_time_cursor(cursor) if cursor else None


def list_models(session: Session, *, limit: int, cursor: str | None) -> ModelList:
    rows = repo.list_models(session, limit=limit + 1, after=_decode(cursor))
    found, next_cursor = page(rows, limit, lambda m: (m.created_at, m.id))
    return ModelList(items=[model_out(m) for m in found], next_cursor=next_cursor)


# --- reading attestations -----------------------------------------------------------------


def get_attestation(session: Session, attestation_id: str) -> Attestation:
    found = repo.get(session, attestation_id)
    if found is None:
        raise NotFound(f"attestation {attestation_id} not found", code="attestation_not_found")
    return found


def attestation_out(row: Attestation) -> AttestationOut:
    return AttestationOut(
        id=row.id,
        type=row.type,  # type: ignore[arg-type]
        subject=row.subject,
        status=AttestationStatus(row.status),
        ear_status=row.ear_status,
        assurance=row.assurance,
        policy=row.policy_name,
        policy_version=row.policy_version,
        nonce_expires_at=aware(row.nonce_expires_at),  # type: ignore[arg-type]
        job_id=row.job_id,
        claims=[ClaimOut.model_validate(c) for c in row.claims or []],
        facts=row.facts,
        evidence_sha256=row.evidence_sha256,
        evidence_bytes=row.evidence_bytes,
        token_kid=row.token_kid,
        requested_by=row.requested_by,
        source=row.source,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        verified_at=aware(row.verified_at),
    )


def list_attestations(
    session: Session,
    *,
    type_: str | None,
    subject: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> AttestationList:
    rows = repo.list_attestations(
        session,
        type_=type_,
        subject=subject,
        status=status,
        since=since,
        until=until,
        limit=limit + 1,
        after=_decode(cursor),
    )
    found, next_cursor = page(rows, limit, lambda a: (a.created_at, a.id))
    return AttestationList(items=[attestation_out(r) for r in found], next_cursor=next_cursor)


def validate_policy_document(document: dict[str, Any]) -> Policy:
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        raise UnprocessableEntity(
            "policy document is not valid",
            code="invalid_policy",
            details=[
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
            ],
        ) from None
