"""AIOps on the local stack, as a new user meets it: traffic (`devstack.traffic`), then the
schedules run at once (`devstack.invoke`): the routes show log clusters, anomalies, a forecast
with its scaling plan and the report, and the Slack mock received the report with its chart.

A stack of its own: Slack goes to the mock (SLACK_BOT_TOKEN + SLACK_API_URL) and metric periods
are one minute, so the traffic's minute is complete (and scored) within a minute."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from devstack.slack_mock import MockSlack
from tests.e2e.harness import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Stack, client, local_stack, login, stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-aiops")]


@pytest.fixture(scope="module")
def slack() -> Iterator[MockSlack]:
    with MockSlack() as server:
        yield server


@pytest.fixture(scope="module")
def aiops_env(slack: MockSlack) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-e2e",
        "SLACK_API_URL": slack.base_url,
        "AIOPS_REPORT_CHANNEL": "C0AIOPSE2E",
        "AIOPS_METRIC_PERIOD_SECONDS": "60",
        # Run only on demand (devstack.invoke), so each step's result is the one checked.
        "LOTABOTS_DISABLED_SCHEDULES": "aiops-health,aiops-logs,aiops-anomaly,aiops-forecast,aiops-report",
    }


@pytest.fixture(scope="module")
def aiops_stack(aiops_env: dict[str, str]) -> Iterator[Stack]:
    with local_stack(aiops_env) as running:
        yield running


def _python(stack: Stack, env: dict[str, str], *args: str) -> str:
    full = {**stack_env(stack.state_dir, 0), **env, "LOTABOTS_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL}
    full["LOTABOTS_BOOTSTRAP_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_traffic_then_schedules_show_clusters_anomalies_forecast_and_report(
    aiops_stack: Stack, aiops_env: dict[str, str], slack: MockSlack
) -> None:
    traffic = _python(
        aiops_stack, aiops_env, "devstack.traffic", "--url", aiops_stack.url, "--requests", "60"
    )
    assert "requests by status" in traffic
    time.sleep(61 - time.time() % 60 + 3)  # the traffic's minute is complete: its metrics can be scored
    out = _python(
        aiops_stack,
        aiops_env,
        "devstack.invoke",
        "aiops-health",
        "aiops-logs",
        "aiops-anomaly",
        "aiops-forecast",
        "aiops-report",
    )
    results = {
        json.loads(line)["schedule"]: json.loads(line)["result"]
        for line in out.splitlines()
        if line.startswith('{"schedule"')
    }
    assert set(results) == {"aiops-health", "aiops-logs", "aiops-anomaly", "aiops-forecast", "aiops-report"}
    assert results["aiops-logs"]["lines"] > 0

    with client(aiops_stack.url) as http:
        admin = {"Authorization": f"Bearer {login(http, ADMIN_EMAIL, ADMIN_PASSWORD)['access_token']}"}
        clusters = http.get("/aiops/log-clusters", headers=admin).json()
        assert clusters["items"] and all(c["count"] > 0 and c["examples"] for c in clusters["items"])
        anomalies = http.get("/aiops/anomalies", headers=admin).json()
        assert anomalies["items"], results["aiops-anomaly"]
        forecast = http.get("/aiops/forecasts", headers=admin).json()
        assert forecast["series"] and forecast["plan"]["mode"] == "dry-run"
        assert http.get(forecast["chart_url"]).content[:4] == b"\x89PNG"
        report = http.get("/aiops/reports/latest", headers=admin).json()
        assert report["delivery_status"] == "delivered", report
        health = http.get("/aiops/health", headers=admin)
        assert health.status_code == 200 and health.json()["checks"]
    (shared,) = [m for m in slack.shared_files() if "aiops-report" in m.text]
    assert slack.uploads[shared.files[0]["id"]][:4] == b"\x89PNG"
