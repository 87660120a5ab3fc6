"""Attestation API: hardware, model and inference attestations, their evidence and signed
result tokens; appraisal policies; GPU pools; registered models."""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.attestation import appraisal, service
from lotabots.attestation.ear import MEDIA_TYPE
from lotabots.attestation.models import AttestationStatus
from lotabots.attestation.policies import Policy
from lotabots.attestation.schemas import (
    AttestationList,
    AttestationOut,
    AttestationStarted,
    AttestationType,
    HardwareAttestationRequest,
    InferenceAttestationRequest,
    ModelAttestationRequest,
    ModelCreate,
    ModelList,
    ModelOut,
    PolicyList,
    PolicyOut,
    PoolList,
    PoolOut,
    PoolPut,
    TokenOut,
)
from lotabots.db import session_scope
from lotabots.errors import Conflict
from lotabots.http import create_resolver, current_principal, http_handler
from lotabots.jobs import queueing as job_queue

app = create_resolver()

AttestationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
ModelId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=300, description="next_cursor of the previous page")]


def _accepted(body: AttestationStarted) -> Response[AttestationStarted]:
    if body.job_id:
        job_queue.enqueue_quietly(body.job_id)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": f"/attestations/{body.id}"},
    )


_STARTED: dict[int, Any] = {
    202: {"description": "started", "content": {"application/json": {"model": AttestationStarted}}}
}


def _created_or_changed(model: type[Any]) -> dict[int, Any]:
    """A PUT that creates (201) or replaces (200) the named resource."""
    content = {"application/json": {"model": model}}
    return {
        200: {"description": "changed", "content": content},
        201: {"description": "created", "content": content},
    }


@app.post(
    "/attestations/hardware",
    summary="Attest a GPU pool: a fresh nonce and a challenge job on the pool's backend",
    tags=["attestations"],
    responses=_STARTED,
)
def attest_hardware(request: HardwareAttestationRequest) -> Response[AttestationStarted]:
    principal = current_principal(app)
    with session_scope() as session:
        body = service.started(service.start_hardware(session, principal, request.pool, request.policy))
    return _accepted(body)


@app.post(
    "/attestations/models",
    summary="Attest a registered model: signed digests and golden outputs",
    tags=["attestations"],
    responses=_STARTED,
)
def attest_model(request: ModelAttestationRequest) -> Response[AttestationStarted]:
    principal = current_principal(app)
    with session_scope() as session:
        body = service.started(
            service.start_model(session, principal, request.model_id, request.policy, request.pool)
        )
    return _accepted(body)


@app.post(
    "/attestations/inference",
    summary="Re-check a sample of an embed job's TOPLOC proofs on the CPU",
    tags=["attestations"],
    responses=_STARTED,
)
def attest_inference(request: InferenceAttestationRequest) -> Response[AttestationStarted]:
    principal = current_principal(app)
    with session_scope() as session:
        body = service.started(service.start_inference(session, principal, request.job_id, request.sample))
    return _accepted(body)


@app.get("/attestations", summary="List attestations, newest first", tags=["attestations"])
def list_attestations(
    type: Annotated[AttestationType | None, Query()] = None,
    subject: Annotated[str | None, Query(max_length=128, description="pool name, model id or job id")] = None,
    pool: Annotated[
        str | None, Query(max_length=64, description="hardware attestations of this pool")
    ] = None,
    status: Annotated[AttestationStatus | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AttestationList:
    if pool:
        type, subject = "hardware", pool
    with session_scope() as session:
        return service.list_attestations(
            session,
            type_=type,
            subject=subject,
            status=status.value if status else None,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )


@app.get("/attestations/<attestation_id>", summary="An attestation and its verdict", tags=["attestations"])
def get_attestation(attestation_id: AttestationId) -> AttestationOut:
    with session_scope() as session:
        return service.attestation_out(service.get_attestation(session, attestation_id))


@app.get(
    "/attestations/<attestation_id>/evidence", summary="The evidence as appraised", tags=["attestations"]
)
def get_evidence(attestation_id: AttestationId) -> dict[str, Any]:
    with session_scope() as session:
        return appraisal.evidence_document(session, service.get_attestation(session, attestation_id))


@app.get(
    "/attestations/<attestation_id>/token",
    summary="The verdict as a signed EAR token (verify offline with /.well-known/jwks.json)",
    tags=["attestations"],
)
def get_token(attestation_id: AttestationId) -> TokenOut:
    with session_scope() as session:
        row = service.get_attestation(session, attestation_id)
        if not row.token or not row.token_kid:
            raise Conflict(f"attestation {attestation_id} has no verdict yet", code="attestation_pending")
        return TokenOut(
            token=row.token, kid=row.token_kid, media_type=MEDIA_TYPE, ear_status=row.ear_status or "none"
        )


@app.get(
    "/attestation-policies", summary="Appraisal policies (built-in and stored)", tags=["attestation-policies"]
)
def list_policies(limit: Limit = 50, cursor: Cursor = None) -> PolicyList:
    with session_scope() as session:
        return service.list_policies(session, limit=limit, cursor=cursor)


@app.get("/attestation-policies/<name>", summary="An appraisal policy", tags=["attestation-policies"])
def get_policy(name: Name) -> PolicyOut:
    with session_scope() as session:
        return service.get_policy(session, name)


@app.put(
    "/attestation-policies/<name>",
    summary="Create or replace a policy (every change is a new version, audited)",
    tags=["attestation-policies"],
    responses=_created_or_changed(PolicyOut),
)
def put_policy(name: Name, document: Annotated[Policy, Body()]) -> Response[PolicyOut]:
    principal = current_principal(app)
    with session_scope() as session:
        body, created = service.put_policy(session, principal, name, document)
    return Response(
        status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=body
    )


@app.get("/gpu-pools", summary="GPU pools with trust state, last verdict and utilisation", tags=["gpu-pools"])
def list_pools(limit: Limit = 50, cursor: Cursor = None) -> PoolList:
    with session_scope() as session:
        return service.list_pools(session, limit=limit, cursor=cursor)


@app.get("/gpu-pools/<name>", summary="A GPU pool", tags=["gpu-pools"])
def get_pool(name: Name) -> PoolOut:
    with session_scope() as session:
        return service.pool_out(session, service.get_pool(session, name))


@app.put(
    "/gpu-pools/<name>",
    summary="Create or change a GPU pool",
    tags=["gpu-pools"],
    responses=_created_or_changed(PoolOut),
)
def put_pool(name: Name, request: PoolPut) -> Response[PoolOut]:
    principal = current_principal(app)
    with session_scope() as session:
        pool, created = service.put_pool(session, principal, name, request)
        body = service.pool_out(session, pool)
    return Response(
        status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=body
    )


@app.post(
    "/models",
    summary="Register a model (its first attestation records and signs its baseline)",
    tags=["models"],
    responses={201: {"description": "registered", "content": {"application/json": {"model": ModelOut}}}},
)
def register_model(request: ModelCreate) -> Response[ModelOut]:
    principal = current_principal(app)
    with session_scope() as session:
        body = service.model_out(service.register_model(session, principal, request))
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": f"/models/{body.id}"},
    )


@app.get("/models", summary="Registered models, newest first", tags=["models"])
def list_models(
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ModelList:
    with session_scope() as session:
        return service.list_models(session, limit=limit, cursor=cursor)


@app.get("/models/<model_id>", summary="A registered model", tags=["models"])
def get_model(model_id: ModelId) -> ModelOut:
    with session_scope() as session:
        return service.model_out(service.get_model(session, model_id))


lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
