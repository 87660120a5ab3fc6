"""AIOps API: `GET /health` (public) and the `/aiops/*` reads (operators, auditors, admins).

The schedules (`aiops_monitor`: health, logs, anomaly; `aiops_planner`: forecast, report) write
what these routes read; see docs/aiops.md.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import health, service
from lotabots.aiops.repository import AnomalyFilter, ClusterFilter
from lotabots.aiops.schemas import AnomalyPage, ForecastOut, HealthRunOut, LogClusterPage, ReportOut
from lotabots.http import create_resolver, http_handler
from lotabots.openapi import route_responses
from lotabots.timestamps import UtcDateTime

app = create_resolver()

_ERRORS = {
    400: "a cursor that no previous page returned",
    401: "not signed in",
    403: "only operators, auditors and admins read AIOps results",
    404: "the schedule has not produced this yet",
    422: "the request failed validation (details name the fields)",
}


def _responses(model: type[BaseModel], *errors: int) -> dict[int, OpenAPIResponse]:
    return route_responses(200, model, _ERRORS, *errors)


@app.get("/health", summary="Platform health", tags=["platform"])
def get_health() -> Response[health.HealthReport]:
    result = health.report()
    return Response(
        status_code=200 if result.status == "ok" else 503,
        content_type=content_types.APPLICATION_JSON,
        body=result,
    )


@app.get(
    "/aiops/health",
    summary="The latest health run, every check",
    tags=["aiops"],
    responses=_responses(HealthRunOut, 401, 403, 404),
)
def get_aiops_health() -> HealthRunOut:
    return service.latest_health()


@app.get(
    "/aiops/log-clusters",
    summary="Log templates per function, most recently seen first",
    tags=["aiops"],
    responses=_responses(LogClusterPage, 400, 401, 403, 422),
)
def list_log_clusters(
    function: Annotated[str | None, Query(max_length=64)] = None,
    level: Annotated[str | None, Query(pattern="^(?i)(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> LogClusterPage:
    return service.list_clusters(ClusterFilter(function=function, level=level), limit=limit, cursor=cursor)


@app.get(
    "/aiops/anomalies",
    summary="Anomalous points of the platform's metric series, newest first",
    tags=["aiops"],
    responses=_responses(AnomalyPage, 400, 401, 403, 422),
)
def list_anomalies(
    series: Annotated[str | None, Query(max_length=160)] = None,
    since: Annotated[UtcDateTime | None, Query(description="inclusive; no offset means UTC")] = None,
    until: Annotated[UtcDateTime | None, Query(description="exclusive; no offset means UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AnomalyPage:
    filters = AnomalyFilter(series=series, since=since, until=until)
    return service.list_anomalies(filters, limit=limit, cursor=cursor)


@app.get(
    "/aiops/forecasts",
    summary="The latest 24 h forecast, its scaling plan and chart",
    tags=["aiops"],
    responses=_responses(ForecastOut, 401, 403, 404),
)
def get_forecast() -> ForecastOut:
    return service.latest_forecast()


@app.get(
    "/aiops/reports/latest",
    summary="The latest daily report and its Slack delivery state",
    tags=["aiops"],
    responses=_responses(ReportOut, 401, 403, 404),
)
def get_latest_report() -> ReportOut:
    return service.latest_report()


lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
