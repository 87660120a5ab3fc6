"""GET /health: public, reports version and a working database."""

from lotabots import __version__
from tests.support.api import api_event, invoke


def test_health_is_public_and_checks_the_database(db: str) -> None:
    status, headers, body = invoke("aiops", api_event("GET", "/health"))
    assert status == 200
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["checks"]["database"]["status"] == "ok"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_unknown_route_gets_the_common_error_shape(db: str) -> None:
    status, _, body = invoke("aiops", api_event("GET", "/health/nope"))
    assert status == 404
    assert set(body) == {"message", "code", "details", "request_id"}
