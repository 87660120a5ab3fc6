"""GPU jobs API: POST /jobs, GET /jobs, GET /jobs/{job_id}, POST /jobs/{job_id}/cancel."""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.db import session_scope
from lotabots.http import create_resolver, current_principal, http_handler
from lotabots.jobs import creation, lifecycle, queueing, service
from lotabots.jobs.models import JobStatus
from lotabots.jobs.schemas import JobCreate, JobList, JobOut

app = create_resolver()
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="idempotency-key",
        min_length=1,
        max_length=128,
        pattern=r"^[!-~]+$",
        description="Printable ASCII, at most 128 characters; a retry with the same key and the "
        "same request returns the same job, a different request with it is a 409",
    ),
]


@app.post(
    "/jobs",
    summary="Queue a GPU job",
    description="202 with the queued job. `Idempotency-Key` makes retries return the same job.",
    tags=["jobs"],
    responses={202: {"description": "queued", "content": {"application/json": {"model": JobOut}}}},
)
def create_job(request: JobCreate, idempotency_key: IdempotencyKey = None) -> Response[JobOut]:
    principal = current_principal(app)
    with session_scope() as session:
        job, created = creation.create_job(session, principal, request, idempotency_key=idempotency_key)
        body = service.job_out(job)
    if created:
        queueing.enqueue_quietly(body.id)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": f"/jobs/{body.id}"},
    )


@app.get("/jobs", summary="List GPU jobs, newest first", tags=["jobs"])
def list_jobs(
    status: Annotated[JobStatus | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobList:
    with session_scope() as session:
        return service.list_jobs(
            session, status=status.value if status else None, job_type=type, limit=limit, cursor=cursor
        )


@app.get("/jobs/<job_id>", summary="A GPU job", tags=["jobs"])
def get_job(job_id: JobId) -> JobOut:
    with session_scope() as session:
        return service.job_out(service.get_job(session, job_id))


@app.post("/jobs/<job_id>/cancel", summary="Cancel a GPU job that has not ended", tags=["jobs"])
def cancel_job(job_id: JobId) -> JobOut:
    principal = current_principal(app)
    with session_scope() as session:
        job, to_stop = lifecycle.cancel_job(session, principal, job_id)
        body = service.job_out(job)
    if to_stop is not None:
        lifecycle.stop_on_backend(*to_stop)
    return body


lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
