"""Every function and every route has a sample event in events/ in the shape its trigger
delivers, and each one works with the real handler: it routes, passes validation and the
access check, and fails at most for want of the data it names (a document that is not there).

These are the files `sam local invoke -e` uses; new routes and functions get the same checks.
Bare EventBridge events in events/ are the bodies the SQS samples wrap (see events/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import bcrypt
import pytest

from devstack import parameters_extension
from lotabots import access, topology
from lotabots.auth.models import User
from lotabots.db import session_scope
from tests.support.api import FakeLambdaContext, invoke, load_function
from tests.support.sample_events import SampleEvent, expected_kinds, sample_events

# Codes that mean the event itself is wrong (not merely about data this database lacks).
BROKEN_EVENT_CODES = frozenset(
    {"route_not_found", "validation_error", "malformed_json", "unauthorized", "forbidden", "internal_error"}
)
API_EVENTS = [e for e in sample_events() if e.kind == "api"]
TRIGGER_EVENTS = [e for e in sample_events() if e.kind not in ("api", "other")]


def test_every_route_in_the_access_map_has_a_sample_event() -> None:
    covered = {e.route for e in API_EVENTS}
    missing = sorted(set(access.ROUTE_ROLES) - covered)
    assert missing == [], f"add an API Gateway proxy event under events/ for {missing}"


def test_every_function_has_a_sample_event_for_each_of_its_triggers() -> None:
    have: dict[str, set[tuple[str, str | None]]] = {}
    for event in sample_events():
        if event.function is not None:
            have.setdefault(event.function, set()).add((event.kind, event.trigger))
    for fn in topology.FUNCTIONS:
        missing = expected_kinds(fn) - have.get(fn.name, set())
        assert not missing, f"{fn.name} has no sample event for {sorted(missing, key=str)}"


def test_every_api_sample_event_matches_a_route() -> None:
    assert [e.name for e in API_EVENTS if e.route is None or e.function is None] == []


@pytest.fixture
def sample_principals(db: str, aws_env: dict[str, str]) -> None:
    """The users the API events' authorizer contexts name, with those roles."""
    principals: dict[str, tuple[str, str]] = {}
    for event in API_EVENTS:
        context = (event.load()["requestContext"].get("authorizer")) or {}
        if context.get("user_id"):
            principals[str(context["user_id"])] = (str(context["email"]), str(context["role"]))
    password_hash = bcrypt.hashpw(b"sample-password-123", bcrypt.gensalt(4)).decode()
    with session_scope() as session:
        for user_id, (email, role) in principals.items():
            session.add(User(id=user_id, email=email, role=role, password_hash=password_hash))


@pytest.mark.parametrize("sample", API_EVENTS, ids=lambda e: e.name)
def test_api_sample_event_routes_validates_and_passes_the_access_check(
    sample: SampleEvent, sample_principals: None
) -> None:
    assert sample.function is not None
    status, _, body = invoke(sample.function, sample.load())
    code = body.get("code") if isinstance(body, dict) else None
    assert status < 500 and code not in BROKEN_EVENT_CODES, (status, body)


@pytest.fixture
def extension(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server, url = parameters_extension.start("127.0.0.1", 0)
    monkeypatch.setenv("PARAMETERS_EXTENSION_URL", url)
    load_function("authorizer").cache.clear()
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "sample", [e for e in sample_events() if e.kind not in ("api", "other")], ids=lambda e: e.name
)
def test_trigger_sample_event_is_handled(
    sample: SampleEvent, db: str, aws_env: dict[str, str], extension: None
) -> None:
    assert sample.function is not None
    handler = load_function(sample.function).lambda_handler
    event = sample.load()
    if sample.kind == "authorizer":
        # As in a warm container, the keys are already cached (reading them through the extension
        # emulator and moto can pass the authorizer's 3 s timeout on a loaded test machine).
        module = load_function("authorizer")
        for attempt in range(3):
            try:
                module.public_keys()
                break
            except module.ExtensionError:
                if attempt == 2:
                    raise
        # Its token is a placeholder: refused the way API Gateway expects, not a crash.
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            handler(event, FakeLambdaContext())
        return
    result: Any = handler(event, FakeLambdaContext())
    if sample.kind == "sqs":
        assert isinstance(result, dict) and isinstance(result.get("batchItemFailures"), list), result
