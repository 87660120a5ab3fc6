"""What the gateway serves itself: `/openapi.json` (one document merged over every API
function's resolver, `lotabots.openapi`) and Swagger UI at `/docs`, from the assets bundled
with Powertools so that it works offline."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devstack.apigw_events import HttpResponse
from devstack.runtime import Registry
from lotabots import topology
from lotabots.http import DOCS_CSP, SECURITY_HEADERS


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


class _Schema:
    """A function's resolver schema, as `merged_document` takes resolvers."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def get_openapi_schema(self) -> dict[str, Any]:
        return self.schema


class OpenApiDocs:
    """The merged document (built once, on first request) and the docs pages."""

    def __init__(self, registry: Registry, *, title: str, version: str) -> None:
        self.registry = registry
        self.title = title
        self.version = version
        self._json: bytes | None = None
        self._lock = threading.Lock()

    def document(self) -> dict[str, Any]:
        """One OpenAPI document over every available API function."""
        from lotabots.openapi import merged_document

        functions = [f for f in map(self.registry.get, (s.name for s in topology.api_functions())) if f]
        # In parallel: each may be a worker's cold start.
        with ThreadPoolExecutor(max_workers=max(1, len(functions))) as pool:
            schemas = list(pool.map(lambda function: function.openapi_schema(), functions))
        apps = [_Schema(schema) for schema in schemas if schema is not None]
        return merged_document(
            apps,
            title=self.title,
            version=self.version,
            description="LotaBots Serverless, served by the local stack.",
        )

    def document_json(self) -> bytes:
        with self._lock:
            if self._json is None:
                self._json = json.dumps(self.document(), indent=2).encode()
            return self._json

    def respond(self, method: str, path: str, request_id: str) -> HttpResponse | None:
        """The answer for a docs path (GET/HEAD only), or None when `path` is not one."""
        if method not in ("GET", "HEAD"):
            return None
        if path == "/openapi.json":
            return _static(self.document_json(), "application/json", request_id)
        if path in ("/docs", "/docs/"):
            return _static(swagger_html().encode(), "text/html; charset=utf-8", request_id, docs=True)
        asset = SWAGGER_ASSETS.get(path)
        if asset is not None:
            return _static(asset[1].read_bytes(), asset[0], request_id, docs=True)
        return None


def _static(body: bytes, content_type: str, request_id: str, *, docs: bool = False) -> HttpResponse:
    headers = dict(SECURITY_HEADERS)
    if docs:
        headers["Content-Security-Policy"] = DOCS_CSP
        headers["Cache-Control"] = "no-cache"
    pairs = [("Content-Type", content_type), *headers.items(), ("X-Request-Id", request_id)]
    return HttpResponse(200, pairs, body, function="gateway")
