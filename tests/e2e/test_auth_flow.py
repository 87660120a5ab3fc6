"""The auth flow over HTTP against the local stack: gateway, authorizer and auth function
working together exactly as a client sees them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lotabots import topology
from tests.e2e.harness import USER_PASSWORD, User, login

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ROOT = Path(__file__).resolve().parents[2]
ERROR_SHAPE = {"message", "code", "details", "request_id"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Request-Id"]


def test_register_login_me_refresh_reuse_and_logout(http: httpx.Client) -> None:
    email = "Ada.E2E@Example.com"
    registered = http.post(
        "/auth/register", json={"email": email, "password": USER_PASSWORD, "display_name": "Ada"}
    )
    assert registered.status_code == 201, registered.text
    user = registered.json()
    assert user["role"] == "member"
    assert "password" not in registered.text and "hash" not in registered.text

    duplicate = http.post("/auth/register", json={"email": email, "password": USER_PASSWORD})
    assert duplicate.status_code == 409
    assert set(duplicate.json()) == ERROR_SHAPE

    first = login(http, email, USER_PASSWORD)
    assert first["token_type"] == "Bearer" and first["expires_in"] > 0

    me = http.get("/auth/me", headers=_bearer(first["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]
    _assert_security_headers(me)

    rotated = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert http.get("/auth/me", headers=_bearer(second["access_token"])).status_code == 200

    # Presenting the spent token again is reuse: 401, and the whole family is revoked.
    reused = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert set(reused.json()) == ERROR_SHAPE
    assert http.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401

    third = login(http, email, USER_PASSWORD)
    logout = http.post("/auth/logout", json={"refresh_token": third["refresh_token"]})
    assert logout.status_code == 204
    assert http.post("/auth/refresh", json={"refresh_token": third["refresh_token"]}).status_code == 401


def test_admin_lists_and_promotes_and_a_member_gets_403(
    http: httpx.Client, admin_token: str, make_user: Callable[..., User]
) -> None:
    member = make_user()
    listed = http.get("/users", headers=_bearer(admin_token), params={"limit": 200})
    assert listed.status_code == 200, listed.text
    assert member.id in {u["id"] for u in listed.json()["items"]}

    forbidden = http.get("/users", headers=member.headers)
    assert forbidden.status_code == 403
    assert set(forbidden.json()) == ERROR_SHAPE
    _assert_security_headers(forbidden)

    promoted = http.patch(f"/users/{member.id}", json={"role": "operator"}, headers=_bearer(admin_token))
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "operator"

    operator = login(http, member.email, member.password)
    me = http.get("/auth/me", headers=_bearer(operator["access_token"]))
    assert me.json()["role"] == "operator"


def test_make_user_gives_the_requested_role(http: httpx.Client, make_user: Callable[..., User]) -> None:
    auditor = make_user("auditor")
    assert http.get("/auth/me", headers=auditor.headers).json()["role"] == "auditor"


def test_unknown_or_missing_token_is_401_in_the_common_shape(http: httpx.Client) -> None:
    for headers in ({"Authorization": "Bearer not-a-token"}, {}, {"Authorization": "Basic YTpi"}):
        response = http.get("/auth/me", headers=headers)
        assert response.status_code == 401, headers
        body = response.json()
        assert set(body) == ERROR_SHAPE
        assert body["request_id"] == response.headers["X-Request-Id"]
        _assert_security_headers(response)


def test_bad_input_gets_a_4xx_in_the_common_shape(http: httpx.Client) -> None:
    malformed = http.post("/auth/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert set(malformed.json()) == ERROR_SHAPE
    oversized = http.post("/auth/register", content=b"x" * (1024 * 1024 + 1))
    assert oversized.status_code == 413
    assert set(oversized.json()) == ERROR_SHAPE


def test_public_routes_and_unknown_routes(http: httpx.Client) -> None:
    health = http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    _assert_security_headers(health)
    jwks = http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert all(key["kty"] == "EC" and key["kid"] for key in jwks.json()["keys"])
    missing = http.get("/no/such/route")
    assert missing.status_code == 404
    assert set(missing.json()) == ERROR_SHAPE


def test_openapi_covers_every_api_function_and_docs_serve_swagger_ui(http: httpx.Client) -> None:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = set(document["paths"])
    for fn in topology.api_functions():
        if not (ROOT / fn.code_dir / "app.py").is_file():
            continue  # not written yet
        assert any(p == r or p.startswith(r.rstrip("/") + "/") for r in fn.routes for p in paths), fn.name
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "security" in document["paths"]["/auth/me"]["get"]
    assert "security" not in document["paths"]["/auth/login"]["post"]

    docs = http.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["Content-Type"].startswith("text/html")
    assert "/openapi.json" in docs.text
    assert http.get("/docs/swagger-ui-bundle.min.js").status_code == 200
