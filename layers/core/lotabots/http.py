"""The API layer every HTTP function shares.

`create_resolver()` gives an `APIGatewayRestResolver` with validation (pydantic models are
the OpenAPI contract), CORS and error handlers that all speak the common error shape.
`http_handler(app)` builds the Lambda entry point. Before any handler runs it:

1. rejects oversized bodies;
2. canonicalises the path (`access.canonical_path`) and hands the resolver that same path;
3. denies by default: a (method, path) no `access.ROUTE_ROLES` entry matches is a 404/405;
4. for a protected route, re-reads the caller's role and account state from the database
   (`auth.principals`: caches in front of us may be stale) and checks the route's roles;
5. checks a request body: JSON media type, UTF-8, no lone surrogates, bounded nesting.

Then it resolves and adds security headers to every response, errors included.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from lotabots import access, config
from lotabots.access import Principal, Role
from lotabots.errors import (
    AppError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    error_body,
)
from lotabots.observability import logger, metrics, tracer

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Swagger UI (served by the api_docs function from its own assets) starts itself with an
# inline script and draws icons from data: URIs, so /docs gets a looser policy, same origin only.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def _request_id(app: APIGatewayRestResolver) -> str | None:
    try:
        return app.current_event.request_context.request_id
    except (AttributeError, KeyError, TypeError):
        return None


def json_error(
    status: int,
    message: str,
    code: str,
    *,
    details: Any = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(message, code, details=details, request_id=request_id), default=str),
        headers=headers or {},
    )


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        details.append(
            {"field": ".".join(loc), "message": error.get("msg", ""), "type": error.get("type", "")}
        )
    return details


def create_resolver() -> APIGatewayRestResolver:
    settings = config.core()
    cors = CORSConfig(
        allow_origin=settings.cors_allow_origin,
        allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
        expose_headers=["ETag", "Retry-After", "Location"],
        max_age=600,
    )
    # A handler returning something its declared model rejects is our bug, not the caller's: 500.
    app = APIGatewayRestResolver(
        enable_validation=True,
        cors=cors,
        response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
    )

    @app.exception_handler(AppError)
    def _app_error(exc: AppError) -> Response:
        if exc.status >= 500:
            logger.error("request failed", extra={"code": exc.code})
        return _error_response(exc, _request_id(app))

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return json_error(
                400, "request body is not valid JSON", "malformed_json", request_id=_request_id(app)
            )
        return json_error(
            422,
            "request failed validation",
            "validation_error",
            details=_validation_details(errors),
            request_id=_request_id(app),
        )

    @app.exception_handler(ResponseValidationError)
    def _invalid_response(exc: ResponseValidationError) -> Response:
        logger.error("response failed its own schema", extra={"errors": _validation_details(exc.errors())})
        return json_error(500, "internal error", "internal_error", request_id=_request_id(app))

    @app.exception_handler(ValidationError)
    def _invalid_model(exc: ValidationError) -> Response:
        return json_error(
            422,
            "request failed validation",
            "validation_error",
            details=_validation_details(exc.errors()),
            request_id=_request_id(app),
        )

    @app.not_found
    def _not_found(_exc: NotFoundError) -> Response:
        return json_error(404, "no such route", "route_not_found", request_id=_request_id(app))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        unavailable = database_unavailable(exc)
        if unavailable is not None:
            return _error_response(unavailable, _request_id(app))
        logger.exception("unhandled error")
        metrics.add_metric(name="UnhandledErrors", unit="Count", value=1)
        return json_error(500, "internal error", "internal_error", request_id=_request_id(app))

    return app


def principal_from_event(event: dict[str, Any]) -> Principal | None:
    """Read the principal the authorizer put into the request context, if any."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    user_id = context.get("user_id") or context.get("principalId")
    role = context.get("role")
    if not user_id or not role:
        return None
    try:
        return Principal(user_id=str(user_id), email=str(context.get("email") or ""), role=Role(role))
    except ValueError:
        return None


def _issued_at(event: dict[str, Any]) -> float | None:
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    try:
        return float(context["iat"])
    except (KeyError, TypeError, ValueError):
        return None


def current_principal(app: APIGatewayRestResolver) -> Principal:
    """The authenticated caller of the current request; 401 if there is none."""
    found = principal_from_event(app.current_event.raw_event)
    if found is None:
        raise Unauthorized()
    return found


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        # Decoded size from the encoded length: no need to decode a large body just to reject it.
        return len(body) * 3 // 4 - body[-2:].count("=")
    return len(body.encode("utf-8")) if isinstance(body, str) else len(body)


def database_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """A 503 for a database that cannot be reached (the caller may retry), else None."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError

    if isinstance(exc, OperationalError | InterfaceError | TimeoutError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        logger.warning("database unavailable", extra={"error_type": type(exc).__name__})
        return ServiceUnavailable("the database is unavailable; retry shortly", headers={"Retry-After": "5"})
    return None


def _canonicalise(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its canonical path: what the route map and the resolver both see."""
    try:
        path = access.canonical_path(str(event.get("path") or "/"))
    except access.NonCanonicalPath as exc:
        raise BadRequest(str(exc), code="bad_path") from None
    return {**event, "path": path}


def _check_access(event: dict[str, Any]) -> None:
    """Deny by default; for protected routes the caller's role as the database holds it now."""
    method = str(event.get("httpMethod") or "").upper()
    path = event["path"]
    rule = access.rule_for(method, path)
    if rule is None:
        allowed = access.methods_for(path)
        if not allowed:
            raise NotFound("no such route", code="route_not_found")
        if method == "OPTIONS":  # CORS preflight: no credentials; the resolver answers it
            return
        raise MethodNotAllowed(
            f"{method} is not allowed here",
            details={"allowed": allowed},
            headers={"Allow": ", ".join(allowed)},
        )
    if rule.is_public:
        return
    principal = principal_from_event(event)
    if principal is None:
        raise Unauthorized()
    from lotabots.auth import principals

    principal = principals.current(principal, _issued_at(event))
    if not principal.has_any(rule.roles):
        raise Forbidden("your role may not call this route", details={"required_roles": sorted(rule.roles)})
    event["requestContext"]["authorizer"] = {
        **event["requestContext"]["authorizer"],
        "role": principal.role.value,
        "email": principal.email,
    }


JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_JSON_DEPTH = 32


def _content_type_header(event: dict[str, Any]) -> tuple[str | None, str]:
    """(the header's name as sent, its value); (None, "") when the request has none."""
    for name, value in (event.get("headers") or {}).items():
        if str(name).lower() == "content-type":
            return str(name), str(value)
    return None, ""


def _check_body(event: dict[str, Any]) -> None:
    """A body must be JSON the resolver can take as is: anything else is a 4xx here."""
    body = event.get("body")
    if not body or str(event.get("httpMethod") or "").upper() not in JSON_BODY_METHODS:
        return
    header, content_type = _content_type_header(event)
    media, _, parameters = content_type.partition(";")
    if header is not None and media.strip().lower() != "application/json":
        raise UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json",
            details={"content_type": content_type},
        )
    if header is not None:  # the resolver matches the media type case-sensitively
        event["headers"] = {
            **event["headers"],
            header: "application/json" + (";" + parameters if parameters else ""),
        }
    raw: bytes | str = body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("request body is not valid base64", code="malformed_body") from None
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        document = json.loads(text)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8", code="malformed_body") from None
    except RecursionError:
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", code="too_deep") from None
    except ValueError:
        raise BadRequest("request body is not valid JSON", code="malformed_json") from None
    _check_json_value(document)


def _check_json_value(document: Any) -> None:
    """Bounded nesting and well-formed Unicode (a lone surrogate cannot be stored or logged)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", code="too_deep")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "request body contains a lone surrogate (\\ud800-\\udfff) that is not valid Unicode",
            code="invalid_unicode",
        ) from None


def _error_response(exc: AppError, request_id: str | None) -> Response:
    return json_error(
        exc.status, exc.message, exc.code, details=exc.details, request_id=request_id, headers=exc.headers
    )


def _early_response(event: dict[str, Any], exc: AppError) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId")
    return {
        "statusCode": int(exc.status),
        "headers": {"Content-Type": "application/json", **exc.headers},
        "body": json.dumps(error_body(exc.message, exc.code, details=exc.details, request_id=request_id)),
        "isBase64Encoded": False,
    }


def _with_security_headers(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    if response.get("statusCode") == 204:  # no content, so no content type either
        response["body"] = ""
        for field in ("headers", "multiValueHeaders"):
            for name in [n for n in (response.get(field) or {}) if n.lower() == "content-type"]:
                del response[field][name]
    headers = dict(SECURITY_HEADERS)
    if str(event.get("path", "")).startswith("/docs"):
        headers["Content-Security-Policy"] = DOCS_CSP
        headers["Cache-Control"] = "no-cache"
    request_id = (event.get("requestContext") or {}).get("requestId")
    if request_id:
        headers["X-Request-Id"] = request_id
    multi = response.get("multiValueHeaders")
    if multi is not None:
        for name, value in headers.items():
            multi.setdefault(name, [value])
    else:
        response["headers"] = {**headers, **(response.get("headers") or {})}
    return response


def http_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point for an API function built on `app`."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            if _body_size(event) > config.core().max_body_bytes:
                raise PayloadTooLarge(
                    f"request body is larger than {config.core().max_body_bytes} bytes",
                    details={"limit_bytes": config.core().max_body_bytes},
                )
            event = _canonicalise(event)
            try:
                _check_access(event)
            except Exception as exc:
                unavailable = database_unavailable(exc)
                if unavailable is None:
                    raise
                raise unavailable from None
            _check_body(event)
        except AppError as exc:
            return _with_security_headers(event, _early_response(event, exc))
        return _with_security_headers(event, app.resolve(event, context))

    return handler
