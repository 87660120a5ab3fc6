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
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ROOT,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    USER_PASSWORD,
    Stack,
    User,
    client,
    free_port,
    login,
    mint_token,
    stack_env,
)


def pytest_configure(config: pytest.Config) -> None:
    # Registered by pytest-xdist too; declared here so `-p no:xdist` runs still pass --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): run in the same xdist worker as the group")


def _wait_until_healthy(stack: Stack) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with client(stack.url) as http:
        while time.monotonic() < deadline:
            if stack.process.poll() is not None:
                pytest.fail(f"the local stack exited with {stack.process.returncode}:\n{stack.output()}")
            try:
                if http.get("/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    stack.process.kill()
    stack.process.wait(10)
    pytest.fail(f"the local stack did not answer /health within {START_TIMEOUT_S:.0f} s:\n{stack.output()}")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Start `python -m devstack`, wait for /health; at the end SIGINT it and expect exit 0."""
    state_dir = Path(tempfile.mkdtemp(prefix="lotabots-e2e-"))
    port = free_port()
    log_path = state_dir / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=ROOT,
            env=stack_env(state_dir, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C on pytest does not reach it twice
        )
    running = Stack(f"http://127.0.0.1:{port}", process, state_dir, log_path)
    try:
        _wait_until_healthy(running)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                pytest.fail(f"the local stack ignored SIGINT for {STOP_TIMEOUT_S:.0f} s:\n{running.output()}")
    assert process.returncode == 0, (
        f"the local stack exited with {process.returncode} (state kept in {state_dir}):\n{running.output()}"
    )
    shutil.rmtree(state_dir, ignore_errors=True)


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
def callers(stack: Stack, stack_url: str, admin_token: str) -> dict[str, dict[str, str]]:
    """Authorization headers of every kind of caller the access matrix and the fuzzer use:
    anonymous, member, other_member, operator, auditor, admin, integration, disabled (a member
    disabled after logging in), demoted (an operator demoted to member after logging in) and
    expired (a real token of the member, past its `exp`)."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    made: dict[str, User] = {}
    with client(stack_url) as http:
        for name, role in (
            ("member", "member"),
            ("other_member", "member"),
            ("operator", "operator"),
            ("auditor", "auditor"),
            ("disabled", "member"),
            ("demoted", "operator"),
        ):
            email = f"{name}-{uuid.uuid4().hex[:10]}@matrix.lotabots.test"
            registered = http.post(
                "/auth/register", json={"email": email, "password": USER_PASSWORD, "display_name": name}
            )
            assert registered.status_code == 201, registered.text
            user_id = str(registered.json()["id"])
            if role != "member":
                promoted = http.patch(f"/users/{user_id}", json={"role": role}, headers=admin)
                assert promoted.status_code == 200, promoted.text
            tokens = login(http, email, USER_PASSWORD)
            made[name] = User(
                user_id, email, USER_PASSWORD, role, tokens["access_token"], tokens["refresh_token"]
            )
        assert (
            http.patch(f"/users/{made['disabled'].id}", json={"disabled": True}, headers=admin).status_code
            == 200
        )
        assert (
            http.patch(f"/users/{made['demoted'].id}", json={"role": "member"}, headers=admin).status_code
            == 200
        )
    now = int(time.time())
    member = made["member"]
    expired = mint_token(
        stack, sub=member.id, email=member.email, role="member", issued_at=now - 3600, lifetime_s=900
    )
    integration = mint_token(
        stack, sub="integration:matrix", email="", role="integration", issued_at=now, lifetime_s=86400
    )
    headers = {name: user.headers for name, user in made.items()}
    return {
        "anonymous": {},
        **headers,
        "admin": admin,
        "integration": {"Authorization": f"Bearer {integration}"},
        "expired": {"Authorization": f"Bearer {expired}"},
    }
