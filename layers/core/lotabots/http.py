"""The API layer every HTTP function shares.

`create_resolver()` gives an `APIGatewayRestResolver` with validation (pydantic models are
the OpenAPI contract), CORS and error handlers that all speak the common error shape.
`http_handler(app)` builds the Lambda entry point: it rejects oversized bodies, enforces the
route → roles map from `lotabots.access` before any parsing, resolves, and adds security
headers to every response, errors included.
"""

from __future__ import annotations

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
from lotabots.errors import AppError, Forbidden, PayloadTooLarge, Unauthorized, error_body
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
# Swagger UI loads its script and styles from a CDN, so /docs gets a looser policy.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "connect-src 'self'; frame-ancestors 'none'"
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
        return json_error(
            exc.status,
            exc.message,
            exc.code,
            details=exc.details,
            request_id=_request_id(app),
            headers=exc.headers,
        )

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


def _check_access(event: dict[str, Any]) -> None:
    method = str(event.get("httpMethod") or "").upper()
    if method == "OPTIONS":
        return
    rule = access.rule_for(method, str(event.get("path") or "/"))
    if rule is None or rule.is_public:
        return
    principal = principal_from_event(event)
    if principal is None:
        raise Unauthorized()
    if not principal.has_any(rule.roles):
        raise Forbidden("your role may not call this route", details={"required_roles": sorted(rule.roles)})


def _early_response(event: dict[str, Any], exc: AppError) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId")
    return {
        "statusCode": int(exc.status),
        "headers": {"Content-Type": "application/json", **exc.headers},
        "body": json.dumps(error_body(exc.message, exc.code, details=exc.details, request_id=request_id)),
        "isBase64Encoded": False,
    }


def _with_security_headers(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
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
            _check_access(event)
        except AppError as exc:
            return _with_security_headers(event, _early_response(event, exc))
        return _with_security_headers(event, app.resolve(event, context))

    return handler
