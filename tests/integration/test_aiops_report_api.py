"""The daily report (Slack down then up: delivered once, never dropped) and the `/aiops/*` routes
through the aiops API function's real handler: who may read them, cursor pages, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.slack_mock import MockSlack
from lotabots import access, config
from lotabots.access import Principal
from lotabots.aiops import sources
from lotabots.aiops.models import Anomaly, LogCluster
from lotabots.db import session_scope
from tests.support.aiops import findings, powertools_line, put_logs, run_schedule
from tests.support.api import api_event, invoke, load_function
from tests.support.jobs import ADMIN, AUDITOR, MEMBER, OPERATOR

pytestmark = pytest.mark.usefixtures("db")
ROUTES = [
    "/aiops/health",
    "/aiops/log-clusters",
    "/aiops/anomalies",
    "/aiops/forecasts",
    "/aiops/reports/latest",
]


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockSlack]:
    with MockSlack() as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_API_URL", server.base_url)
        monkeypatch.setenv("SLACK_SERVER_ERROR_RETRIES", "0")
        monkeypatch.setenv("AIOPS_REPORT_CHANNEL", "C0AIOPS01")
        config.reset()
        sources.reset()
        yield server
    config.reset()


def _get(path: str, principal: Principal | None = OPERATOR, **query: str) -> tuple[int, Any]:
    status, _, body = invoke("aiops", api_event("GET", path, principal=principal, query=query or None))
    return status, body


def test_every_aiops_route_is_in_the_access_map() -> None:
    app = load_function("aiops").app
    served = {(r.method, r.openapi_path) for r in app._static_routes + app._dynamic_routes}
    assert served == {k for k in access.ROUTE_ROLES if k[1].startswith("/aiops") or k[1] == "/health"}


@pytest.mark.parametrize("path", ROUTES)
def test_members_are_refused_and_anonymous_callers_too(path: str) -> None:
    assert _get(path, MEMBER)[0] == 403
    assert _get(path, None)[0] == 401


def test_report_slack_down_then_up_is_delivered_once(aws_env: dict[str, str], slack: MockSlack) -> None:
    put_logs("documents", [powertools_line("ERROR", f"ingest failed for {i}") for i in range(3)])
    run_schedule("logs")
    run_schedule("forecast")
    slack.down("server_error")
    first = run_schedule("report")
    assert first["created"] is True and first["pending"] == [first["day"]]
    assert slack.shared_files() == []
    status, report = _get("/aiops/reports/latest", AUDITOR)
    assert status == 200 and report["delivery_status"] == "pending" and report["attempts"] == 1
    assert report["summary"]["top_error_clusters"][0]["count"] == 3
    assert [f["kind"] for f in findings(aws_env)] == ["report_delivery"]
    slack.up()
    second = run_schedule("report")
    assert second["created"] is False and second["delivered"] == [first["day"]]
    (shared,) = slack.shared_files()
    assert f"aiops-report:{first['day']}" in shared.text
    assert slack.uploads[shared.files[0]["id"]][:4] == b"\x89PNG"
    third = run_schedule("report")  # nothing pending: nothing posted again
    assert third["delivered"] == [] and len(slack.shared_files()) == 1
    resolved = findings(aws_env)
    assert [(f["kind"], f["status"]) for f in resolved] == [("report_delivery", "resolved")]
    assert _get("/aiops/reports/latest")[1]["delivery_status"] == "delivered"


def test_a_post_whose_answer_was_lost_is_not_posted_twice(aws_env: dict[str, str], slack: MockSlack) -> None:
    slack.fail_next("drop", method="files.completeUploadExternal", process=True)
    first = run_schedule("report")
    assert first["pending"] == [first["day"]] and len(slack.shared_files()) == 1
    second = run_schedule("report")
    assert second["delivered"] == [first["day"]] and len(slack.shared_files()) == 1


def test_report_without_a_slack_token_is_logged(aws_env: dict[str, str]) -> None:
    result = run_schedule("report")
    assert result["logged"] == [result["day"]]
    assert _get("/aiops/reports/latest")[1]["delivery_status"] == "logged"


def _seed_clusters(n: int) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    with session_scope() as session:
        for i in range(n):
            session.add(
                LogCluster(
                    function="documents" if i % 2 else "auth",
                    template_id=f"t{i}",
                    template=f"template {i} <*>",
                    level="ERROR" if i % 3 == 0 else "INFO",
                    count=i + 1,
                    first_seen=base,
                    last_seen=base + timedelta(minutes=i // 2),  # ties on last_seen: the id breaks them
                    examples=[f"line {i}"],
                )
            )


def test_log_clusters_pages_filters_and_cursor_errors() -> None:
    _seed_clusters(7)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, page = _get("/aiops/log-clusters", AUDITOR, **query)
        assert status == 200, page
        seen += [item["template_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(f"t{i}" for i in range(7)) and len(seen) == 7
    status, errors = _get("/aiops/log-clusters", ADMIN, level="error")
    assert status == 200 and {i["level"] for i in errors["items"]} == {"ERROR"}
    assert _get("/aiops/log-clusters", OPERATOR, function="auth")[1]["items"][0]["function"] == "auth"
    assert _get("/aiops/log-clusters", OPERATOR, cursor="garbage!")[1]["code"] == "invalid_cursor"
    assert _get("/aiops/log-clusters", OPERATOR, level="LOUD")[0] == 422
    assert _get("/aiops/log-clusters", OPERATOR, limit="0")[0] == 422


def test_anomalies_filter_by_series_and_time() -> None:
    base = datetime(2026, 11, 20, tzinfo=UTC)
    with session_scope() as session:
        for i in range(5):
            session.add(Anomaly(series="documents/errors", at=base + timedelta(hours=i), value=i, score=0.95))
        session.add(Anomaly(series="auth/duration", at=base, value=900.0, score=0.99))
    status, page = _get("/aiops/anomalies", AUDITOR, series="documents/errors", since="2026-11-20T02:00:00Z")
    assert status == 200 and [i["value"] for i in page["items"]] == [4.0, 3.0, 2.0]
    assert _get("/aiops/anomalies", OPERATOR, since="yesterday")[0] == 422
    assert len(_get("/aiops/anomalies", OPERATOR)[1]["items"]) == 6


@pytest.mark.parametrize("path", ["/aiops/health", "/aiops/forecasts", "/aiops/reports/latest"])
def test_nothing_yet_is_a_clear_404(path: str) -> None:
    status, body = _get(path)
    assert status == 404 and body["code"] == "not_found" and "schedule" in body["message"]


def test_health_and_forecast_routes_after_their_runs(aws_env: dict[str, str]) -> None:
    run_schedule("health")
    status, health = _get("/aiops/health", AUDITOR)
    assert status == 200 and {c["name"] for c in health["checks"]} >= {"database", "api", "dlq:gpu-jobs"}
    run_schedule("forecast")
    status, forecast = _get("/aiops/forecasts", OPERATOR)
    assert status == 200 and forecast["plan"]["mode"] == "dry-run"
    assert forecast["chart_url"].startswith("https://")
