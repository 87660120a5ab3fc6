"""API Gateway's REST proxy integration: an HTTP request becomes the event a function receives
(payload format 1.0, and the REQUEST authorizer's event), and the function's proxy response
becomes the HTTP response, with API Gateway's rules for bodies, headers and encodings."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.runtime import ACCOUNT_ID
from lotabots import access

API_ID = "local"
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
    """The REQUEST authorizer's event: the proxy event without its body, plus the method ARN."""
    event = {k: v for k, v in proxy_event.items() if k not in ("body", "isBase64Encoded")}
    return {"type": "REQUEST", "methodArn": arn, **event}


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
