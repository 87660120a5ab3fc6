"""Auth API: register, login, refresh, logout, me, JWKS, and user administration.

Thin by design: each route parses its pydantic model (Powertools validation), calls one
function of `lotabots.auth.service` and shapes the response. Who may call what is decided
centrally by `lotabots.access` (enforced in `http_handler`).
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.auth import service
from lotabots.auth.schemas import (
    JWKS,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserOut,
    UserPage,
    UserRole,
    UserUpdate,
)
from lotabots.http import create_resolver, current_principal, http_handler
from lotabots.openapi import route_responses

app = create_resolver()

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_ERRORS = {
    400: "malformed JSON or a bad cursor",
    401: "not signed in, or bad credentials / refresh token",
    403: "your role may not call this route",
    404: "no such user",
    409: "conflict: duplicate account, or a change to your own account",
    413: "request body over 1 MiB",
    422: "the request failed validation (details name the fields)",
    429: "too many failed sign-ins: wait Retry-After seconds",
    503: "a dependency (signing keys, rate-limit table, SSM) is unavailable",
}


def responses(status: int, model: type[BaseModel] | None, *errors: int) -> dict[int, OpenAPIResponse]:
    """A route's success and the errors it can give (bad JSON, too big, invalid, and `errors`)."""
    return route_responses(status, model, _ERRORS, 400, 413, 422, *errors)


@app.post(
    "/auth/register",
    summary="Create an account (role member)",
    tags=["auth"],
    status_code=201,
    responses=responses(201, UserOut, 409, 429),
)
def register(body: RegisterRequest) -> Response[UserOut]:
    user = service.register(body, app.current_event.request_context.identity.source_ip)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=user,
        headers={"Location": f"/users/{user.id}"},
    )


@app.post(
    "/auth/login",
    summary="Sign in: an access token and a refresh token",
    tags=["auth"],
    responses=responses(200, TokenPair, 401, 429, 503),
)
def login(body: LoginRequest) -> Response[TokenPair]:
    source_ip = app.current_event.request_context.identity.source_ip
    pair = service.login(body, source_ip)
    return Response(200, content_types.APPLICATION_JSON, body=pair, headers=_NO_STORE)


@app.post(
    "/auth/refresh",
    summary="Trade a refresh token for a new pair (the old one is spent)",
    tags=["auth"],
    responses=responses(200, TokenPair, 401),
)
def refresh(body: RefreshRequest) -> Response[TokenPair]:
    pair = service.refresh(body.refresh_token)
    return Response(200, content_types.APPLICATION_JSON, body=pair, headers=_NO_STORE)


@app.post(
    "/auth/logout",
    summary="Revoke a refresh token and its family",
    tags=["auth"],
    status_code=204,
    responses=responses(204, None),
)
def logout(body: LogoutRequest) -> Response[None]:
    service.logout(body.refresh_token)
    return Response(204, content_types.APPLICATION_JSON, body=None)


@app.get("/auth/me", summary="The signed-in user", tags=["auth"], responses=responses(200, UserOut, 401, 403))
def me() -> UserOut:
    return service.me(current_principal(app))


@app.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify access tokens",
    tags=["auth"],
    responses=responses(200, JWKS, 503),
)
def jwks() -> Response[JWKS]:
    return Response(
        200,
        content_types.APPLICATION_JSON,
        body=service.jwks(),
        headers={"Cache-Control": "public, max-age=300"},
    )


@app.get("/users", summary="List users (admin)", tags=["users"], responses=responses(200, UserPage, 401, 403))
def list_users(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    role: Annotated[UserRole | None, Query()] = None,
) -> UserPage:
    return service.list_users(limit=limit, cursor=cursor, role=role)


@app.patch(
    "/users/<user_id>",
    summary="Change a user's role or disable them (admin)",
    tags=["users"],
    responses=responses(200, UserOut, 401, 403, 404, 409, 503),
)
def update_user(user_id: Annotated[str, Path(max_length=64)], body: UserUpdate) -> UserOut:
    return service.update_user(current_principal(app), user_id, body)


lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
