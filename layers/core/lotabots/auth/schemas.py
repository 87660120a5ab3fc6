"""Request and response models of the auth API (they are its OpenAPI contract)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

UserRole = Literal["admin", "operator", "member", "auditor"]

# Deliberately plain ASCII addresses with a dotted domain. (`email-validator`, behind pydantic's
# EmailStr, refuses special-use domains such as `.local`, which the local stack's admin uses.)
_LOCAL_PART = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(f"{_LOCAL_PART}@{_DOMAIN}")


def normalise_email(value: str) -> str:
    """Trim and lower-case: addresses are unique case-insensitively."""
    return value.strip().lower()


def validate_email(value: str) -> str:
    value = normalise_email(value)
    local, _, _ = value.partition("@")
    if len(value) > 254 or len(local) > 64 or not _EMAIL.fullmatch(value):
        raise ValueError("value is not a valid email address")
    return value


Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=320),
    AfterValidator(validate_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
# Login accepts any string: an address that could never register simply fails like a wrong one.
LoginEmail = Annotated[str, StringConstraints(min_length=1, max_length=320), AfterValidator(normalise_email)]
# Long enough for any passphrase; the policy (service) gives the precise rules and messages.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OpaqueToken = Annotated[str, StringConstraints(min_length=16, max_length=256)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Request):
    email: Email
    password: Password = Field(description="at least 12 characters, at most 72 bytes, not your email")
    display_name: DisplayName | None = None


class LoginRequest(_Request):
    email: LoginEmail
    password: Password


class RefreshRequest(_Request):
    refresh_token: OpaqueToken


class LogoutRequest(_Request):
    refresh_token: OpaqueToken


class UserUpdate(_Request):
    role: UserRole | None = None
    disabled: StrictBool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UserUpdate:
        if self.role is None and self.disabled is None:
            raise ValueError("give at least one of 'role' or 'disabled'")
        return self


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str | None
    role: UserRole
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` to get the next page")


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105  (the scheme name)
    expires_in: int = Field(description="seconds until the access token expires")


class JWK(BaseModel):
    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str
    y: str
    kid: str
    use: Literal["sig"]
    alg: Literal["ES256"]


class JWKS(BaseModel):
    keys: list[JWK]
