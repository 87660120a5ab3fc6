"""Smoke test of a deployed stage (or the local stack): `make smoke URL=https://<api>/<stage>`.

Standard library only, so it runs anywhere Python 3.11+ does (CI after a deploy, a new user's
laptop). Read-only unless credentials are given: with SMOKE_EMAIL / SMOKE_PASSWORD it also logs
in, reads /auth/me, rotates the refresh token and logs out (that user's session only).

Checks: /health; the JWKS (ES256 keys with a `kid`); the OpenAPI document and Swagger UI (every
stage publishes them); a request without a token is a 401 in the common error shape; an
unknown route is a 404 in that shape; CORS preflight; the security headers on responses.
Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ERROR_SHAPE = {"message", "code", "details", "request_id"}
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src",
}
TIMEOUT_S = 15


class CheckFailed(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CheckFailed(f"expected JSON, got {self.body[:120]!r}") from None


@dataclass
class Smoke:
    base_url: str
    email: str | None = None
    password: str | None = None
    results: list[tuple[str, str | None]] = field(default_factory=list)

    def request(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        url = self.base_url.rstrip("/") + path
        if not url.startswith(("http://", "https://")):
            raise CheckFailed(f"not an http(s) URL: {url}")
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as raw:  # noqa: S310 (scheme checked)
                return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise CheckFailed(f"{method} {path}: {exc}") from None

    def check(self, name: str, run: Callable[[], str | None]) -> None:
        try:
            note = run()
        except CheckFailed as exc:
            self.results.append((name, f"FAIL {exc}"))
            return
        self.results.append((name, note))

    # --- the checks ------------------------------------------------------------------------

    def health(self) -> str | None:
        response = self.request("GET", "/health")
        expect(response.status == 200, f"/health answered {response.status}")
        self.security_headers(response)
        return None

    def security_headers(self, response: Response) -> None:
        for name, fragment in SECURITY_HEADERS.items():
            value = response.headers.get(name, "")
            expect(fragment in value, f"header {name} is {value!r}, expected it to contain {fragment!r}")

    def jwks(self) -> str | None:
        response = self.request("GET", "/.well-known/jwks.json")
        expect(response.status == 200, f"JWKS answered {response.status}")
        keys = response.json().get("keys") or []
        expect(bool(keys), "the JWKS has no keys (has the migration function run?)")
        for key in keys:
            expect(key.get("kty") == "EC" and key.get("crv") == "P-256", f"not an ES256 key: {key}")
            expect(bool(key.get("kid")), "a key without kid")
        return f"{len(keys)} key(s)"

    def openapi(self) -> str | None:
        response = self.request("GET", "/openapi.json")
        expect(response.status == 200, f"/openapi.json answered {response.status}")
        document = response.json()
        expect(str(document.get("openapi", "")).startswith("3."), "not an OpenAPI 3 document")
        expect(bool(document.get("paths")), "the OpenAPI document has no paths")
        docs = self.request("GET", "/docs", headers={"Accept": "text/html"})
        expect(docs.status == 200 and b"swagger" in docs.body.lower(), f"/docs answered {docs.status}")
        return f"{len(document['paths'])} paths"

    def unauthenticated(self) -> str | None:
        response = self.request("GET", "/auth/me")
        expect(response.status == 401, f"/auth/me without a token answered {response.status}")
        expect_error_shape(response)
        expect("bearer" in response.headers.get("www-authenticate", "").lower(), "no WWW-Authenticate")
        forged = self.request("GET", "/auth/me", headers={"Authorization": "Bearer not-a-token"})
        expect(forged.status in (401, 403), f"a forged token answered {forged.status}")
        return None

    def unknown_route(self) -> str | None:
        response = self.request("GET", "/no-such-route-smoke")
        expect(response.status in (403, 404), f"an unknown route answered {response.status}")
        expect_error_shape(response)
        return None

    def cors(self) -> str | None:
        response = self.request(
            "OPTIONS",
            "/auth/login",
            headers={
                "Origin": "https://example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        expect(200 <= response.status < 300, f"preflight answered {response.status}")
        expect(bool(response.headers.get("access-control-allow-origin")), "no Access-Control-Allow-Origin")
        return None

    def auth_round_trip(self) -> str | None:
        if not (self.email and self.password):
            return "skipped (set SMOKE_EMAIL and SMOKE_PASSWORD)"
        login = self.request("POST", "/auth/login", body={"email": self.email, "password": self.password})
        expect(login.status == 200, f"login answered {login.status}: {login.body[:200]!r}")
        tokens = login.json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = self.request("GET", "/auth/me", headers=bearer)
        expect(me.status == 200, f"/auth/me answered {me.status}")
        expect(me.json().get("email") == self.email.strip().lower(), "/auth/me is someone else")
        refreshed = self.request("POST", "/auth/refresh", body={"refresh_token": tokens["refresh_token"]})
        expect(refreshed.status == 200, f"refresh answered {refreshed.status}")
        new_refresh = refreshed.json()["refresh_token"]
        expect(new_refresh != tokens["refresh_token"], "the refresh token did not rotate")
        logout = self.request("POST", "/auth/logout", body={"refresh_token": new_refresh})
        expect(logout.status in (200, 204), f"logout answered {logout.status}")
        return None

    def run(self) -> bool:
        self.check("health and security headers", self.health)
        self.check("JWKS", self.jwks)
        self.check("OpenAPI and Swagger UI", self.openapi)
        self.check("no token is a 401", self.unauthenticated)
        self.check("unknown route is a 404", self.unknown_route)
        self.check("CORS preflight", self.cors)
        self.check("login, me, refresh, logout", self.auth_round_trip)
        return all(not (note or "").startswith("FAIL") for _, note in self.results)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_error_shape(response: Response) -> None:
    body = response.json()
    expect(isinstance(body, dict) and set(body) == ERROR_SHAPE, f"not the common error shape: {body}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url", help="the API's base URL, e.g. the stack's ApiUrl output")
    args = parser.parse_args(argv)
    smoke = Smoke(args.url, os.environ.get("SMOKE_EMAIL"), os.environ.get("SMOKE_PASSWORD"))
    ok = smoke.run()
    for name, note in smoke.results:
        status = "FAIL" if (note or "").startswith("FAIL") else "ok  "
        detail = (note or "").removeprefix("FAIL ")
        print(f"{status} {name}" + (f": {detail}" if detail else ""))
    passed = sum(1 for _, note in smoke.results if not (note or "").startswith("FAIL"))
    print(f"smoke test of {args.url}: {passed} of {len(smoke.results)} checks passed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
