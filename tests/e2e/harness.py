"""Helpers for end-to-end tests against the local stack (fixtures: `tests/e2e/conftest.py`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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
    # Alerting: a new group's first message after 1 s, re-evaluated every 2 s (default 30 s / 5 min).
    "ALERTS_GROUP_WAIT_SECONDS": "1",
    "ALERTS_GROUP_INTERVAL_SECONDS": "2",
    # Hardening: every e2e user registers from 127.0.0.1 (default: 20 attempts per IP per 15 min).
    "REGISTER_IP_MAX_ATTEMPTS": "100000",
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
