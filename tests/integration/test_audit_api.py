"""The audit API (functions/audit) through its real handler: search with filters and cursor
pages, who may read it, and bad input that gets a clear 4xx and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from lotabots import access
from lotabots.access import Principal
from lotabots.audit import service
from lotabots.pagination import encode_cursor
from tests.support.api import api_event, invoke, load_function
from tests.support.audit import EVENTS, entry_count, seed, verify
from tests.support.jobs import ADMIN, AUDITOR, MEMBER, OPERATOR

# Search needs only the database; the tests that verify also need the anchor bucket (moto).
pytestmark = pytest.mark.usefixtures("db")


def _list(principal: Principal | None = AUDITOR, /, **query: str) -> tuple[int, Any]:
    status, _, body = invoke("audit", api_event("GET", "/audit", principal=principal, query=query or None))
    return status, body


def test_every_audit_route_is_in_the_access_map_and_only_there() -> None:
    app = load_function("audit").app
    served = {(r.method, r.openapi_path) for r in app._static_routes + app._dynamic_routes}
    assert served == {key for key in access.ROUTE_ROLES if key[1].startswith("/audit")}


def test_auditor_lists_newest_first_with_every_field() -> None:
    seqs = seed(3)
    status, body = _list()
    assert status == 200, body
    assert [item["seq"] for item in body["items"]] == seqs[::-1]
    newest = body["items"][0]
    assert newest["action"] == "user.updated" and newest["target_id"] == "user-2"
    assert newest["details"] == {"n": 2} and newest["actor_id"] == "admin-1"
    assert newest["prev_hash"] == body["items"][1]["hash"] and len(newest["hash"]) == 64
    assert newest["at"].endswith("Z") and body["next_cursor"] is None


@pytest.mark.usefixtures("aws_env")
def test_admin_reads_too() -> None:
    seed(1)
    assert _list(ADMIN)[0] == 200
    assert verify(ADMIN)["valid"] is True


@pytest.mark.parametrize("principal", [MEMBER, OPERATOR], ids=["member", "operator"])
@pytest.mark.parametrize("path", ["/audit", "/audit/verify"])
def test_members_and_operators_are_refused(principal: Principal, path: str) -> None:
    seed(1)
    status, _, body = invoke("audit", api_event("GET", path, principal=principal))
    assert status == 403 and body["code"] == "forbidden"
    assert body["details"] == {"required_roles": ["admin", "auditor"]}


def test_without_a_token_it_is_401() -> None:
    status, headers, body = invoke("audit", api_event("GET", "/audit"))
    assert status == 401 and body["code"] == "unauthorized" and "WWW-Authenticate" in headers


def test_cursor_pages_walk_every_entry_once() -> None:
    seqs = seed(7)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, body = _list(**query)
        assert status == 200, body
        assert len(body["items"]) <= 3
        seen += [item["seq"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == seqs[::-1] and pages == 3


def test_a_page_boundary_is_stable_when_new_entries_arrive() -> None:
    seqs = seed(4)
    status, first = _list(limit="2")
    seed(2, start=100)  # newer entries must not shift the next page
    status, second = _list(limit="2", cursor=first["next_cursor"])
    assert status == 200
    assert [i["seq"] for i in second["items"]] == [seqs[1], seqs[0]]


def test_filters_narrow_the_list() -> None:
    seed(2, actor="admin-1", action="user.role_changed")
    seed(2, start=10, actor="operator-1", action="job.create")
    seed(1, start=20, actor="operator-1", action="document.read")

    def seqs_for(**query: str) -> list[str]:
        status, body = _list(**query)
        assert status == 200, body
        return [item["target_id"] for item in body["items"]]

    assert seqs_for(action="job.create") == ["user-11", "user-10"]
    assert seqs_for(actor="admin-1") == ["user-1", "user-0"]
    assert seqs_for(target_id="user-20") == ["user-20"]
    assert seqs_for(target_type="document") == []
    assert seqs_for(action="user.*") == ["user-1", "user-0"]
    assert seqs_for(action="job.create", actor="admin-1") == []
    # A literal % or _ in a prefix is not a wildcard.
    assert seqs_for(action="user_%*") == []


def test_time_range_is_inclusive_exclusive_and_naive_means_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter(datetime(2026, 3, 1, 10, minute, tzinfo=UTC) for minute in range(3))
    monkeypatch.setattr(service, "utcnow", lambda: next(times))
    first, middle, last = seed(3)

    def seqs_for(**query: str) -> list[int]:
        status, body = _list(**query)
        assert status == 200, body
        return [item["seq"] for item in body["items"]]

    assert seqs_for(since="2026-03-01T10:01:00Z", until="2026-03-01T10:02:00Z") == [middle]
    assert seqs_for(since="2026-03-01T10:01:00") == [last, middle]  # naive: UTC
    assert seqs_for(until="2026-03-01T12:01:00+02:00") == [first]  # 10:01 UTC, exclusive
    assert seqs_for(until="2026-03-01T12:01:30+02:00") == [middle, first]
    assert seqs_for(since="2999-01-01T00:00:00+00:00") == []


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"cursor": "not-a-cursor!"}, 400, "invalid_cursor"),
        ({"cursor": encode_cursor("seq-as-text")}, 400, "invalid_cursor"),
        ({"cursor": encode_cursor(1, 2)}, 400, "invalid_cursor"),
        ({"cursor": "W3RydWVd"}, 400, "invalid_cursor"),  # [true]: a bool is no seq
        ({"cursor": "x" * 201}, 422, "validation_error"),
        ({"limit": "0"}, 422, "validation_error"),
        ({"limit": "201"}, 422, "validation_error"),
        ({"limit": "ten"}, 422, "validation_error"),
        ({"since": "yesterday"}, 422, "validation_error"),
        ({"since": "0000-12-31T00:00:00Z"}, 422, "validation_error"),
        ({"since": "0001-01-01T00:00:00+14:00"}, 422, "validation_error"),
        ({"until": "9999-12-31T23:59:59-14:00"}, 422, "validation_error"),
        ({"since": "0001-01-01T00:00:00-14:00"}, 422, "validation_error"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, 422, "empty_time_range"),
        ({"action": "a" * 65}, 422, "validation_error"),
        ({"target_type": "t" * 33}, 422, "validation_error"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_changes_nothing(query: dict[str, str], status: int, code: str) -> None:
    seed(2)
    before = entry_count()
    got, body = _list(**query)
    assert (got, body["code"]) == (status, code), body
    assert set(body) == {"message", "code", "details", "request_id"} and body["message"]
    assert entry_count() == before


def test_time_filters_inside_the_supported_range_are_accepted() -> None:
    """Timestamps are bounded to 1900-9000 UTC everywhere (lotabots.timestamps)."""
    seed(1)
    assert _list(since="1900-01-01T00:00:00Z")[0] == 200
    assert _list(until="8999-12-31T23:59:59+14:00")[0] == 200
    assert _list(since="1900-01-01T00:00:00Z", until="8999-12-31T23:59:59.999999Z")[0] == 200


@pytest.mark.usefixtures("aws_env")
def test_sample_events_are_valid_requests() -> None:
    """events/audit_list.json and events/audit_verify.json (sam local invoke) drive the handler."""
    seed(2, action="user.role_changed")
    status, _, body = invoke("audit", json.loads((EVENTS / "audit_list.json").read_text()))
    assert status == 200, body
    assert [item["action"] for item in body["items"]] == ["user.role_changed"] * 2
    status, _, body = invoke("audit", json.loads((EVENTS / "audit_verify.json").read_text()))
    assert status == 200 and body["valid"] is True and body["entries"] == 2


def test_responses_carry_the_security_headers() -> None:
    _, headers, _ = invoke("audit", api_event("GET", "/audit", principal=AUDITOR))
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
