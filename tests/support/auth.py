"""Helpers for tests that need users, tokens or authorizer events (auth area)."""

from __future__ import annotations

import time
from typing import Any

import jwt

from lotabots.access import Principal, Role
from tests.support.api import api_event, invoke

DEFAULT_PASSWORD = "correct horse battery staple"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/GET/auth/me"


def register(email: str, password: str = DEFAULT_PASSWORD, **extra: Any) -> tuple[int, Any]:
    status, _, body = invoke(
        "auth", api_event("POST", "/auth/register", body={"email": email, "password": password, **extra})
    )
    return status, body


def login(
    email: str, password: str = DEFAULT_PASSWORD, *, source_ip: str = "127.0.0.1"
) -> tuple[int, dict[str, str], Any]:
    event = api_event("POST", "/auth/login", body={"email": email, "password": password})
    event["requestContext"]["identity"]["sourceIp"] = source_ip
    return invoke("auth", event)


def register_and_login(email: str, password: str = DEFAULT_PASSWORD) -> dict[str, Any]:
    status, body = register(email, password)
    assert status == 201, body
    status, _, tokens = login(email, password)
    assert status == 200, tokens
    return {"user": body, **tokens}


def principal_of(user: dict[str, Any]) -> Principal:
    return Principal(user_id=user["id"], email=user["email"], role=Role(user["role"]))


def authorizer_event(
    token: str | None, *, header: str = "Authorization", scheme: str = "Bearer"
) -> dict[str, Any]:
    headers = {} if token is None else {header: f"{scheme} {token}"}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "resource": "/auth/me",
        "path": "/auth/me",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "resourcePath": "/auth/me",
            "httpMethod": "GET",
            "path": "/api/auth/me",
            "accountId": "123456789012",
            "stage": "api",
            "requestId": "authorizer-test",
            "apiId": "abcdef1234",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid access-token claims for the test settings; override any to break one."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "https://lotabots.local",
        "aud": "lotabots-api",
        "sub": "u-123",
        "email": "user@example.com",
        "role": "member",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": "j-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], private_key: Any, kid: str, algorithm: str = "ES256") -> str:
    return jwt.encode(payload, private_key, algorithm=algorithm, headers={"kid": kid})


def forge_hs256(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """The classic key-confusion forgery: HMAC-SHA256 keyed with the *public* key."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        + b"."
        + b64(json.dumps(payload).encode())
    )
    return (signing_input + b"." + b64(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()
