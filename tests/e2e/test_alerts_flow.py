"""Alerting over HTTP against the local stack: an alert posted through the gateway is grouped,
flushed by the scheduled alert_flush, delivered by alert_notify (no Slack token: a `logged`
delivery) and shows in its delivery log; silences mute and unmute over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Stack, User

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
WAIT_S = 45.0


def _deliveries(http: httpx.Client, user: User, alert_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/alerts/{alert_id}/deliveries", headers=user.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _wait_for_delivery(http: httpx.Client, user: User, alert_id: str, stack: Stack) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = _deliveries(http, user, alert_id)
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"no delivery for alert {alert_id} within {WAIT_S:.0f} s:\n{stack.output()}")


def _post_alert(http: httpx.Client, user: User, alertname: str) -> str:
    response = http.post(
        "/alerts",
        json={"labels": {"alertname": alertname, "severity": "warning"}, "annotations": {"summary": "e2e"}},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["alerts"][0]["id"])


def test_posted_alert_is_delivered_to_the_log_after_group_wait(
    http: httpx.Client, make_user: Callable[..., User], stack: Stack
) -> None:
    operator = make_user(role="operator")
    alert_id = _post_alert(http, operator, f"E2E-{uuid.uuid4().hex[:8]}")
    [delivery] = _wait_for_delivery(http, operator, alert_id, stack)
    assert delivery["status"] == "logged" and delivery["kind"] == "firing"
    assert delivery["channel"] == "#lotabots-alerts"

    listed = http.get("/alerts", params={"state": "firing"}, headers=operator.headers)
    assert listed.status_code == 200
    assert alert_id in [a["id"] for a in listed.json()["items"]]
    # The alert is resolved by hand: its group sends the resolved notification.
    resolved = http.post(f"/alerts/{alert_id}/resolve", headers=operator.headers)
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    deadline = time.monotonic() + WAIT_S
    while len(_deliveries(http, operator, alert_id)) < 2:
        assert time.monotonic() < deadline, f"no resolved notification:\n{stack.output()}"
        time.sleep(0.5)
    assert [d["kind"] for d in _deliveries(http, operator, alert_id)] == ["firing", "resolved"]


def test_silence_mutes_and_expiring_it_unmutes(
    http: httpx.Client, make_user: Callable[..., User], stack: Stack
) -> None:
    operator = make_user(role="operator")
    alertname = f"E2E-silenced-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    created = http.post(
        "/silences",
        json={
            "matchers": [{"name": "alertname", "value": alertname, "isRegex": False}],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "comment": "e2e maintenance",
        },
        headers=operator.headers,
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["state"] == "active"

    alert_id = _post_alert(http, operator, alertname)
    state = http.get(f"/alerts/{alert_id}", headers=operator.headers).json()
    assert state["state"] == "silenced" and state["silenced_by"] == [silence["id"]]
    time.sleep(6)  # several flush runs (every 2 s) past group_wait: nothing is sent
    assert _deliveries(http, operator, alert_id) == []

    listed = http.get("/silences", params={"state": "active"}, headers=operator.headers)
    assert silence["id"] in [s["id"] for s in listed.json()["items"]]
    expired = http.delete(f"/silences/{silence['id']}", headers=operator.headers)
    assert expired.status_code == 200 and expired.json()["state"] == "expired"
    [delivery] = _wait_for_delivery(http, operator, alert_id, stack)
    assert delivery["status"] == "logged"


def test_bad_alerts_and_silences_are_rejected_over_http(
    http: httpx.Client, make_user: Callable[..., User]
) -> None:
    operator = make_user(role="operator")
    no_labels = http.post("/alerts", json={"labels": {}}, headers=operator.headers)
    assert no_labels.status_code == 422
    assert set(no_labels.json()) == {"message", "code", "details", "request_id"}
    bad_regex = http.post(
        "/silences",
        json={
            "matchers": [{"name": "alertname", "value": "([", "isRegex": True}],
            "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "comment": "x",
        },
        headers=operator.headers,
    )
    assert bad_regex.status_code == 422
    member = make_user()
    assert (
        http.post("/alerts", json={"labels": {"alertname": "x"}}, headers=member.headers).status_code == 403
    )
