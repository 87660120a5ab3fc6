"""The api_docs function: the merged OpenAPI document and Swagger UI, public, in every stage,
invoked through its real `lambda_handler` with the sample events in events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lotabots import access
from lotabots.http import DOCS_CSP
from tests.support.api import FakeLambdaContext, api_event, invoke, load_function

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _sample(name: str) -> tuple[int, dict[str, str], Any]:
    event = json.loads((EVENTS / f"{name}.json").read_text())
    response = load_function("api_docs").lambda_handler(event, FakeLambdaContext())
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return int(response["statusCode"]), headers, response["body"]


def test_the_document_covers_every_route_with_its_roles_and_names_the_stage_as_server() -> None:
    """Every route in the route map is in the document; protected ones carry bearer security
    and x-roles; `servers` is the stage prefix the request came through (/api here)."""
    status, headers, body = _sample("api_docs_openapi")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    assert document["servers"] == [{"url": "/api"}]
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(access.ROUTE_ROLES) <= set(operations)
    for route, roles in access.ROUTE_ROLES.items():
        assert ("security" in operations[route]) == bool(roles), route
    assert operations[("GET", "/users")]["x-roles"] == ["admin"]


def test_swagger_ui_loads_its_assets_and_the_document_from_the_same_stage() -> None:
    """The page links the stage's own document and assets (no CDN) under the docs CSP."""
    status, headers, html = _sample("api_docs_ui")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 'url: "/api/openapi.json"' in html
    assert 'src="/api/docs/swagger-ui-bundle.min.js"' in html and "https://" not in html
    assert headers["Content-Security-Policy"] == DOCS_CSP and "https:" not in DOCS_CSP

    status, headers, css = _sample("api_docs_asset")
    assert status == 200 and headers["Content-Type"] == "text/css" and len(css) > 10_000
    assert headers["Cache-Control"] == "public, max-age=86400"


def test_without_a_stage_prefix_links_start_at_the_root() -> None:
    """Behind a custom domain or on the local stack there is no stage in the path."""
    status, _, html = invoke("api_docs", api_event("GET", "/docs"))
    assert status == 200 and 'url: "/openapi.json"' in html
    status, _, document = invoke("api_docs", api_event("GET", "/openapi.json"))
    assert status == 200 and document["servers"] == [{"url": "/"}]


def test_an_unknown_asset_is_a_404_in_the_error_shape() -> None:
    event = api_event("GET", "/docs/evil.js", path_params={"asset": "evil.js"})
    status, _, body = invoke("api_docs", event)
    assert status == 404 and set(body) == {"message", "code", "details", "request_id"}


def test_the_bundled_document_is_served_as_deployed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In Lambda the document built at synth time sits next to the handler and is what is served."""
    module = load_function("api_docs")
    bundled = tmp_path / "openapi.json"
    bundled.write_text(json.dumps({"openapi": "3.1.0", "info": {"title": "as synthesized"}, "paths": {}}))
    monkeypatch.setattr(module, "BUNDLED_DOCUMENT", bundled)
    for cached in (module._document, module._document_for):
        cached.cache_clear()
    try:
        status, _, document = invoke("api_docs", api_event("GET", "/openapi.json"))
        assert status == 200 and document["info"]["title"] == "as synthesized"
    finally:
        monkeypatch.undo()
        for cached in (module._document, module._document_for):
            cached.cache_clear()
