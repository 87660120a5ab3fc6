"""Helpers for end-to-end tests against the local stack (fixtures: `tests/e2e/conftest.py`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@e2e.lotabots.test"
ADMIN_PASSWORD = "e2e-bootstrap-password"
USER_PASSWORD = "e2e-user-password-long"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0

# Only these are inherited from the test process: the stack must not see the test suite's
# own settings (its SQLite file, stage, moto credentials...).
INHERITED = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "VIRTUAL_ENV", "HF_HOME")

# Extra environment for the e2e stack: add what your area's e2e tests need (one line each,
# with a comment), e.g. short alert grouping timings.
EXTRA_ENV: dict[str, str] = {
    # Notifications are logged (the alerting e2e tests read the delivery log); tests that want Slack
    # start their own mock and set SLACK_BOT_TOKEN / SLACK_API_URL.
    "LOTABOTS_SLACK_MOCK": "0",
    # Alerting: a new group's first message after 1 s, re-evaluated every 2 s (default 30 s / 5 min).
    "ALERTS_GROUP_WAIT_SECONDS": "1",
    "ALERTS_GROUP_INTERVAL_SECONDS": "2",
    # Hardening: every e2e user registers from 127.0.0.1 (default: 20 attempts per IP per 15 min).
    "REGISTER_IP_MAX_ATTEMPTS": "100000",
    # AIOps: its findings would be alerts in other areas' tests, and at speed 30 its schedules run
    # every 2 s; test_aiops_flow starts a stack of its own with them (and runs them on demand).
    "LOTABOTS_DISABLED_SCHEDULES": "aiops-health,aiops-logs,aiops-anomaly,aiops-forecast,aiops-report",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_env(state_dir: Path, port: int) -> dict[str, str]:
    """The stack's whole environment (nothing else leaks in from the test process)."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "LOTABOTS_HOST": "127.0.0.1",
            "LOTABOTS_PORT": str(port),
            "LOTABOTS_MOTO_PORT": "0",
            "LOTABOTS_STATE_DIR": str(state_dir),
            "LOTABOTS_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "LOTABOTS_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "BCRYPT_ROUNDS": "4",
            # rate(1 minute) fires every 2 s; failed messages come back after 1 s;
            # DLQ depth is checked every second.
            "LOTABOTS_SCHEDULE_SPEEDUP": "30",
            "LOTABOTS_RETRY_VISIBILITY_SECONDS": "1",
            "LOTABOTS_DLQ_ALARM_SECONDS": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    env.update(EXTRA_ENV)
    return env


@dataclass
class Stack:
    """The running local stack."""

    url: str
    process: subprocess.Popen[bytes]
    state_dir: Path
    log_path: Path

    def output(self, tail_chars: int = 20_000) -> str:
        """The end of the stack's combined stdout/stderr (for failure messages)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail_chars:]

    @property
    def info(self) -> dict[str, Any]:
        """What the stack wrote to `<state>/stack.json`: url, moto_url, queues (name → URL)."""
        data: dict[str, Any] = json.loads((self.state_dir / "stack.json").read_text())
        return data

    def aws(self, service: str) -> Any:
        """A boto3 client on the stack's moto server (to look into queues, buckets, tables)."""
        import boto3

        session: Any = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        )
        return session.client(service, endpoint_url=self.info["moto_url"])


@dataclass
class User:
    """A user of the e2e stack, logged in."""

    id: str
    email: str
    password: str
    role: str
    access_token: str
    refresh_token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def client(base_url: str) -> httpx.Client:
    """An HTTP client for the stack (no proxies from the environment)."""
    return httpx.Client(base_url=base_url, timeout=30, trust_env=False)


def login(http: httpx.Client, email: str, password: str) -> dict[str, Any]:
    """POST /auth/login; returns the token pair."""
    response = http.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def mint_token(stack: Stack, *, sub: str, email: str, role: str, issued_at: int, lifetime_s: int) -> str:
    """An access token signed with the running stack's own key, with the claims we choose (an
    expired token, an integration token): what the stack itself would have issued at `issued_at`."""
    import jwt

    from lotabots.auth.keys import keyset_from_json

    secret = stack.aws("secretsmanager").get_secret_value(SecretId="lotabots/jwt-signing-keys")
    key = keyset_from_json(json.loads(secret["SecretString"])).keys[-1]
    claims = {
        "iss": "https://lotabots.local",
        "aud": "lotabots-api",
        "sub": sub,
        "email": email,
        "role": role,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime_s,
        "jti": uuid_hex(),
    }
    return str(jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid}))


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex


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


@contextmanager
def local_stack(extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Start `python -m devstack`, wait for /health; at the end SIGINT it and expect exit 0."""
    state_dir = Path(tempfile.mkdtemp(prefix="lotabots-e2e-"))
    port = free_port()
    log_path = state_dir / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=ROOT,
            env={**stack_env(state_dir, port), **(extra_env or {})},
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


def make_callers(stack: Stack, admin_token: str) -> dict[str, dict[str, str]]:
    """Authorization headers of every kind of caller the access matrix and the fuzzer use:
    anonymous, member, other_member, operator, auditor, admin, integration, disabled (a member
    disabled after logging in), demoted (an operator demoted to member after logging in) and
    expired (a real token of the member, past its `exp`)."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    made: dict[str, User] = {}
    with client(stack.url) as http:
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
