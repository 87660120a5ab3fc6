"""The alerting HTTP API: validation (4xx, no state change), roles, state filters, ack/resolve,
silences and the per-alert delivery log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from lotabots.alerts import service
from lotabots.alerts.models import Alert, Silence
from lotabots.audit.models import AuditEntry
from lotabots.db import session_scope
from tests.support import alerts_helpers
from tests.support.alerts_helpers import ADMIN, AUDITOR, INTEGRATION, MEMBER, OPERATOR
from tests.support.api import api_event, invoke

alerts_db = alerts_helpers.alerts_db  # the fixture


def _post(body: Any, principal: Any = OPERATOR) -> tuple[int, Any]:
    status, _, payload = invoke("alerts", api_event("POST", "/alerts", body=body, principal=principal))
    return status, payload


def _count(model: type) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _iso(at: datetime) -> str:
    return at.isoformat()


def test_post_alert_creates_it_firing_and_dedups_by_fingerprint(alerts_db: str) -> None:
    alert = {
        "labels": {"alertname": "HighCPU", "severity": "warning", "host": "a"},
        "annotations": {"summary": "x"},
    }
    status, body = _post(alert)
    assert status == 200, body
    assert body["created"] == 1 and body["alerts"][0]["state"] == "firing"
    # Same labels in another order: same fingerprint, an update.
    status, again = _post({"labels": {"host": "a", "severity": "warning", "alertname": "HighCPU"}})
    assert status == 200
    assert again["updated"] == 1 and again["created"] == 0
    assert again["alerts"][0]["fingerprint"] == body["alerts"][0]["fingerprint"]
    assert _count(Alert) == 1


def test_post_accepts_a_list_and_the_integration_role(alerts_db: str) -> None:
    alerts = [{"labels": {"alertname": "Disk", "instance": str(i)}} for i in range(3)]
    status, body = _post(alerts, principal=INTEGRATION)
    assert status == 200, body
    assert body["accepted"] == 3
    status, _, _ = invoke("alerts", api_event("GET", "/alerts", principal=INTEGRATION))
    assert status == 403  # an integration token may only post


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"labels": {}}, "labels"),
        ({"labels": {"alertname": ""}}, "labels"),
        ({"annotations": {"summary": "no labels"}}, "labels"),
        ({"labels": {"bad-name": "x"}}, "labels"),
        ({"labels": {"alertname": "A", "severity": "s" * 65}}, "severity"),
        ({"labels": {"alertname": "A" * 1025}}, "labels"),
        ({"labels": {"alertname": "A"}, "unknown": 1}, "unknown"),
        (
            {
                "labels": {"alertname": "A"},
                "starts_at": "2026-01-01T10:00:00Z",
                "ends_at": "2026-01-01T09:00:00Z",
            },
            "",
        ),
        ({"labels": {"alertname": "A"}, "starts_at": "2026-01-01T10:00:00"}, "starts_at"),
        ([], ""),
    ],
)
def test_invalid_alerts_are_422_and_store_nothing(alerts_db: str, body: Any, field: str) -> None:
    status, payload = _post(body)
    assert status == 422, payload
    assert set(payload) == {"message", "code", "details", "request_id"}
    assert field in " ".join(d["field"] + " " + d["message"] for d in payload["details"])
    assert _count(Alert) == 0


def test_ends_before_starts_names_the_problem(alerts_db: str) -> None:
    status, payload = _post(
        {"labels": {"alertname": "A"}, "starts_at": "2026-01-01T10:00:00Z", "ends_at": "2026-01-01T09:00:00Z"}
    )
    assert status == 422
    assert any("ends_at is before starts_at" in d["message"] for d in payload["details"])


def test_malformed_json_is_400(alerts_db: str) -> None:
    status, _, payload = invoke("alerts", api_event("POST", "/alerts", raw_body="{nope", principal=OPERATOR))
    assert status == 400 and payload["code"] == "malformed_json"


def test_roles_on_alert_routes(alerts_db: str) -> None:
    assert _post({"labels": {"alertname": "A"}}, principal=MEMBER)[0] == 403
    assert _post({"labels": {"alertname": "A"}}, principal=AUDITOR)[0] == 403
    assert invoke("alerts", api_event("GET", "/alerts", principal=AUDITOR))[0] == 200
    assert invoke("alerts", api_event("GET", "/alerts", principal=MEMBER))[0] == 403
    assert invoke("alerts", api_event("GET", "/alerts"))[0] == 401


def test_state_filter_ack_and_resolve(alerts_db: str) -> None:
    _, body = _post([{"labels": {"alertname": "A", "n": "1"}}, {"labels": {"alertname": "A", "n": "2"}}])
    first, second = (a["id"] for a in body["alerts"])

    status, _, acked = invoke(
        "alerts", api_event("POST", f"/alerts/{first}/ack", principal=OPERATOR, body={"comment": "on it"})
    )
    assert status == 200, acked
    assert acked["state"] == "acknowledged" and acked["acknowledged_by"] == OPERATOR.user_id

    status, _, resolved = invoke("alerts", api_event("POST", f"/alerts/{second}/resolve", principal=ADMIN))
    assert status == 200 and resolved["state"] == "resolved" and resolved["resolved_by"] == ADMIN.user_id
    # Acknowledging a resolved alert is a conflict; resolving again changes nothing.
    assert invoke("alerts", api_event("POST", f"/alerts/{second}/ack", principal=OPERATOR))[0] == 409
    assert invoke("alerts", api_event("POST", f"/alerts/{second}/resolve", principal=OPERATOR))[0] == 200

    def ids(state: str) -> list[str]:
        status, _, listing = invoke(
            "alerts", api_event("GET", "/alerts", principal=AUDITOR, query={"state": state})
        )
        assert status == 200, listing
        return [a["id"] for a in listing["items"]]

    assert ids("acknowledged") == [first]
    assert ids("resolved") == [second]
    assert ids("firing") == []
    assert sorted(ids("all")) == sorted([first, second])
    assert (
        invoke("alerts", api_event("GET", "/alerts", principal=AUDITOR, query={"state": "bogus"}))[0] == 422
    )

    with session_scope() as session:
        actions = sorted(session.scalars(select(AuditEntry.action)))
    assert actions == ["alert.acknowledge", "alert.resolve"]


def test_get_alert_by_id_or_fingerprint_and_404(alerts_db: str) -> None:
    _, body = _post({"labels": {"alertname": "A"}})
    accepted = body["alerts"][0]
    for key in (accepted["id"], accepted["fingerprint"]):
        status, _, alert = invoke("alerts", api_event("GET", f"/alerts/{key}", principal=OPERATOR))
        assert status == 200 and alert["id"] == accepted["id"]
    status, _, missing = invoke("alerts", api_event("GET", "/alerts/nope", principal=OPERATOR))
    assert status == 404 and missing["code"] == "not_found"
    assert invoke("alerts", api_event("GET", "/alerts/nope/deliveries", principal=OPERATOR))[0] == 404


def _pages(path: str, query: dict[str, str]) -> list[list[dict[str, Any]]]:
    """Every page of a list route, following next_cursor."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        status, _, body = invoke(
            "alerts",
            api_event(
                "GET", path, principal=OPERATOR, query={**query, **({"cursor": cursor} if cursor else {})}
            ),
        )
        assert status == 200, body
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_alerts_page_by_cursor_newest_first_without_gaps_or_repeats(alerts_db: str) -> None:
    """limit + cursor walk every alert once, newest first; the last page has no next_cursor."""
    start = datetime.now(UTC) - timedelta(hours=1)
    _post(
        [
            {"labels": {"alertname": "P", "n": str(i)}, "startsAt": _iso(start + timedelta(minutes=i))}
            for i in range(5)
        ]
    )
    pages = _pages("/alerts", {"limit": "2"})
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [a["labels"]["n"] for p in pages for a in p] == ["4", "3", "2", "1", "0"]
    status, _, bad = invoke(
        "alerts", api_event("GET", "/alerts", principal=OPERATOR, query={"cursor": "!!!"})
    )
    assert status == 400 and bad["code"] == "invalid_cursor"


def test_a_muted_state_pages_past_rows_of_other_states(
    alerts_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Silenced alerts among many firing ones: each page is filled from further reads, and a page
    that hits the read budget is short but carries a cursor, so nothing is skipped."""
    start = datetime.now(UTC) - timedelta(hours=1)
    hosts = [f"db{i}" if i % 4 == 0 else f"web{i}" for i in range(12)]
    _post(
        [
            {"labels": {"alertname": "Disk", "host": h}, "startsAt": _iso(start + timedelta(minutes=i))}
            for i, h in enumerate(hosts)
        ]
    )
    status, _, _silence_body = invoke(
        "alerts",
        api_event(
            "POST",
            "/silences",
            principal=OPERATOR,
            body=_silence([{"name": "host", "value": "db.*", "isRegex": True}]),
        ),
    )
    assert status == 201
    pages = _pages("/alerts", {"state": "silenced", "limit": "2"})
    assert [a["labels"]["host"] for p in pages for a in p] == ["db8", "db4", "db0"]
    assert [len(p) for p in pages] == [2, 1]

    monkeypatch.setattr(service, "MAX_ROWS_PER_PAGE", 3)
    pages = _pages("/alerts", {"state": "silenced", "limit": "2"})
    assert [a["labels"]["host"] for p in pages for a in p] == ["db8", "db4", "db0"]
    assert max(len(p) for p in pages) <= 2 and len(pages) > 2


def test_silences_page_by_cursor(alerts_db: str) -> None:
    """Silences (latest-ending first) follow the same limit + cursor contract."""
    now = datetime.now(UTC)
    ids = []
    for i in range(3):
        body = _silence(
            [{"name": "host", "value": f"h{i}", "isRegex": False}], ends_at=_iso(now + timedelta(hours=i + 1))
        )
        status, _, created = invoke("alerts", api_event("POST", "/silences", principal=OPERATOR, body=body))
        assert status == 201
        ids.append(created["id"])
    pages = _pages("/silences", {"limit": "2"})
    assert [s["id"] for p in pages for s in p] == ids[::-1] and [len(p) for p in pages] == [2, 1]
    assert _pages("/silences", {"state": "expired", "limit": "2"}) == [[]]


def _silence(matchers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "matchers": matchers,
        "starts_at": _iso(now),
        "ends_at": _iso(now + timedelta(hours=1)),
        "comment": "maintenance",
        **extra,
    }


def test_silence_lifecycle_mutes_matching_alerts(alerts_db: str) -> None:
    _post(
        [{"labels": {"alertname": "Disk", "host": "db1"}}, {"labels": {"alertname": "Disk", "host": "web1"}}]
    )
    status, _, silence = invoke(
        "alerts",
        api_event(
            "POST",
            "/silences",
            principal=OPERATOR,
            body=_silence([{"name": "host", "value": "db.*", "isRegex": True}]),
        ),
    )
    assert status == 201, silence
    assert silence["state"] == "active" and silence["created_by"] == OPERATOR.user_id
    status, _, listing = invoke(
        "alerts", api_event("GET", "/alerts", principal=OPERATOR, query={"state": "silenced"})
    )
    assert [a["labels"]["host"] for a in listing["items"]] == ["db1"]
    assert listing["items"][0]["silenced_by"] == [silence["id"]]

    status, _, silences = invoke(
        "alerts", api_event("GET", "/silences", principal=AUDITOR, query={"state": "active"})
    )
    assert status == 200 and [s["id"] for s in silences["items"]] == [silence["id"]]

    status, _, expired = invoke(
        "alerts", api_event("DELETE", f"/silences/{silence['id']}", principal=OPERATOR)
    )
    assert status == 200 and expired["state"] == "expired" and expired["expired_by"] == OPERATOR.user_id
    status, _, listing = invoke(
        "alerts", api_event("GET", "/alerts", principal=OPERATOR, query={"state": "silenced"})
    )
    assert listing["items"] == []
    assert invoke("alerts", api_event("DELETE", "/silences/missing", principal=OPERATOR))[0] == 404
    # Expiring twice is harmless.
    assert invoke("alerts", api_event("DELETE", f"/silences/{silence['id']}", principal=OPERATOR))[0] == 200


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        ([{"name": "alertname", "value": "([a-z", "isRegex": True}], "invalid regex"),
        ([{"name": "bad-name", "value": "x"}], "invalid label name"),
        ([{"name": "alertname", "value": ".*", "isRegex": True}], "empty string"),
        ([{"name": "alertname", "value": ""}], "empty string"),
        ([], "at least 1"),
    ],
)
def test_invalid_silences_are_422(alerts_db: str, matchers: list[dict[str, Any]], message: str) -> None:
    status, _, body = invoke(
        "alerts", api_event("POST", "/silences", principal=OPERATOR, body=_silence(matchers))
    )
    assert status == 422, body
    assert message in " ".join(d["message"] for d in body["details"])
    assert _count(Silence) == 0


def test_silence_times_are_validated(alerts_db: str) -> None:
    now = datetime.now(UTC)
    matchers = [{"name": "alertname", "value": "A"}]
    backwards = {
        "matchers": matchers,
        "starts_at": _iso(now + timedelta(hours=2)),
        "ends_at": _iso(now + timedelta(hours=1)),
        "comment": "c",
    }
    past = {
        "matchers": matchers,
        "starts_at": _iso(now - timedelta(hours=2)),
        "ends_at": _iso(now - timedelta(hours=1)),
        "comment": "c",
    }
    no_comment = {"matchers": matchers, "ends_at": _iso(now + timedelta(hours=1)), "comment": ""}
    for body in (backwards, past, no_comment):
        status, _, payload = invoke("alerts", api_event("POST", "/silences", principal=OPERATOR, body=body))
        assert status == 422, payload
    assert _count(Silence) == 0
    assert (
        invoke("alerts", api_event("POST", "/silences", principal=MEMBER, body=_silence(matchers)))[0] == 403
    )


def test_pending_silence_is_listed_as_pending(alerts_db: str) -> None:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "alertname", "value": "Later"}],
        "starts_at": _iso(now + timedelta(hours=1)),
        "ends_at": _iso(now + timedelta(hours=2)),
        "comment": "tonight",
    }
    status, _, silence = invoke("alerts", api_event("POST", "/silences", principal=OPERATOR, body=body))
    assert status == 201 and silence["state"] == "pending"
    status, _, expired = invoke(
        "alerts", api_event("DELETE", f"/silences/{silence['id']}", principal=OPERATOR)
    )
    assert expired["state"] == "expired"


def test_every_alerts_route_is_in_the_access_map(alerts_db: str) -> None:
    from lotabots.access import ROUTE_ROLES
    from tests.support.api import load_function

    schema = load_function("alerts").app.get_openapi_schema()
    served = {
        (method.upper(), path)
        for path, item in schema.paths.items()
        for method in ("get", "post", "put", "patch", "delete")
        if getattr(item, method, None) is not None
    }
    assert served == {key for key in ROUTE_ROLES if key[1].startswith(("/alerts", "/silences"))}
