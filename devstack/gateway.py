"""An API Gateway (REST API, Lambda proxy integration) in front of the in-process functions.

Each HTTP request becomes the proxy event API Gateway would send; routes that are not public
go through the REQUEST authorizer first (result cached per Authorization header, policy
evaluated against the request's method ARN, as API Gateway does); the function's proxy
response is written back. The gateway also serves the merged OpenAPI document and Swagger UI.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.runtime import ACCOUNT_ID, LocalFunction, Registry
from lotabots import access, topology
from lotabots.errors import error_body
from lotabots.http import SECURITY_HEADERS

log = logging.getLogger("devstack.gateway")

API_ID = "local"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
TEXT_SUFFIXES = ("+json", "+xml")


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query string as sent
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    host: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    function: str = "-"
    note: str = ""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


# --- the proxy event ---------------------------------------------------------------


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(TEXT_TYPES) or media.endswith(TEXT_SUFFIXES)


def encode_body(body: bytes, content_type: str | None) -> tuple[str | None, bool]:
    """The event's (body, isBase64Encoded): text as is, anything binary as base64."""
    if not body:
        return None, False
    if _is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def build_event(
    request: HttpRequest,
    *,
    request_id: str,
    stage: str,
    resource: str | None = None,
    canonical_path: str | None = None,
) -> dict[str, Any]:
    """The API Gateway REST proxy event for `request` (payload format 1.0). `path` is the path
    as sent (still percent-encoded, as REST APIs deliver it); path parameters come from the
    canonical path the route was matched on."""
    split = urlsplit(request.target)
    path = split.path or "/"
    method = request.method.upper()
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    pairs = parse_qsl(split.query, keep_blank_values=True)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    if resource is None:
        resource, params = "/{proxy+}", {"proxy": path.lstrip("/")}
    else:
        params = access.path_parameters(resource, canonical_path or path) or {}
    body, is_base64 = encode_body(request.body, request.header("content-type"))
    now = datetime.now(UTC)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": request.host,
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent"),
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "apiKey": None,
            },
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def method_arn(region: str, stage: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{API_ID}/{stage}/{method.upper()}/{path.lstrip('/')}"


def authorizer_event(proxy_event: dict[str, Any], arn: str) -> dict[str, Any]:
    event = {k: v for k, v in proxy_event.items() if k not in ("body", "isBase64Encoded")}
    return {"type": "REQUEST", "methodArn": arn, **event}


# --- the authorizer ----------------------------------------------------------------


def _arn_pattern(resource: str) -> re.Pattern[str]:
    return re.compile(
        "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource) + "$"
    )


def policy_allows(policy: dict[str, Any], arn: str) -> bool:
    """IAM evaluation for execute-api:Invoke: an explicit Deny wins, else an Allow is needed."""
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(_arn_pattern(a).match("execute-api:Invoke") for a in actions):
            continue
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if not any(_arn_pattern(r).match(arn) for r in resources):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        if effect == "allow":
            allowed = True
    return allowed


class AuthorizerError(Exception):
    """The authorizer's answer could not be used (API Gateway answers 500)."""


@dataclass(frozen=True)
class AuthorizerResult:
    principal_id: str
    policy: dict[str, Any]
    context: dict[str, str]

    @classmethod
    def parse(cls, response: Any) -> AuthorizerResult:
        if not isinstance(response, dict):
            raise AuthorizerError("authorizer returned no object")
        principal = response.get("principalId")
        policy = response.get("policyDocument")
        if not principal or not isinstance(policy, dict):
            raise AuthorizerError("authorizer response lacks principalId or policyDocument")
        context: dict[str, str] = {}
        for key, value in (response.get("context") or {}).items():
            if isinstance(value, bool):
                context[key] = str(value).lower()
            elif isinstance(value, str | int | float):
                context[key] = str(value)
            elif value is not None:
                raise AuthorizerError(f"authorizer context value {key!r} is not a string, number or boolean")
        return cls(str(principal), policy, context)


@dataclass
class AuthorizerCache:
    """Results per identity source value, like API Gateway's authorizer result cache."""

    ttl_seconds: float
    clock: Callable[[], float] = time.monotonic
    max_entries: int = 10_000
    _entries: dict[str, tuple[float, AuthorizerResult]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> AuthorizerResult | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: str, result: AuthorizerResult) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            now = self.clock()
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (now + self.ttl_seconds, result)


# --- the gateway -------------------------------------------------------------------


class Gateway:
    def __init__(
        self,
        registry: Registry,
        *,
        authorizer: LocalFunction | None,
        stage: str = "local",
        region: str = "us-east-1",
        cache_seconds: float = 300,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.monotonic,
        title: str = "LotaBots API",
        version: str = "0",
    ) -> None:
        self.registry = registry
        self.authorizer = authorizer
        self.stage = stage
        self.region = region
        self.max_body_bytes = max_body_bytes
        self.cache = AuthorizerCache(cache_seconds, clock)
        self.title = title
        self.version = version
        self._openapi: bytes | None = None
        self._openapi_lock = threading.Lock()

    # A request ------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Deny by default, as the Lambda side does (`lotabots.http`): the canonical path must
        match a route-map entry before any function or the authorizer is called."""
        request_id = str(uuid.uuid4())
        method = request.method.upper()
        if len(request.body) > self.max_body_bytes:
            return self.error(413, "request body is larger than 10 MB", "payload_too_large", request_id)
        try:
            path = access.canonical_path(urlsplit(request.target).path or "/")
        except access.NonCanonicalPath as exc:
            return self.error(400, str(exc), "bad_path", request_id)
        builtin = self._builtin(method, path, request_id)
        if builtin is not None:
            return builtin
        spec = topology.function_for_path(path)
        rule = access.rule_for(method, path)
        allowed = access.methods_for(path)
        if spec is None or not allowed:
            return self.error(404, "no such route", "route_not_found", request_id)
        if rule is None and method != "OPTIONS":
            return self.error(
                405,
                f"{method} is not allowed here",
                "method_not_allowed",
                request_id,
                details={"allowed": allowed},
                headers=[("Allow", ", ".join(allowed))],
            )
        function = self.registry.get(spec.name)
        if function is None:
            reason = self.registry.failures.get(spec.name, "not loaded")
            return self.error(
                503,
                f"function {spec.name!r} is not available in the local stack",
                "function_unavailable",
                request_id,
                details={"reason": reason.splitlines()[-1] if reason else None},
            )
        event = build_event(
            request,
            request_id=request_id,
            stage=self.stage,
            resource=rule.template if rule else None,
            canonical_path=path,
        )
        note = ""
        if rule is not None and not rule.is_public:
            outcome = self._authorize(request, event, method, path, request_id)
            if isinstance(outcome, HttpResponse):
                return outcome
            result, note = outcome
            event["requestContext"]["authorizer"] = {**result.context, "principalId": result.principal_id}
        response = self._invoke(function, event, request_id)
        response.note = note
        return response

    def _authorize(
        self, request: HttpRequest, event: dict[str, Any], method: str, path: str, request_id: str
    ) -> tuple[AuthorizerResult, str] | HttpResponse:
        identity = request.header("authorization")
        if not identity:  # API Gateway answers without calling the authorizer
            return self.error(401, "authentication required", "unauthorized", request_id)
        arn = method_arn(self.region, self.stage, method, path)
        result = self.cache.get(identity)
        note = "authorizer: cached"
        if result is None:
            if self.authorizer is None:
                return self.error(
                    500, "the authorizer is not available", "authorizer_unavailable", request_id
                )
            note = "authorizer: called"
            try:
                result = AuthorizerResult.parse(self.authorizer.invoke(authorizer_event(event, arn)))
            except AuthorizerError as exc:
                log.error("authorizer misconfigured: %s", exc)
                return self.error(500, "authorizer configuration error", "authorizer_error", request_id)
            except Exception as exc:
                if str(exc) == "Unauthorized":
                    return self.error(401, "authentication required", "unauthorized", request_id)
                log.error("authorizer failed:\n%s", traceback.format_exc())
                return self.error(500, "authorizer failed", "authorizer_error", request_id)
            self.cache.put(identity, result)
        if not policy_allows(result.policy, arn):
            return self.error(403, "not allowed to call this route", "forbidden", request_id)
        return result, note

    def _invoke(self, function: LocalFunction, event: dict[str, Any], request_id: str) -> HttpResponse:
        started = time.monotonic()
        try:
            raw = function.invoke(event)
        except Exception:
            log.error("%s raised:\n%s", function.name, traceback.format_exc())
            return self.error(502, "Internal server error", "bad_gateway", request_id, function=function.name)
        elapsed = time.monotonic() - started
        if elapsed > function.spec.timeout_s:
            log.warning(
                "%s took %.1f s, longer than its %d s timeout (Lambda would have stopped it)",
                function.name,
                elapsed,
                function.spec.timeout_s,
            )
        try:
            return proxy_response(raw, request_id, function.name)
        except (TypeError, ValueError, KeyError) as exc:
            log.error("%s returned a malformed proxy response: %s", function.name, exc)
            return self.error(502, "Internal server error", "bad_gateway", request_id, function=function.name)

    # Gateway-made answers --------------------------------------------------------

    def error(
        self,
        status: int,
        message: str,
        code: str,
        request_id: str,
        *,
        details: Any = None,
        function: str = "-",
        headers: list[tuple[str, str]] | None = None,
    ) -> HttpResponse:
        headers = [("Content-Type", "application/json"), *SECURITY_HEADERS.items(), *(headers or [])]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="lotabots"'))
        headers += [("X-Request-Id", request_id), ("x-amzn-RequestId", request_id)]
        body = json.dumps(error_body(message, code, details=details, request_id=request_id)).encode()
        return HttpResponse(status, headers, body, function=function)

    def _builtin(self, method: str, path: str, request_id: str) -> HttpResponse | None:
        if method not in ("GET", "HEAD") or topology.function_for_path(path) is not None:
            return None
        if path == "/openapi.json":
            return self._static(self.openapi_json(), "application/json", request_id)
        if path in ("/docs", "/docs/"):
            return self._static(swagger_html().encode(), "text/html; charset=utf-8", request_id, docs=True)
        asset = SWAGGER_ASSETS.get(path)
        if asset is not None:
            return self._static(asset[1].read_bytes(), asset[0], request_id, docs=True)
        return None

    def _static(self, body: bytes, content_type: str, request_id: str, *, docs: bool = False) -> HttpResponse:
        from lotabots.http import DOCS_CSP

        headers = dict(SECURITY_HEADERS)
        if docs:
            headers["Content-Security-Policy"] = DOCS_CSP
            headers["Cache-Control"] = "no-cache"
        pairs = [("Content-Type", content_type), *headers.items(), ("X-Request-Id", request_id)]
        return HttpResponse(200, pairs, body, function="gateway")

    # OpenAPI ----------------------------------------------------------------------

    def openapi_json(self) -> bytes:
        with self._openapi_lock:
            if self._openapi is None:
                self._openapi = json.dumps(self.openapi(), indent=2).encode()
            return self._openapi

    def openapi(self) -> dict[str, Any]:
        """One OpenAPI document over every loaded API function (`lotabots.openapi`)."""
        from lotabots.openapi import merged_document

        apps = []
        for spec in topology.api_functions():
            function = self.registry.get(spec.name)
            app = getattr(function.module, "app", None) if function else None
            if app is not None and hasattr(app, "get_openapi_schema"):
                apps.append(app)
        return merged_document(
            apps,
            title=self.title,
            version=self.version,
            description="LotaBots Serverless, served by the local stack.",
        )


def proxy_response(raw: Any, request_id: str, function: str) -> HttpResponse:
    """Turn a Lambda proxy response into an HTTP response (API Gateway's merge rules)."""
    if not isinstance(raw, dict):
        raise TypeError("not an object")
    status = int(raw["statusCode"])
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, values in (raw.get("multiValueHeaders") or {}).items():
        if name.lower() in HOP_BY_HOP:
            continue
        seen.add(name.lower())
        headers += [(name, str(v)) for v in values]
    for name, value in (raw.get("headers") or {}).items():
        if name.lower() not in HOP_BY_HOP and name.lower() not in seen:
            headers.append((name, str(value)))
    headers.append(("x-amzn-RequestId", request_id))
    body = raw.get("body") or ""
    data = base64.b64decode(body) if raw.get("isBase64Encoded") else str(body).encode("utf-8")
    return HttpResponse(status, headers, data, function=function)


# --- Swagger UI (assets bundled with Powertools, so /docs works offline) --------------


def _swagger_dir() -> Path:
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui

    return Path(swagger_ui.__file__).parent


SWAGGER_ASSETS: dict[str, tuple[str, Path]] = {
    "/docs/swagger-ui-bundle.min.js": ("application/javascript", _swagger_dir() / "swagger-ui-bundle.min.js"),
    "/docs/swagger-ui.min.css": ("text/css", _swagger_dir() / "swagger-ui.min.css"),
}


def swagger_html() -> str:
    return """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>LotaBots API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.min.css">
</head>
<body>
  <div id="swagger-ui">Loading...</div>
  <script src="/docs/swagger-ui-bundle.min.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis],
    });
  </script>
</body>
</html>
"""


# --- the HTTP server ---------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        started = time.monotonic()
        response = self._respond()
        self._write(response)
        note = f" ({response.note})" if response.note else ""
        elapsed_ms = (time.monotonic() - started) * 1000
        log.info(
            "%s %s -> %d %s %.1f ms%s",
            self.command,
            self.path,
            response.status,
            response.function,
            elapsed_ms,
            note,
        )

    def _respond(self) -> HttpResponse:
        gateway = self.server.gateway
        request_id = str(uuid.uuid4())
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            return gateway.error(411, "send the body with a Content-Length", "length_required", request_id)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            return gateway.error(400, "invalid Content-Length", "bad_request", request_id)
        if length > gateway.max_body_bytes:
            self.close_connection = True  # the body is never read
            return gateway.error(413, "request body is larger than 10 MB", "payload_too_large", request_id)
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
            source_ip=self.client_address[0],
            host=self.headers.get("Host") or f"127.0.0.1:{self.server.server_port}",
        )
        try:
            return gateway.handle(request)
        except Exception:
            log.error("the gateway failed on %s %s:\n%s", self.command, self.path, traceback.format_exc())
            return gateway.error(500, "internal error", "internal_error", request_id)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        # 1xx, 204 and 304 answers carry no body (API Gateway drops one a function returns).
        bodiless = response.status < 200 or response.status in (204, 304)
        if not bodiless:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and not bodiless:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, QUERY...) reaches the gateway too: the route map answers 405."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log: `_serve` logs one line per request."""


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, _Handler)
        self.gateway = gateway
