"""Alerting API: alerts (post, list, get, ack, resolve, delivery log) and silences."""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.alerts import service
from lotabots.alerts.schemas import (
    AlertActionIn,
    AlertBatch,
    AlertIn,
    AlertList,
    AlertOut,
    AlertStateFilter,
    DeliveryList,
    PostAlertsResult,
    SilenceIn,
    SilenceList,
    SilenceOut,
    SilenceState,
)
from lotabots.db import session_scope
from lotabots.http import create_resolver, current_principal, http_handler
from lotabots.observability import metrics

app = create_resolver()

AlertId = Annotated[str, Path(min_length=1, max_length=64, description="alert id or fingerprint")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=300, description="next_cursor of the previous page")]


@app.post(
    "/alerts",
    summary="Post one alert or a list of alerts (Alertmanager semantics: dedup by fingerprint)",
    tags=["alerts"],
)
def post_alerts(body: Annotated[AlertIn | AlertBatch, Body()]) -> PostAlertsResult:
    with session_scope() as session:
        result = service.post_alerts(session, body)
    metrics.add_metric(name="AlertsReceived", unit="Count", value=result.accepted)
    return result


@app.get("/alerts", summary="List alerts by state", tags=["alerts"])
def list_alerts(
    state: Annotated[AlertStateFilter, Query()] = "active",
    severity: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> AlertList:
    with session_scope() as session:
        return service.list_alerts(session, state=state, severity=severity, limit=limit, cursor=cursor)


@app.get("/alerts/<alert_id>", summary="One alert", tags=["alerts"])
def get_alert(alert_id: AlertId) -> AlertOut:
    with session_scope() as session:
        return service.get_alert(session, alert_id)


@app.get("/alerts/<alert_id>/deliveries", summary="Delivery log of an alert", tags=["alerts"])
def get_deliveries(alert_id: AlertId, limit: Limit = 100, cursor: Cursor = None) -> DeliveryList:
    with session_scope() as session:
        return service.deliveries(session, alert_id, limit=limit, cursor=cursor)


@app.post("/alerts/<alert_id>/ack", summary="Acknowledge a firing alert (stops repeats)", tags=["alerts"])
def acknowledge(alert_id: AlertId, body: Annotated[AlertActionIn | None, Body()] = None) -> AlertOut:
    principal = current_principal(app)
    with session_scope() as session:
        return service.acknowledge(session, alert_id, principal, body.comment if body else None)


@app.post("/alerts/<alert_id>/resolve", summary="Resolve an alert by hand", tags=["alerts"])
def resolve(alert_id: AlertId, body: Annotated[AlertActionIn | None, Body()] = None) -> AlertOut:
    principal = current_principal(app)
    with session_scope() as session:
        return service.resolve(session, alert_id, principal, body.comment if body else None)


@app.post("/silences", summary="Create a silence", tags=["silences"])
def create_silence(body: SilenceIn) -> Response[SilenceOut]:
    principal = current_principal(app)
    with session_scope() as session:
        silence = service.create_silence(session, body, principal)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=silence)


@app.get("/silences", summary="List silences", tags=["silences"])
def list_silences(
    state: Annotated[SilenceState | None, Query()] = None, limit: Limit = 100, cursor: Cursor = None
) -> SilenceList:
    with session_scope() as session:
        return service.list_silences(session, state=state, limit=limit, cursor=cursor)


@app.delete("/silences/<silence_id>", summary="Expire a silence", tags=["silences"])
def expire_silence(silence_id: Annotated[str, Path(min_length=1, max_length=64)]) -> SilenceOut:
    principal = current_principal(app)
    with session_scope() as session:
        return service.expire_silence(session, silence_id, principal)


lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
