"""The shared HTTP layer: central role checks, body limit, error shape and headers on every answer."""

import pytest

from lotabots.access import Principal, Role
from tests.support.api import api_event, invoke

MEMBER = Principal(user_id="u-member", email="m@example.com", role=Role.MEMBER)


def _assert_error_shape(body: dict) -> None:
    assert set(body) == {"message", "code", "details", "request_id"}
    assert body["request_id"]


def test_missing_principal_on_protected_route_is_401(db: str) -> None:
    status, headers, body = invoke("aiops", api_event("GET", "/users"))
    assert status == 401
    assert body["code"] == "unauthorized"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    _assert_error_shape(body)


def test_member_on_admin_route_is_403_before_any_handler_runs(db: str) -> None:
    status, headers, body = invoke("aiops", api_event("GET", "/users", principal=MEMBER))
    assert status == 403
    assert body["details"] == {"required_roles": ["admin"]}
    assert headers["X-Frame-Options"] == "DENY"
    _assert_error_shape(body)


def test_oversized_body_is_413(db: str) -> None:
    event = api_event("POST", "/auth/login", raw_body="x" * (1024 * 1024 + 1))
    status, _, body = invoke("aiops", event)
    assert status == 413
    assert body["code"] == "payload_too_large"
    _assert_error_shape(body)


@pytest.mark.parametrize("path", ["/health"])
def test_cors_preflight_is_answered(db: str, path: str) -> None:
    event = api_event(
        "OPTIONS", path, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    )
    status, headers, _ = invoke("aiops", event)
    assert status == 204
    assert headers.get("Access-Control-Allow-Origin") in ("*", "https://app.example")


def test_oversized_base64_body_is_413_by_its_decoded_size(db: str) -> None:
    import base64

    limit = 1024 * 1024
    at_limit = api_event("POST", "/health", raw_body=base64.b64encode(b"x" * limit).decode())
    at_limit["isBase64Encoded"] = True
    over = api_event("POST", "/health", raw_body=base64.b64encode(b"x" * (limit + 1)).decode())
    over["isBase64Encoded"] = True
    assert invoke("aiops", at_limit)[0] != 413
    status, _, body = invoke("aiops", over)
    assert status == 413
    _assert_error_shape(body)
