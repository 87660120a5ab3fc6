"""What the gateway serves itself: `/openapi.json` (one document merged over every API
function's resolver, `lotabots.openapi`) and Swagger UI at `/docs`, from the assets bundled
with Powertools so that it works offline."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from devstack import runtime
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


def merged(functions: Iterable[runtime.LocalFunction], *, title: str, version: str) -> dict[str, Any]:
    """One OpenAPI document over the resolvers of `functions` (`lotabots.openapi`)."""
    from lotabots.openapi import merged_document

    schemas = [function.openapi_schema() for function in functions]
    return merged_document(
        [_Schema(schema) for schema in schemas if schema is not None],
        title=title,
        version=version,
        description="LotaBots Serverless, served by the local stack.",
    )


class OpenApiDocs:
    """The merged document, built once, and the docs pages.

    With functions in this process (`LocalFunction`) the document comes from their resolvers.
    With worker processes, a short-lived `python -m devstack.openapi_docs` imports the API
    functions, prints the document and exits: building it must not start every API function's
    worker, nor make the first `/openapi.json` wait for their cold starts. `prepare()` (called
    when the gateway starts) builds it in the background.
    """

    def __init__(self, registry: Registry, *, title: str, version: str) -> None:
        self.registry = registry
        self.title = title
        self.version = version
        self._json: bytes | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        threading.Thread(target=self.document_json, name="openapi-document", daemon=True).start()

    def document(self) -> dict[str, Any]:
        """One OpenAPI document over every available API function."""
        functions = [self.registry.get(spec.name) for spec in topology.api_functions()]
        present = [function for function in functions if function is not None]
        local = [function for function in present if isinstance(function, runtime.LocalFunction)]
        if len(local) == len(present):
            return merged(local, title=self.title, version=self.version)
        names = [function.name for function in present]
        built = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", "devstack.openapi_docs", self.title, self.version, *names],
            cwd=runtime.ROOT,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if built.returncode != 0:
            raise RuntimeError(f"building the OpenAPI document failed:\n{built.stderr.decode()[-4000:]}")
        document: dict[str, Any] = json.loads(built.stdout)
        return document

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


def main(argv: list[str]) -> int:
    """`python -m devstack.openapi_docs TITLE VERSION FUNCTION...`: the document on stdout."""
    title, version, names = argv[0], argv[1], argv[2:]
    with contextlib.redirect_stdout(sys.stderr):  # whatever the modules print is not the document
        registry = runtime.load_all([topology.function(name) for name in names], "us-east-1")
        for name, reason in registry.failures.items():
            print(f"{name} is left out of the document: {reason}")
        functions = [f for f in registry.functions.values() if isinstance(f, runtime.LocalFunction)]
        document = merged(functions, title=title, version=version)
    sys.stdout.write(json.dumps(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
