"""The sample events under events/ (used by `sam local invoke -e`) drive the real handlers,
and every route the auth function serves is in the central route → roles map."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devstack import parameters_extension
from lotabots import access
from tests.support.api import ROOT, FakeLambdaContext, invoke, load_function


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "events" / name).read_text()))


@pytest.fixture
def env(db: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server, url = parameters_extension.start("127.0.0.1", 0)
    monkeypatch.setenv("PARAMETERS_EXTENSION_URL", url)
    load_function("authorizer").cache.clear()
    yield
    server.shutdown()
    server.server_close()


def test_sample_events_register_login_authorize_and_me(env: None) -> None:
    status, _, user = invoke("auth", sample("auth_register.json"))
    assert status == 201 and user["email"] == "ada@example.com"
    status, _, pair = invoke("auth", sample("auth_login.json"))
    assert status == 200

    request = sample("authorizer_request.json")
    request["headers"]["Authorization"] = f"Bearer {pair['access_token']}"
    policy = load_function("authorizer").lambda_handler(request, FakeLambdaContext())
    assert policy["principalId"] == user["id"]

    me = sample("auth_me.json")
    me["requestContext"]["authorizer"] = {**policy["context"], "principalId": policy["principalId"]}
    status, _, body = invoke("auth", me)
    assert status == 200 and body["id"] == user["id"]


def test_sample_me_event_without_its_user_is_refused(env: None) -> None:
    status, _, body = invoke("auth", copy.deepcopy(sample("auth_me.json")), ensure_user=False)
    assert status == 401 and set(body) == {"message", "code", "details", "request_id"}


def test_every_auth_route_is_in_the_access_map() -> None:
    app = load_function("auth").app
    served = {(r.method, r.openapi_path) for r in app._static_routes + app._dynamic_routes}
    expected = {key for key in access.ROUTE_ROLES if key[1].startswith(("/auth", "/users", "/.well-known"))}
    assert served == expected
