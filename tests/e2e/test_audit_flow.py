"""The audit log over HTTP against the local stack: an auditor searches it and verifies it;
the anchoring schedule writes the head to the Object Lock bucket (moto) and verify compares
the chain with that anchor; members and operators are refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Stack, User

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
# rate(15 minutes) at the e2e speedup of 30 fires every 30 s.
ANCHOR_WAIT_S = 75.0


def _verify(http: httpx.Client, user: User) -> dict[str, Any]:
    response = http.get("/audit/verify", headers=user.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_auditor_reads_and_verifies_the_audit_log(
    http: httpx.Client, make_user: Callable[..., User], stack: Stack
) -> None:
    auditor = make_user(role="auditor")  # its promotion is itself an audit entry

    listed = http.get("/audit", params={"target_id": auditor.id, "limit": "5"}, headers=auditor.headers)
    assert listed.status_code == 200, listed.text
    assert "user.role_changed" in [item["action"] for item in listed.json()["items"]]
    page = http.get("/audit", params={"limit": "1"}, headers=auditor.headers).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    older = http.get("/audit", params={"limit": "1", "cursor": page["next_cursor"]}, headers=auditor.headers)
    assert older.json()["items"][0]["seq"] < page["items"][0]["seq"]

    result = _verify(http, auditor)
    assert result["valid"] is True, result
    assert result["entries"] >= 2 and result["first_bad_entry"] is None

    deadline = time.monotonic() + ANCHOR_WAIT_S
    while result["anchors"]["count"] == 0 and time.monotonic() < deadline:
        time.sleep(1)
        result = _verify(http, auditor)
    assert result["anchors"]["count"] >= 1, f"no anchor within {ANCHOR_WAIT_S:.0f} s:\n{stack.output()}"
    assert result["valid"] is True and result["anchors"]["mismatched"] == 0, result

    s3 = stack.aws("s3")
    latest = result["anchors"]["latest"]
    head = s3.head_object(Bucket=result["anchors"]["bucket"], Key=latest["key"])
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"] > datetime.now(UTC)


@pytest.mark.parametrize("role", ["member", "operator"])
def test_members_and_operators_may_not_read_it(
    http: httpx.Client, make_user: Callable[..., User], role: str
) -> None:
    user = make_user(role=role)
    for path in ("/audit", "/audit/verify"):
        response = http.get(path, headers=user.headers)
        assert response.status_code == 403 and response.json()["code"] == "forbidden", response.text


def test_bad_input_over_http_is_a_clear_4xx(http: httpx.Client, make_user: Callable[..., User]) -> None:
    auditor = make_user(role="auditor")
    response = http.get("/audit", params={"since": "0001-01-01T00:00:00+14:00"}, headers=auditor.headers)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    response = http.get("/audit", params={"cursor": "garbage!"}, headers=auditor.headers)
    assert response.status_code == 400 and response.json()["code"] == "invalid_cursor"


def test_the_audit_routes_are_in_the_merged_openapi_document(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/audit", "/audit/verify"):
        assert paths[path]["get"]["x-roles"] == ["admin", "auditor"]
