"""The platform's error model: one JSON shape for every failure a caller can see.

`{"message", "code", "details", "request_id"}`; 4xx for the caller's fault with a message a
person can act on; 5xx never carries internals.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class AppError(Exception):
    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details
        self.headers = headers or {}


class BadRequest(AppError):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"


class Unauthorized(AppError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"

    def __init__(self, message: str = "authentication required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="lotabots"'})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class NotFound(AppError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class MethodNotAllowed(AppError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    code = "method_not_allowed"


class Conflict(AppError):
    status = HTTPStatus.CONFLICT
    code = "conflict"


class PreconditionFailed(AppError):
    status = HTTPStatus.PRECONDITION_FAILED
    code = "precondition_failed"


class PayloadTooLarge(AppError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class UnprocessableEntity(AppError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "validation_error"


class TooManyRequests(AppError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, int(retry_after)))})
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"


def error_body(message: str, code: str, *, details: Any = None, request_id: str | None = None) -> dict:
    return {"message": message, "code": code, "details": details, "request_id": request_id}
