"""Auth request models: email normalisation, strict types, unknown fields refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lotabots.auth.schemas import LoginRequest, RegisterRequest, UserUpdate


def test_email_is_trimmed_and_lower_cased() -> None:
    request = RegisterRequest(email="  Alice@Example.COM ", password="x")
    assert request.email == "alice@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "alice",
        "alice@",
        "@example.com",
        "a@b",
        "a..b@example.com",
        "a b@example.com",
        "x" * 65 + "@example.com",
    ],
)
def test_malformed_emails_are_refused(email: str) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest(email=email, password="x")


def test_local_stack_domains_are_accepted() -> None:
    assert RegisterRequest(email="admin@lotabots.local", password="x").email == "admin@lotabots.local"


def test_unknown_fields_and_wrong_types_are_refused() -> None:
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate({"email": "a@example.com", "password": "x", "role": "admin"})
    with pytest.raises(ValidationError):
        LoginRequest.model_validate({"email": "a@example.com", "password": 123456789012})
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({"disabled": "yes"})


def test_user_update_needs_something_to_change_and_a_user_role() -> None:
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({})
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({"role": "integration"})
    assert UserUpdate.model_validate({"disabled": False}).disabled is False
