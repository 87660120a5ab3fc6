"""What the adversarial review broke at the handler boundary stays closed: deny by default on
every path variant, revoked power gone on the next request, and bad bodies, dates and cursors
answered with a 4xx in the common shape, with nothing changed."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from lotabots.access import Principal, Role
from lotabots.alerts.models import Alert, Silence
from lotabots.auth import service as auth_service
from lotabots.auth.models import User
from lotabots.auth.schemas import UserUpdate
from lotabots.db import session_scope
from lotabots.documents.models import Document
from tests.support.api import api_event, invoke
from tests.support.auth import principal_of, register_and_login
from tests.support.documents import ADMIN, ALICE, OPERATOR

pytestmark = pytest.mark.usefixtures("db", "aws_env")

EDGE_DATES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"]


def _count(model: Any) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _error(body: Any, code: str | None = None) -> None:
    assert set(body) == {"message", "code", "details", "request_id"}, body
    if code:
        assert body["code"] == code, body


# --- 1. deny by default, one canonical path --------------------------------------------


@pytest.mark.parametrize(
    ("function", "method", "path"),
    [
        ("auth", "GET", "/users//"),
        ("auth", "GET", "/users///"),
        ("auth", "GET", "//users"),
        ("auth", "GET", "/us%65rs"),
        ("alerts", "POST", "/alerts//"),
        ("alerts", "POST", "//alerts/"),
        ("documents", "GET", "/documents//"),
        ("jobs", "GET", "/jobs/"),
    ],
)
def test_path_variants_without_a_token_are_401_and_run_no_handler(
    function: str, method: str, path: str
) -> None:
    alerts_before = _count(Alert)
    status, _, body = invoke(function, api_event(method, path, body={"labels": {"alertname": "x"}}))
    assert status == 401, (path, body)
    _error(body, "unauthorized")
    assert _count(Alert) == alerts_before


@pytest.mark.parametrize("path", ["/users/./", "/users/%2e%2e/users", "/users/a%zz", "/users/%00"])
def test_non_canonical_paths_are_400(path: str) -> None:
    status, _, body = invoke("auth", api_event("GET", path, principal=ADMIN))
    assert status == 400
    _error(body, "bad_path")


def test_unmapped_path_is_404_and_wrong_method_is_405_even_for_an_admin() -> None:
    status, _, body = invoke("auth", api_event("GET", "/users/abc/secret", principal=ADMIN))
    assert status == 404
    _error(body, "route_not_found")
    status, headers, body = invoke("auth", api_event("DELETE", "/users/abc", principal=ADMIN))
    assert status == 405 and headers["Allow"] == "PATCH"
    _error(body, "method_not_allowed")


def test_resolver_routes_the_canonical_path_the_map_checked() -> None:
    """`//users//` is `/users`: the admin gets the list, a member is refused: map and resolver agree."""
    status, _, body = invoke("auth", api_event("GET", "//users//", principal=ADMIN))
    assert status == 200 and "items" in body
    member = Principal("m0000000000000000000000000000001", "m1@example.com", Role.MEMBER)
    assert invoke("auth", api_event("GET", "//users//", principal=member))[0] == 403


# --- 2. revoked power ends on the next request -----------------------------------------


def _admin_session() -> tuple[dict[str, Any], Principal]:
    session = register_and_login("boss@example.com")
    with session_scope() as db:
        user = db.get(User, session["user"]["id"])
        assert user is not None
        user.role = "admin"
    return session, Principal(session["user"]["id"], "boss@example.com", Role.ADMIN)


def test_demoted_admin_cannot_promote_anyone_with_a_token_issued_before_the_demotion() -> None:
    _, boss = _admin_session()
    target = register_and_login("target@example.com")["user"]
    old_token_event = api_event(
        "PATCH", f"/users/{target['id']}", body={"role": "admin"}, principal=boss
    )  # the authorizer context of a token issued now, before the demotion
    time.sleep(0.01)
    auth_service.update_user(ADMIN, boss.user_id, UserUpdate(role="member"))
    status, _, body = invoke("auth", old_token_event)
    assert status == 401
    _error(body, "token_revoked")
    fresh_member_token = api_event(
        "PATCH",
        f"/users/{target['id']}",
        body={"role": "admin"},
        principal=boss,  # role in context: stale
    )
    status, _, body = invoke("auth", fresh_member_token)
    assert status == 403, "the role comes from the database, not from the (cached) authorizer context"
    with session_scope() as db:
        promoted = db.get(User, target["id"])
        assert promoted is not None and promoted.role == "member"


def test_disabled_user_cannot_create_documents_on_the_next_request() -> None:
    session = register_and_login("leaving@example.com")
    member = principal_of(session["user"])
    create = api_event(
        "POST",
        "/documents",
        body={"title": "t", "content_type": "text/plain", "size_bytes": 3},
        principal=member,
    )
    auth_service.update_user(ADMIN, member.user_id, UserUpdate(disabled=True))
    status, _, body = invoke("documents", create)
    assert status == 401
    _error(body, "account_disabled")
    assert _count(Document) == 0


def test_unknown_account_is_401() -> None:
    ghost = Principal("9" * 32, "ghost@example.com", Role.ADMIN)
    status, _, body = invoke("auth", api_event("GET", "/users", principal=ghost), ensure_user=False)
    assert status == 401
    _error(body, "account_unknown")


# --- 7. bad input is a 4xx, never a 500 ------------------------------------------------


def _document_body(title: Any = "Report") -> dict[str, Any]:
    return {"title": title, "content_type": "text/plain", "size_bytes": 10}


def test_json_nested_1000_deep_is_400() -> None:
    deep = "[" * 1000 + "]" * 1000
    raw = json.dumps(_document_body())[:-1] + f', "metadata": {{"k": {deep}}}}}'
    status, _, body = invoke("documents", api_event("POST", "/documents", raw_body=raw, principal=ALICE))
    assert status == 400
    _error(body, "too_deep")
    assert _count(Document) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/octet-stream"])
def test_body_that_is_not_json_by_media_type_is_415(content_type: str) -> None:
    event = api_event(
        "POST",
        "/documents",
        raw_body=json.dumps(_document_body()),
        principal=ALICE,
        headers={"Content-Type": content_type},
    )
    status, _, body = invoke("documents", event)
    assert status == 415
    _error(body, "unsupported_media_type")
    assert _count(Document) == 0


def test_json_media_type_with_parameters_or_in_capitals_is_accepted() -> None:
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        event = api_event(
            "POST",
            "/documents",
            body=_document_body(),
            principal=ALICE,
            headers={"Content-Type": content_type},
        )
        assert invoke("documents", event)[0] == 201


def test_body_bytes_that_are_not_utf8_are_400() -> None:
    raw = b'{"title": "caf\xe9 \xff", "content_type": "text/plain", "size_bytes": 10}'
    event = api_event("POST", "/documents", principal=ALICE)
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    status, _, body = invoke("documents", event)
    assert status == 400
    _error(body, "malformed_body")
    assert _count(Document) == 0


@pytest.mark.parametrize(
    ("function", "path", "raw"),
    [
        (
            "documents",
            "/documents",
            '{"title": "bad \\ud800 title", "content_type": "text/plain", "size_bytes": 1}',
        ),
        ("alerts", "/alerts", '{"labels": {"alertname": "x\\udfff"}}'),
        ("alerts", "/alerts", '{"labels": {"\\ud800": "value", "alertname": "x"}}'),
    ],
)
def test_lone_surrogate_in_a_string_or_key_is_400(function: str, path: str, raw: str) -> None:
    principal = ALICE if function == "documents" else OPERATOR
    status, _, body = invoke(function, api_event("POST", path, raw_body=raw, principal=principal))
    assert status == 400
    _error(body, "invalid_unicode")
    assert _count(Document) == 0 and _count(Alert) == 0


@pytest.mark.parametrize("edge", EDGE_DATES)
def test_calendar_edge_dates_in_document_filters_are_422(edge: str) -> None:
    for name in ("created_after", "created_before"):
        status, _, body = invoke(
            "documents", api_event("GET", "/documents", principal=ALICE, query={name: edge})
        )
        assert status == 422, (name, edge, body)
        _error(body, "validation_error")


@pytest.mark.parametrize("edge", EDGE_DATES[:2])
def test_calendar_edge_dates_in_silences_and_alerts_are_422(edge: str) -> None:
    silence = {
        "matchers": [{"name": "node", "value": "gpu-1", "isRegex": False}],
        "starts_at": edge,
        "ends_at": "2099-01-01T00:00:00Z",
        "comment": "edge",
    }
    for body in (silence, {**silence, "starts_at": None, "ends_at": edge}):
        status, _, answer = invoke("alerts", api_event("POST", "/silences", body=body, principal=OPERATOR))
        assert status == 422, (body, answer)
    for field in ("starts_at", "ends_at"):
        alert = {"labels": {"alertname": "Edge"}, field: edge}
        status, _, answer = invoke("alerts", api_event("POST", "/alerts", body=alert, principal=OPERATOR))
        assert status == 422, (field, answer)
    assert _count(Silence) == 0 and _count(Alert) == 0


@pytest.mark.parametrize("edge", EDGE_DATES)
@pytest.mark.parametrize(
    ("function", "path"), [("documents", "/documents"), ("jobs", "/jobs"), ("auth", "/users")]
)
def test_calendar_edge_dates_in_cursors_are_400(edge: str, function: str, path: str) -> None:
    raw = json.dumps({"t": edge, "i": "a" * 32}).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    status, _, body = invoke(function, api_event("GET", path, principal=ADMIN, query={"cursor": cursor}))
    assert status == 400, body
    _error(body, "invalid_cursor")


# --- the database unavailable -----------------------------------------------------------


def test_database_unavailable_is_503_with_retry_after(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lotabots.db import engine as db_engine

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    db_engine.reset_engine()
    try:
        status, headers, body = invoke("auth", api_event("GET", "/users", principal=ADMIN), ensure_user=False)
    finally:
        monkeypatch.setenv("DATABASE_URL", db)
        db_engine.reset_engine()
    assert status == 503 and headers["Retry-After"] == "5"
    _error(body, "service_unavailable")
