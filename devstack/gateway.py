"""The local API Gateway (REST API, Lambda proxy integration): routing and the HTTP server.

Each HTTP request is matched against the route map (deny by default), turned into the proxy
event API Gateway would send (`apigw_events`), checked by the REQUEST authorizer for routes
that are not public (results cached per Authorization header, `authorizer_cache`; the policy
evaluated against the request's method ARN, `iam_policy`), and handed to the function; its
proxy response is written back. `/openapi.json` and `/docs` are routes of the `api_docs` function, as in AWS.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devstack.apigw_events import (
    HttpRequest,
    HttpResponse,
    authorizer_event,
    build_event,
    method_arn,
    proxy_response,
)
from devstack.authorizer_cache import AuthorizerCache, AuthorizerError, AuthorizerResult
from devstack.iam_policy import policy_allows
from devstack.runtime import Invocable, Registry
from lotabots import access, topology
from lotabots.errors import error_body
from lotabots.http import SECURITY_HEADERS

log = logging.getLogger("devstack.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


class Gateway:
    def __init__(
        self,
        registry: Registry,
        *,
        authorizer: Invocable | None,
        stage: str = "local",
        region: str = "us-east-1",
        cache_seconds: float = 300,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.authorizer = authorizer
        self.stage = stage
        self.region = region
        self.max_body_bytes = max_body_bytes
        self.cache = AuthorizerCache(cache_seconds, clock)

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

    def _invoke(self, function: Invocable, event: dict[str, Any], request_id: str) -> HttpResponse:
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
