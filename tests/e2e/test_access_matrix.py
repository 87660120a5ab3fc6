"""The access matrix, generated from the route map and run over HTTP against the local stack.

Every route, for every kind of caller, → the status the route map promises: 401 without a valid,
unrevoked token of an enabled account; 403 for a role the route does not list; otherwise the
request reaches the handler (whatever it answers, never 401/403/405/5xx or `route_not_found`).
Then the same for path variants (extra/trailing slashes, dot segments, percent-encoding, case),
sent byte for byte (no client-side normalisation), which must never let a caller past the map.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from lotabots import access
from lotabots.access import Role

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ROLE_OF = {
    "member": Role.MEMBER,
    "other_member": Role.MEMBER,
    "operator": Role.OPERATOR,
    "auditor": Role.AUDITOR,
    "admin": Role.ADMIN,
    "integration": Role.INTEGRATION,
}
NO_VALID_CREDENTIALS = ("anonymous", "disabled", "demoted", "expired")
CALLERS = (*ROLE_OF, *NO_VALID_CREDENTIALS)
ROUTES = sorted(access.ROUTE_ROLES)
PLACEHOLDER_ID = "0" * 32


def concrete(template: str) -> str:
    return access.example_path(template, PLACEHOLDER_ID)


def expected(method: str, template: str, caller: str) -> str:
    roles = access.ROUTE_ROLES[(method, template)]
    if not roles:
        return "reached"
    if caller in NO_VALID_CREDENTIALS:
        return "401"
    return "reached" if ROLE_OF[caller] in roles else "403"


class Raw:
    """Requests sent exactly as written (httpx would normalise `//` and dot segments)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def send(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            all_headers = {"Content-Type": "application/json", **headers} if body is not None else headers
            connection.request(method, target, body=body, headers=all_headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        try:
            decoded = json.loads(payload) if payload else {}
        except ValueError:
            decoded = {}
        return response.status, decoded if isinstance(decoded, dict) else {}


@pytest.fixture(scope="module")
def raw(stack_url: str) -> Raw:
    return Raw(stack_url)


def _call(raw: Raw, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    return raw.send(method, target, headers, body)


def _check(outcome: str, status: int, body: dict[str, Any], context: str) -> None:
    if outcome == "401":
        assert status == 401, f"{context}: expected 401, got {status} {body}"
    elif outcome == "403":
        assert status == 403, f"{context}: expected 403, got {status} {body}"
    else:
        assert status not in (401, 403, 405) and status < 500, f"{context}: not reached: {status} {body}"
        assert body.get("code") != "route_not_found", f"{context}: {body}"


@pytest.mark.parametrize(("method", "template"), ROUTES)
def test_every_caller_gets_what_the_route_map_promises(
    raw: Raw, callers: dict[str, dict[str, str]], method: str, template: str
) -> None:
    for caller in CALLERS:
        status, body = _call(raw, method, concrete(template), callers[caller])
        _check(expected(method, template, caller), status, body, f"{caller} {method} {template}")


def _variants(path: str) -> list[str]:
    first = path[1]
    return [
        path + "/",
        path + "//",
        "/" + path.replace("/", "//"),
        path.replace("/", "/./", 1),
        path + "/..",
        "/" + "%" + f"{ord(first):02X}" + path[2:],
        path.upper(),
        path + "%2F",
    ]


@pytest.mark.parametrize(("method", "template"), [r for r in ROUTES if access.ROUTE_ROLES[r]])
def test_path_variants_never_get_past_the_map(
    raw: Raw, callers: dict[str, dict[str, str]], method: str, template: str
) -> None:
    """Anonymous callers never reach a protected handler through any spelling of its path, and
    a caller whose role is not listed never does either."""
    roles = access.ROUTE_ROLES[(method, template)]
    outsiders = [name for name, role in ROLE_OF.items() if role not in roles]
    for variant in _variants(concrete(template)):
        status, body = _call(raw, method, variant, {})
        assert status in (400, 401, 404, 405), f"anonymous {method} {variant}: {status} {body}"
        for caller in outsiders:
            status, body = _call(raw, method, variant, callers[caller])
            assert status in (400, 403, 404, 405), f"{caller} {method} {variant}: {status} {body}"


def test_percent_encoded_spelling_is_the_same_route(raw: Raw, callers: dict[str, dict[str, str]]) -> None:
    """`/us%65rs` is `/users` for the map and the function alike: the admin gets the list."""
    status, body = _call(raw, "GET", "/us%65rs", callers["admin"])
    assert status == 200 and "items" in body
    assert _call(raw, "GET", "/us%65rs", callers["member"])[0] == 403


def test_another_members_document_is_invisible(raw: Raw, callers: dict[str, dict[str, str]]) -> None:
    """Object-level access: the route lets every member in, the documents service does not."""
    declared = json.dumps({"title": "matrix", "content_type": "text/plain", "size_bytes": 5}).encode()
    status, created = raw.send("POST", "/documents", callers["member"], declared)
    assert status == 201, created
    path = f"/documents/{created['document']['id']}"
    assert _call(raw, "GET", path, callers["member"])[0] == 200
    assert _call(raw, "GET", path, callers["other_member"])[0] == 404
    assert _call(raw, "DELETE", path, callers["other_member"])[0] == 404
    assert _call(raw, "GET", path, callers["auditor"])[0] == 200
    assert _call(raw, "GET", path, callers["admin"])[0] == 200
