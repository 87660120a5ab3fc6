"""AIOps API: `GET /health` (public). The AIOps issue adds /aiops/* here."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import health
from lotabots.http import create_resolver, http_handler

app = create_resolver()


@app.get("/health", summary="Platform health", tags=["platform"])
def get_health() -> Response[health.HealthReport]:
    result = health.report()
    return Response(
        status_code=200 if result.status == "ok" else 503,
        content_type=content_types.APPLICATION_JSON,
        body=result,
    )


lambda_handler = http_handler(app)
