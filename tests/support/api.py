"""Builders for API Gateway REST proxy events and a way to call a function's handler."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from devstack.runtime import load_module
from lotabots.access import Principal

ROOT = Path(__file__).resolve().parents[2]


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py as Lambda would (each function is its own module),
    the same way the local stack does."""
    module: ModuleType = load_module(name)
    return module


class FakeLambdaContext:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    principal: Principal | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event. With a `principal`, the authorizer context the
    authorizer gives a fresh token of that principal."""
    request_id = str(uuid.uuid4())
    authorizer: dict[str, Any] = {}
    if principal is not None:
        authorizer = {
            "principalId": principal.user_id,
            "user_id": principal.user_id,
            "email": principal.email,
            "role": principal.role.value,
            "iat": str(time.time()),
        }
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_params,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "test",
            "httpMethod": method.upper(),
            "path": path,
            "resourcePath": path,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "authorizer": authorizer or None,
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


def invoke(
    function_name: str, event: dict[str, Any], *, ensure_user: bool = True
) -> tuple[int, dict[str, str], Any]:
    """Call a function's handler; returns (status, headers, decoded JSON body or text).

    Functions re-read the caller's account from the database, so (unless `ensure_user=False`)
    the principal in the event's authorizer context gets a user row if it has none."""
    from lotabots.http import principal_from_event

    principal = principal_from_event(event)
    if ensure_user and principal is not None:
        ensure_account(principal)
    response = load_function(function_name).lambda_handler(event, FakeLambdaContext())
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, values[-1])
    body = response.get("body")
    try:
        decoded = json.loads(body) if body else None
    except (TypeError, ValueError):
        decoded = body
    return int(response["statusCode"]), headers, decoded


def ensure_account(principal: Principal) -> None:
    """A user row with the principal's id, email and role, unless one exists already (a test
    that disables or demotes the user afterwards must see that change take effect)."""
    from sqlalchemy import select

    from lotabots.access import Role
    from lotabots.auth.models import User
    from lotabots.db import session_scope

    if principal.role is Role.INTEGRATION:
        return
    with session_scope() as session:
        user = session.scalar(select(User).where(User.id == principal.user_id))
        if user is None:
            email_taken = session.scalar(select(User.id).where(User.email == principal.email))
            email = principal.email if email_taken is None else f"{principal.user_id}@accounts.test"
            session.add(User(id=principal.user_id, email=email, password_hash="!", role=principal.role.value))
