"""The local API Gateway: proxy events as API Gateway builds them, the authorizer contract
(401/403, cache, policy per method ARN), proxy responses written back, limits, OpenAPI/docs."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.apigw_events import HttpRequest, build_event, method_arn
from devstack.gateway import Gateway, GatewayServer
from devstack.iam_policy import policy_allows
from devstack.runtime import LocalFunction, Registry
from lotabots import topology

ARN_PREFIX = "arn:aws:execute-api:us-east-1:123456789012:local/local"


def _request(method: str, target: str, *, body: bytes = b"", **headers: str) -> HttpRequest:
    return HttpRequest(method, target, [(k.replace("_", "-"), v) for k, v in headers.items()], body)


def _policy(effect: str, resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }


class FakeAuthorizer:
    """Bearer good → allow the whole stage; Bearer me-only → allow GET /auth/me only;
    Bearer deny → deny; anything else → Unauthorized."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        self.events.append(event)
        token = (event["headers"] or {}).get("Authorization", "")
        base = event["methodArn"].split("/", 1)[0]
        context = {"user_id": "u1", "email": "a@example.com", "role": "admin", "admin": True, "n": 3}
        if token == "Bearer good":
            return {
                "principalId": "u1",
                "policyDocument": _policy("Allow", f"{base}/local/*"),
                "context": context,
            }
        if token == "Bearer me-only":
            policy = _policy("Allow", f"{base}/local/GET/auth/me")
            return {"principalId": "u1", "policyDocument": policy, "context": context}
        if token == "Bearer deny":
            return {"principalId": "u1", "policyDocument": _policy("Deny", f"{base}/*")}
        raise Exception("Unauthorized")


def _echo(events: list[dict[str, Any]]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        events.append(event)
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json", "X-Single": "one"},
            "body": json.dumps({"authorizer": event["requestContext"].get("authorizer")}),
            "isBase64Encoded": False,
        }

    return handler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seen() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def authorizer() -> FakeAuthorizer:
    return FakeAuthorizer()


@pytest.fixture
def gateway(seen: list[dict[str, Any]], authorizer: FakeAuthorizer, clock: Clock) -> Gateway:
    registry = Registry()
    for name in ("auth", "aiops", "documents"):
        registry.functions[name] = LocalFunction(topology.function(name), _echo(seen))
    registry.failures["jobs"] = "functions/jobs/app.py does not exist"
    auth_fn = LocalFunction(topology.function("authorizer"), authorizer)
    return Gateway(registry, authorizer=auth_fn, cache_seconds=300, clock=clock, max_body_bytes=1000)


def _json(response: Any) -> Any:
    return json.loads(response.body)


# --- events ------------------------------------------------------------------------


def test_event_keeps_repeated_headers_and_query_values_like_api_gateway() -> None:
    request = HttpRequest(
        "get",
        "/documents/abc?tag=a&tag=b%20c&q=x%2By&empty=",
        [("Accept", "text/plain"), ("X-Trace", "1"), ("X-Trace", "2"), ("User-Agent", "curl/8")],
        source_ip="10.1.2.3",
    )
    event = build_event(request, request_id="rid", stage="local", resource="/documents/{document_id}")
    assert event["httpMethod"] == "GET"
    assert event["path"] == "/documents/abc"
    assert event["headers"]["X-Trace"] == "2"
    assert event["multiValueHeaders"]["X-Trace"] == ["1", "2"]
    assert event["queryStringParameters"] == {"tag": "b c", "q": "x+y", "empty": ""}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b c"]
    assert event["pathParameters"] == {"document_id": "abc"}
    assert event["resource"] == event["requestContext"]["resourcePath"] == "/documents/{document_id}"
    context = event["requestContext"]
    assert context["requestId"] == "rid"
    assert context["stage"] == "local"
    assert context["identity"]["sourceIp"] == "10.1.2.3"
    assert context["identity"]["userAgent"] == "curl/8"
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_event_without_query_or_headers_uses_null_like_api_gateway() -> None:
    event = build_event(HttpRequest("GET", "/nowhere", []), request_id="r", stage="local")
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": "nowhere"}


def test_text_bodies_stay_text_and_binary_bodies_are_base64() -> None:
    text = build_event(
        _request("POST", "/auth/login", body='{"email":"é"}'.encode(), Content_Type="application/json"),
        request_id="r",
        stage="local",
    )
    assert text["body"] == '{"email":"é"}' and text["isBase64Encoded"] is False

    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    binary = build_event(
        _request("POST", "/documents", body=png, Content_Type="image/png"), request_id="r", stage="local"
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == png

    not_utf8 = build_event(
        _request("POST", "/documents", body=b"\xff\xfe", Content_Type="text/plain"),
        request_id="r",
        stage="local",
    )
    assert not_utf8["isBase64Encoded"] is True


def test_policy_evaluation_needs_an_allow_and_an_explicit_deny_wins() -> None:
    arn = method_arn("us-east-1", "local", "GET", "/auth/me")
    assert arn == f"{ARN_PREFIX}/GET/auth/me"
    assert policy_allows(_policy("Allow", f"{ARN_PREFIX}/*"), arn)
    assert policy_allows(_policy("Allow", f"{ARN_PREFIX}/GET/auth/me"), arn)
    assert not policy_allows(_policy("Allow", f"{ARN_PREFIX}/POST/*"), arn)
    assert not policy_allows(_policy("Allow", "arn:aws:execute-api:us-east-1:123456789012:local/prod/*"), arn)
    assert not policy_allows({"Statement": []}, arn)
    both = {
        "Statement": [
            {"Action": "execute-api:*", "Effect": "Allow", "Resource": "*"},
            {"Action": ["execute-api:Invoke"], "Effect": "Deny", "Resource": [f"{ARN_PREFIX}/GET/auth/*"]},
        ]
    }
    assert not policy_allows(both, arn)
    assert policy_allows(both, method_arn("us-east-1", "local", "GET", "/users"))


# --- the authorizer contract --------------------------------------------------------


def test_public_route_skips_the_authorizer(
    gateway: Gateway, seen: list[dict[str, Any]], authorizer: FakeAuthorizer
) -> None:
    response = gateway.handle(_request("POST", "/auth/login", body=b"{}", Authorization="Bearer good"))
    assert response.status == 200
    assert authorizer.events == []
    assert seen[0]["requestContext"].get("authorizer") is None
    assert seen[0]["resource"] == "/auth/login"


def test_missing_token_is_401_in_the_common_shape_without_calling_the_authorizer(
    gateway: Gateway, authorizer: FakeAuthorizer
) -> None:
    response = gateway.handle(_request("GET", "/auth/me"))
    assert response.status == 401
    body = _json(response)
    assert set(body) == {"message", "code", "details", "request_id"}
    assert body["code"] == "unauthorized" and body["request_id"]
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("WWW-Authenticate")
    assert authorizer.events == []


def test_authorizer_unauthorized_is_401(gateway: Gateway, seen: list[dict[str, Any]]) -> None:
    response = gateway.handle(_request("GET", "/auth/me", Authorization="Bearer forged"))
    assert response.status == 401
    assert _json(response)["code"] == "unauthorized"
    assert seen == []


def test_deny_policy_is_403(gateway: Gateway, seen: list[dict[str, Any]]) -> None:
    response = gateway.handle(_request("GET", "/auth/me", Authorization="Bearer deny"))
    assert response.status == 403
    assert set(_json(response)) == {"message", "code", "details", "request_id"}
    assert seen == []


def test_allow_injects_context_and_principal_into_the_request_context(
    gateway: Gateway, seen: list[dict[str, Any]], authorizer: FakeAuthorizer
) -> None:
    response = gateway.handle(_request("GET", "/users?limit=5", Authorization="Bearer good"))
    assert response.status == 200
    injected = seen[0]["requestContext"]["authorizer"]
    assert injected == {
        "user_id": "u1",
        "email": "a@example.com",
        "role": "admin",
        "admin": "true",
        "n": "3",
        "principalId": "u1",
    }
    request = authorizer.events[0]
    assert request["type"] == "REQUEST"
    assert request["methodArn"] == f"{ARN_PREFIX}/GET/users"
    assert request["headers"]["Authorization"] == "Bearer good"
    assert "body" not in request


def test_results_are_cached_per_token_until_the_ttl_expires(
    gateway: Gateway, authorizer: FakeAuthorizer, clock: Clock
) -> None:
    for _ in range(3):
        assert gateway.handle(_request("GET", "/auth/me", Authorization="Bearer good")).status == 200
    assert len(authorizer.events) == 1
    clock.now += 301
    assert gateway.handle(_request("GET", "/auth/me", Authorization="Bearer good")).status == 200
    assert len(authorizer.events) == 2


def test_a_cached_policy_is_evaluated_against_each_new_method_arn(
    gateway: Gateway, authorizer: FakeAuthorizer
) -> None:
    assert gateway.handle(_request("GET", "/auth/me", Authorization="Bearer me-only")).status == 200
    assert gateway.handle(_request("GET", "/users", Authorization="Bearer me-only")).status == 403
    assert len(authorizer.events) == 1


def test_unauthorized_answers_are_not_cached(gateway: Gateway, authorizer: FakeAuthorizer) -> None:
    gateway.handle(_request("GET", "/auth/me", Authorization="Bearer nope"))
    gateway.handle(_request("GET", "/auth/me", Authorization="Bearer nope"))
    assert len(authorizer.events) == 2


def test_authorizer_crash_or_bad_context_is_500_not_a_pass(
    gateway: Gateway, seen: list[dict[str, Any]]
) -> None:
    def broken(_event: dict[str, Any], _context: Any) -> Any:
        return {"principalId": "u", "policyDocument": _policy("Allow", "*"), "context": {"nested": {"x": 1}}}

    assert gateway.authorizer is not None
    gateway.authorizer.handler = broken
    response = gateway.handle(_request("GET", "/auth/me", Authorization="Bearer x"))
    assert response.status == 500
    assert seen == []


# --- routing, limits and responses --------------------------------------------------


def test_unknown_path_is_404_and_an_unloaded_function_is_503(gateway: Gateway) -> None:
    missing = gateway.handle(_request("GET", "/nowhere"))
    assert missing.status == 404 and _json(missing)["code"] == "route_not_found"
    unloaded = gateway.handle(_request("GET", "/jobs", Authorization="Bearer good"))
    assert unloaded.status == 503
    assert "jobs" in _json(unloaded)["message"]


def test_unmapped_requests_are_refused_before_any_function_or_authorizer(
    gateway: Gateway, seen: list[dict[str, Any]], authorizer: FakeAuthorizer
) -> None:
    """Deny by default: a method or path the route map does not list never reaches code."""
    wrong_method = gateway.handle(_request("DELETE", "/auth/me"))
    assert wrong_method.status == 405 and wrong_method.header("Allow") == "GET"
    unknown_path = gateway.handle(_request("GET", "/auth/nothing-here"))
    assert unknown_path.status == 404 and _json(unknown_path)["code"] == "route_not_found"
    assert seen == [] and authorizer.events == []


@pytest.mark.parametrize(
    "target", ["/users//", "//users", "/users/", "/us%65rs", "/users///?x=1", "/users/%2e%2e/users"]
)
def test_path_variants_of_a_protected_route_never_skip_the_authorizer(
    gateway: Gateway, seen: list[dict[str, Any]], target: str
) -> None:
    """The adversarial review listed every user with `GET /users//` and no token."""
    response = gateway.handle(_request("GET", target))
    assert response.status in (400, 401, 404)
    assert seen == []


def test_body_over_the_gateway_limit_is_413_before_any_function(
    gateway: Gateway, seen: list[dict[str, Any]]
) -> None:
    response = gateway.handle(_request("POST", "/auth/login", body=b"x" * 1001))
    assert response.status == 413
    assert _json(response)["code"] == "payload_too_large"
    assert seen == []


def test_function_exception_becomes_502_in_the_common_shape(gateway: Gateway) -> None:
    def crash(_event: dict[str, Any], _context: Any) -> Any:
        raise RuntimeError("boom")

    gateway.registry.functions["aiops"].handler = crash
    response = gateway.handle(_request("GET", "/health"))
    assert response.status == 502
    body = _json(response)
    assert body["code"] == "bad_gateway" and "boom" not in response.body.decode()


def test_proxy_response_headers_merge_and_base64_bodies_are_decoded(gateway: Gateway) -> None:
    payload = bytes(range(256))

    def binary(_event: dict[str, Any], _context: Any) -> Any:
        return {
            "statusCode": 201,
            "headers": {
                "Content-Type": "application/octet-stream",
                "Set-Cookie": "ignored",
                "Content-Length": "1",
            },
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(payload).decode(),
            "isBase64Encoded": True,
        }

    gateway.registry.functions["aiops"].handler = binary
    response = gateway.handle(_request("GET", "/health"))
    assert response.status == 201
    assert response.body == payload
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert response.header("Content-Type") == "application/octet-stream"
    assert response.header("Content-Length") is None  # the server computes it
    assert response.header("x-amzn-RequestId")


def test_malformed_proxy_response_is_502(gateway: Gateway) -> None:
    gateway.registry.functions["aiops"].handler = lambda _e, _c: {"body": "no status"}
    assert gateway.handle(_request("GET", "/health")).status == 502


def test_lambda_context_carries_the_functions_name_memory_and_timeout(gateway: Gateway) -> None:
    contexts: list[Any] = []

    def capture(_event: dict[str, Any], context: Any) -> Any:
        contexts.append(context)
        return {"statusCode": 204, "body": ""}

    gateway.registry.functions["documents"].handler = capture
    gateway.handle(_request("GET", "/documents", Authorization="Bearer good"))
    spec = topology.function("documents")
    context = contexts[0]
    assert context.function_name == "documents"
    assert context.memory_limit_in_mb == spec.memory_mb
    assert 0 < context.get_remaining_time_in_millis() <= spec.timeout_s * 1000
    assert context.invoked_function_arn.endswith(":function:documents")


# --- OpenAPI and docs -----------------------------------------------------------------


def _docs_gateway() -> Gateway:
    from devstack import runtime

    registry = Registry()
    for name in ("aiops", "api_docs"):
        module = runtime.load_module(name)
        registry.functions[name] = LocalFunction(topology.function(name), module.lambda_handler, module)
    return Gateway(registry, authorizer=None)


def test_openapi_is_served_by_the_api_docs_function_as_in_aws(db: str) -> None:
    """/openapi.json goes to the api_docs function like any public route: the merged document,
    protected operations marked, public ones not."""
    gateway = _docs_gateway()
    response = gateway.handle(_request("GET", "/openapi.json"))
    assert response.status == 200 and response.function == "api_docs"
    document = json.loads(response.body)
    assert "/health" in document["paths"] and "/auth/me" in document["paths"]
    assert "security" not in document["paths"]["/health"]["get"]  # public
    assert "security" in document["paths"]["/auth/me"]["get"]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    health = gateway.handle(_request("GET", "/health"))
    assert health.status == 200 and json.loads(health.body)["status"] == "ok"


def test_docs_serve_swagger_ui_from_local_assets(db: str) -> None:
    """Swagger UI and its assets come from the api_docs function, nothing from a CDN."""
    gateway = _docs_gateway()
    page = gateway.handle(_request("GET", "/docs"))
    assert page.status == 200
    assert (page.header("Content-Type") or "").startswith("text/html")
    html = page.body.decode()
    assert "/openapi.json" in html and "swagger-ui-bundle" in html
    assert "script-src" in (page.header("Content-Security-Policy") or "")
    script = gateway.handle(_request("GET", "/docs/swagger-ui-bundle.min.js"))
    assert script.status == 200 and len(script.body) > 100_000


# --- over a real socket -----------------------------------------------------------------


@pytest.fixture
def served(gateway: Gateway) -> Iterator[str]:
    server = GatewayServer(("127.0.0.1", 0), gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_round_trip_with_binary_body_and_repeated_response_headers(
    served: str, gateway: Gateway
) -> None:
    def echo_bytes(event: dict[str, Any], _context: Any) -> Any:
        return {
            "statusCode": 200,
            "multiValueHeaders": {"X-Multi": ["1", "2"]},
            "body": event["body"],
            "isBase64Encoded": event["isBase64Encoded"],
        }

    gateway.registry.functions["auth"].handler = echo_bytes
    gateway.max_body_bytes = 10 * 1024 * 1024
    payload = bytes(range(256)) * 4
    response = httpx.post(
        f"{served}/auth/login", content=payload, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers.get_list("X-Multi") == ["1", "2"]


def test_http_oversized_request_is_refused_with_413(served: str) -> None:
    response = httpx.post(f"{served}/auth/login", content=b"x" * 2000, trust_env=False)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_http_204_is_sent_without_a_body_so_keep_alive_stays_in_sync(served: str, gateway: Gateway) -> None:
    gateway.registry.functions["aiops"].handler = lambda _e, _c: {"statusCode": 204, "body": "null"}
    with httpx.Client(base_url=served, trust_env=False) as client:
        first = client.get("/health")
        second = client.post("/auth/login", content=b"{}")  # same connection
    assert first.status_code == 204 and first.content == b""
    assert second.status_code == 200


def test_http_chunked_bodies_are_refused_with_411_in_the_common_shape(served: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"email": '
        yield b'"x"}'

    response = httpx.post(f"{served}/auth/login", content=chunks(), trust_env=False)
    assert response.status_code == 411
    assert set(response.json()) == {"message", "code", "details", "request_id"}
