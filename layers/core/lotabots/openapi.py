"""The platform's OpenAPI document, built the same way wherever it is served.

One document over every API function's resolver (Powertools `OpenAPIMerge`), plus what the
shared HTTP layer adds to every route, which no single resolver can know:

- the bearer scheme and `x-roles` on each protected operation, from `access.ROUTE_ROLES`;
- the error answers every operation can give (`lotabots.http` refuses bad bodies, unknown
  routes, stale or missing credentials before the handler runs; the database or a dependency
  can be unavailable), all in the common `ErrorResponse` shape — replacing Powertools' own
  `HTTPValidationError` 422, which this platform never sends.

It is built from the functions' resolvers wherever they can all be imported: at synth time
(the CDK app bundles it with the `api_docs` function, which serves it at `/openapi.json` with
Swagger UI at `/docs` in every stage) and, without a bundled copy, from the functions in this
checkout (the local stack, tests). The API fuzz tests check responses against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from lotabots import access, topology

TITLE = "LotaBots Serverless API"
DESCRIPTION = "Every route of the platform's API functions, with the roles each one needs (x-roles)."
BEARER_SCHEME = "bearerAuth"
ERROR_SCHEMA = "ErrorResponse"


class ErrorResponse(BaseModel):
    """The platform's error shape: every 4xx and 5xx answer has it."""

    message: str
    code: str
    details: Any = None
    request_id: str | None = None


COMMON_ERRORS: dict[int, str] = {
    400: "malformed request: bad JSON or encoding, a bad path, cursor or filter",
    404: "no such route or no such object",
    409: "conflict with the object's current state",
    413: "request body too large",
    422: "the request failed validation (details name the fields)",
    429: "too many requests: wait Retry-After seconds",
    500: "internal error (never expected; reported and alarmed)",
    503: "a dependency (database, keys, rate limits) is unavailable: retry after Retry-After",
}
BODY_ERRORS: dict[int, str] = {415: "the body must be JSON (Content-Type: application/json)"}
PROTECTED_ERRORS: dict[int, str] = {
    401: "no valid token, or the account is disabled or its tokens were revoked",
    403: "your role may not call this route",
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def merged_document(
    apps: Iterable[Any], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """The merged, annotated document for the resolvers in `apps`."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    merge = OpenAPIMerge(
        title=title,
        version=version,
        description=description,
        security_schemes={BEARER_SCHEME: HTTPBearer(bearerFormat="JWT")},
        on_conflict="error",
    )
    for app in apps:
        merge.add_schema(app.get_openapi_schema())
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    annotate(document)
    return document


def route_responses(
    status: int, model: type[BaseModel] | None, descriptions: Mapping[int, str], *errors: int
) -> dict[int, OpenAPIResponse]:
    """OpenAPI documentation of a route's answers: its success (`model`, or no body) and the
    errors it can give, each in the common error shape with its function's description."""
    documented: dict[int, OpenAPIResponse] = {
        status: {"description": "success", "content": {"application/json": {"model": model}}}
        if model
        else {"description": "success, no body"}
    }
    for code in errors:
        documented[code] = {
            "description": descriptions[code],
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return documented


def annotate(document: dict[str, Any]) -> None:
    """Add security, roles and the common error answers to every operation, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = ErrorResponse.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    error_content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
    for template, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            roles = access.ROUTE_ROLES.get((method.upper(), template))
            errors = dict(COMMON_ERRORS)
            if "requestBody" in operation:
                errors.update(BODY_ERRORS)
            if roles:
                operation["security"] = [{BEARER_SCHEME: []}]
                operation["x-roles"] = sorted(role.value for role in roles)
                errors.update(PROTECTED_ERRORS)
            responses = operation.setdefault("responses", {})
            if "204" in responses:  # no content, so no media type
                responses["204"].pop("content", None)
            for code, description in errors.items():
                declared = responses.get(str(code)) or {}
                responses[str(code)] = {
                    "description": declared.get("description") or description,
                    "content": error_content,
                }


def function_apps(root: Path) -> list[Any]:
    """The resolver (`app`) of every API function under `root`, each imported from its own
    `functions/<name>/app.py` as Lambda does (one module per function)."""
    apps = []
    for spec in topology.api_functions():
        module = topology.load_function_module(spec.name, root, "lotabots_openapi_")
        apps.append(module.app)
    return apps


def repository_document(root: Path, *, version: str = "1") -> dict[str, Any]:
    """The merged document of the API functions in the checkout at `root`."""
    return merged_document(function_apps(root), title=TITLE, version=version, description=DESCRIPTION)
