"""Bad input at the auth API: every case is a 4xx in the common shape and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from lotabots.auth.models import User
from lotabots.db import session_scope
from tests.support.api import api_event, invoke
from tests.support.auth import DEFAULT_PASSWORD, principal_of, register, register_and_login

COMMON_SHAPE = {"message", "code", "details", "request_id"}


@pytest.fixture
def env(db: str, aws_env: dict[str, str]) -> None:
    """Migrated database and moto resources."""


def user_count() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(User)) or 0)


def post(path: str, *, body: Any = None, raw_body: str | None = None) -> tuple[int, Any]:
    status, _, decoded = invoke("auth", api_event("POST", path, body=body, raw_body=raw_body))
    return status, decoded


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login", "/auth/refresh", "/auth/logout"])
def test_malformed_json_is_a_400(env: None, path: str) -> None:
    status, body = post(path, raw_body='{"email": "a@example.com", ')
    assert status == 400 and set(body) == COMMON_SHAPE and body["code"] == "malformed_json"
    assert user_count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"email": 42, "password": DEFAULT_PASSWORD},
        {"email": "a@example.com", "password": ["x"]},
        {"email": "a@example.com", "password": DEFAULT_PASSWORD, "display_name": {"x": 1}},
        [1, 2, 3],
        "just a string",
    ],
)
def test_wrong_types_are_a_422_naming_the_field(env: None, payload: Any) -> None:
    status, body = post("/auth/register", body=payload)
    assert status == 422 and set(body) == COMMON_SHAPE and body["details"]
    assert user_count() == 0


@pytest.mark.parametrize("payload", [{}, {"email": "a@example.com"}, {"password": DEFAULT_PASSWORD}])
def test_missing_fields_are_a_422(env: None, payload: dict[str, str]) -> None:
    status, body = post("/auth/register", body=payload)
    assert status == 422 and body["code"] == "validation_error"
    assert any("email" in d["field"] or "password" in d["field"] for d in body["details"])
    assert user_count() == 0


def test_empty_body_is_a_4xx(env: None) -> None:
    status, body = post("/auth/login", raw_body="")
    assert 400 <= status < 500 and set(body) == COMMON_SHAPE


def test_unknown_fields_cannot_smuggle_a_role(env: None) -> None:
    status, body = post(
        "/auth/register", body={"email": "a@example.com", "password": DEFAULT_PASSWORD, "role": "admin"}
    )
    assert status == 422 and any(d["field"].endswith("role") for d in body["details"])
    assert user_count() == 0


def test_oversized_body_is_a_413_before_any_parsing(env: None) -> None:
    huge = '{"email": "a@example.com", "password": "' + "x" * (1024 * 1024) + '"}'
    status, body = post("/auth/register", raw_body=huge)
    assert status == 413 and set(body) == COMMON_SHAPE and body["code"] == "payload_too_large"
    assert user_count() == 0


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 12"),
        ("€" * 25, "72 bytes"),
        ("alice@example.com", "email"),
        ("xxalicexxxxxxxx", "email"),
    ],
)
def test_weak_passwords_are_a_422_with_a_clear_message(env: None, password: str, fragment: str) -> None:
    status, body = post("/auth/register", body={"email": "alice@example.com", "password": password})
    assert status == 422 and body["code"] == "weak_password" and fragment in body["message"]
    assert user_count() == 0


def test_invalid_email_is_a_422(env: None) -> None:
    status, body = post("/auth/register", body={"email": "not-an-email", "password": DEFAULT_PASSWORD})
    assert status == 422 and body["details"][0]["field"].endswith("email")


def test_duplicate_registration_is_a_409_that_reveals_nothing_more(env: None) -> None:
    register("alice@example.com")
    status, body = post(
        "/auth/register", body={"email": "ALICE@example.com", "password": "another long password"}
    )
    assert status == 409
    assert body["message"] == "an account with this email cannot be created"
    assert body["details"] is None
    assert "alice" not in str(body).lower()
    assert user_count() == 1


def test_sql_looking_strings_are_stored_verbatim(env: None) -> None:
    name = "Robert'); DROP TABLE users;--"
    status, body = register("bobby@example.com", display_name=name)
    assert status == 201 and body["display_name"] == name
    status, _, body = invoke("auth", api_event("GET", "/auth/me", principal=principal_of(body)))
    assert status == 200 and body["display_name"] == name
    # And as a login email: just a failed login, the table is intact.
    assert post("/auth/login", body={"email": "' OR '1'='1", "password": "' OR '1'='1"})[0] == 401
    assert user_count() == 1


def test_refresh_token_of_the_wrong_shape_is_a_422(env: None) -> None:
    status, body = post("/auth/refresh", body={"refresh_token": "short"})
    assert status == 422 and set(body) == COMMON_SHAPE


def test_member_cannot_list_users(env: None) -> None:
    session = register_and_login("alice@example.com")
    status, _, body = invoke("auth", api_event("GET", "/users", principal=principal_of(session["user"])))
    assert status == 403 and set(body) == COMMON_SHAPE


def test_patch_with_nothing_to_change_or_a_bad_role_is_a_422(env: None) -> None:
    from lotabots.access import Principal, Role

    admin = Principal(user_id="a" * 32, email="root@example.com", role=Role.ADMIN)
    for payload in ({}, {"role": "integration"}, {"role": "superuser"}, {"disabled": "yes"}):
        status, _, body = invoke(
            "auth",
            api_event("PATCH", "/users/x", principal=admin, body=payload, path_params={"user_id": "x"}),
        )
        assert status == 422 and set(body) == COMMON_SHAPE, payload


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1000"}, {"limit": "ten"}, {"role": "root"}])
def test_bad_list_parameters_are_a_422(env: None, query: dict[str, str]) -> None:
    from lotabots.access import Principal, Role

    admin = Principal(user_id="a" * 32, email="root@example.com", role=Role.ADMIN)
    status, _, body = invoke("auth", api_event("GET", "/users", principal=admin, query=query))
    assert status == 422 and set(body) == COMMON_SHAPE


@pytest.mark.parametrize("payload", ["null", "42", "true", '"text"'])
def test_a_json_scalar_body_is_a_422_not_a_crash(env: None, payload: str) -> None:
    """A body that is valid JSON but not an object fails validation like any wrong type."""
    status, body = post("/auth/register", raw_body=payload)
    assert status == 422 and set(body) == COMMON_SHAPE
    assert user_count() == 0
