"""API documentation, public: the merged OpenAPI document (`GET /openapi.json`) and Swagger UI
(`GET /docs`, its script and styles under `/docs/`).

The document is built once, when the CDK app synthesizes, from every API function's resolver
(`lotabots.openapi.repository_document`) and shipped next to this handler as `openapi.json`;
without it (the local stack, tests) it is built from the functions in this checkout on first
use. Swagger UI's assets come from Powertools in the layer, so the page loads nothing from a
CDN. Links follow the stage (`/<stage>/docs` on an execute-api URL, `/docs` behind a custom
domain mapped at its root or locally), and the document names that base as its server.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam

from lotabots import (
    openapi,
    snapstart,  # noqa: F401  (registers the SnapStart runtime hooks)
)
from lotabots.errors import NotFound
from lotabots.http import create_resolver, http_handler

app = create_resolver()

BUNDLED_DOCUMENT = Path(__file__).with_name("openapi.json")
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
ASSETS = {"swagger-ui-bundle.min.js": "application/javascript", "swagger-ui.min.css": "text/css"}
HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{base}/docs/swagger-ui.min.css">
</head>
<body>
  <div id="swagger-ui">Loading...</div>
  <script src="{base}/docs/swagger-ui-bundle.min.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{base}/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis],
    }});
  </script>
</body>
</html>
"""


@cache
def _document() -> dict[str, Any]:
    if BUNDLED_DOCUMENT.is_file():
        document: dict[str, Any] = json.loads(BUNDLED_DOCUMENT.read_bytes())
        return document
    return openapi.repository_document(CHECKOUT_ROOT)


@cache
def _document_for(base: str) -> str:
    return json.dumps({**_document(), "servers": [{"url": base or "/"}]}, separators=(",", ":"))


@cache
def _asset(name: str) -> str:
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui

    return (Path(swagger_ui.__file__).parent / name).read_text(encoding="utf-8")


def _base() -> str:
    """The path prefix in front of the routes: the stage on an execute-api URL
    (`https://<api>.execute-api.<region>.amazonaws.com/<stage>/docs`), nothing elsewhere (a
    custom domain mapped at its root, the local stack)."""
    context = app.current_event.request_context
    domain = str(context.domain_name or "")
    return f"/{context.stage}" if ".execute-api." in domain and context.stage else ""


@app.get(
    "/openapi.json",
    summary="The OpenAPI document of the whole API",
    tags=["platform"],
    responses={200: {"description": "OpenAPI 3 document", "content": {"application/json": {}}}},
)
def get_openapi() -> Response[Any]:
    return Response(200, content_types.APPLICATION_JSON, _document_for(_base()))


@app.get(
    "/docs",
    summary="Swagger UI for the OpenAPI document",
    tags=["platform"],
    responses={200: {"description": "HTML page", "content": {"text/html": {}}}},
)
def get_docs() -> Response[Any]:
    return Response(200, "text/html; charset=utf-8", HTML.format(title=openapi.TITLE, base=_base()))


@app.get(
    "/docs/<asset>",
    summary="Swagger UI's script and styles",
    tags=["platform"],
    responses={200: {"description": "the asset", "content": {"application/javascript": {}, "text/css": {}}}},
)
def get_asset(asset: Annotated[str, PathParam(max_length=64)]) -> Response[Any]:
    if asset not in ASSETS:
        raise NotFound(f"no asset {asset}")
    # Named by Powertools' version (a new layer is a new deployment): cache for a day.
    return Response(200, ASSETS[asset], _asset(asset), headers={"Cache-Control": "public, max-age=86400"})


lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
