"""Audit log API (auditor and admin): search the hash-chained log, verify it against its anchors.

A function of its own rather than a route of `attestations`: its role may read the database
and list the anchor bucket, nothing else (see docs/audit.md).
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.audit import service
from lotabots.audit.repository import AuditFilter
from lotabots.audit.schemas import AuditPage, VerifyResult
from lotabots.http import create_resolver, http_handler
from lotabots.observability import metrics
from lotabots.openapi import route_responses
from lotabots.timestamps import UtcDateTime

app = create_resolver()

_ERRORS = {
    400: "a cursor that no previous page returned",
    401: "not signed in",
    403: "only auditors and admins read the audit log",
    422: "the request failed validation (details name the fields), or a time outside the calendar",
}


def _responses(model: type[AuditPage] | type[VerifyResult], *errors: int) -> dict[int, OpenAPIResponse]:
    return route_responses(200, model, _ERRORS, *errors)


@app.get(
    "/audit",
    summary="Search the audit log, newest first",
    tags=["audit"],
    responses=_responses(AuditPage, 400, 401, 403, 422),
)
def list_audit(
    action: Annotated[
        str | None, Query(max_length=64, description="exact action, or a prefix ending in * (document.*)")
    ] = None,
    actor: Annotated[str | None, Query(max_length=64, description="actor id (a user id, cli, ...)")] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[UtcDateTime | None, Query(description="inclusive; no offset means UTC")] = None,
    until: Annotated[UtcDateTime | None, Query(description="exclusive; no offset means UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPage:
    filters = AuditFilter(
        action=action,
        actor_id=actor,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    return service.list_entries(filters, limit=limit, cursor=cursor)


@app.get(
    "/audit/verify",
    summary="Recompute the hash chain and compare it with the Object Lock anchors",
    description="200 whether or not the log is valid: read `valid`, `first_bad_entry` and `problems`.",
    tags=["audit"],
    responses=_responses(VerifyResult, 401, 403),
)
def verify_audit() -> VerifyResult:
    result = service.verify_log()
    metrics.add_metric(name="AuditVerifications", unit="Count", value=1)
    metrics.add_metric(name="AuditVerificationsInvalid", unit="Count", value=0 if result.valid else 1)
    return result


lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
