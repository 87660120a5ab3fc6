"""End-to-end fixtures: one local stack (`python -m devstack`) per test session, over HTTP.

The stack runs in a subprocess on a free port with a temporary state directory (SQLite,
moto), bcrypt cost 4, fast schedules and a known bootstrap admin (`tests/e2e/harness.py`
has the environment; add your area's needs to `EXTRA_ENV` there). Mark tests with
`pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]` so that they share one
stack under `-n 2 --dist loadgroup`.

Fixtures:
- `stack_url`: the gateway's base URL; `stack`: the process, its state dir, its output,
  `stack.info` (moto URL, queue URLs) and `stack.aws("sqs")` (a boto3 client on its moto).
- `http`: an `httpx.Client` on the stack.
- `admin_token`: an access token of the bootstrap admin.
- `make_user(role="member", email=None, password=USER_PASSWORD) -> User`: registers a fresh
  user (promoted by the admin when another role is asked for) and logs in; `User.headers`
  carries its bearer token.
- `callers`: Authorization headers of every kind of caller (anonymous, member, other_member,
  operator, auditor, admin, integration, disabled, demoted, expired), for the access matrix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.e2e.harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Stack,
    User,
    client,
    local_stack,
    login,
    make_callers,
)


def pytest_configure(config: pytest.Config) -> None:
    # Registered by pytest-xdist too; declared here so `-p no:xdist` runs still pass --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): run in the same xdist worker as the group")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The local stack every e2e test shares."""
    with local_stack() as running:
        yield running


@pytest.fixture(scope="session")
def stack_url(stack: Stack) -> str:
    return stack.url


@pytest.fixture
def http(stack_url: str) -> Iterator[httpx.Client]:
    with client(stack_url) as session:
        yield session


@pytest.fixture(scope="session")
def admin_token(stack_url: str) -> str:
    with client(stack_url) as session:
        return str(login(session, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])


@pytest.fixture
def make_user(http: httpx.Client, admin_token: str) -> Callable[..., User]:
    """Factory: `make_user(role="member", email=None, password=USER_PASSWORD) -> User`."""

    def _make(role: str = "member", email: str | None = None, password: str = USER_PASSWORD) -> User:
        email = email or f"user-{uuid.uuid4().hex[:12]}@e2e.lotabots.test"
        response = http.post(
            "/auth/register", json={"email": email, "password": password, "display_name": role}
        )
        assert response.status_code == 201, response.text
        user_id = str(response.json()["id"])
        if role != "member":
            promoted = http.patch(
                f"/users/{user_id}", json={"role": role}, headers={"Authorization": f"Bearer {admin_token}"}
            )
            assert promoted.status_code == 200, promoted.text
        tokens = login(http, email, password)
        return User(user_id, email, password, role, tokens["access_token"], tokens["refresh_token"])

    return _make


@pytest.fixture(scope="session")
def callers(stack: Stack, admin_token: str) -> dict[str, dict[str, str]]:
    """The callers of the shared stack (see `make_callers`)."""
    return make_callers(stack, admin_token)
