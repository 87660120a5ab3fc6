"""`make smoke URL=...` (infra/smoke.py) passes against the local stack, credentials included,
and fails when what it checks is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

SMOKE = Path(__file__).resolve().parents[2] / "infra" / "smoke.py"


def _smoke(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SMOKE), url], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_smoke_passes_on_the_local_stack_with_an_auth_round_trip(stack_url: str) -> None:
    done = _smoke(stack_url, {"SMOKE_EMAIL": ADMIN_EMAIL, "SMOKE_PASSWORD": ADMIN_PASSWORD})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and "ok   login, me, refresh, logout" in done.stdout
    assert "ok   OpenAPI and Swagger UI" in done.stdout and "not published" not in done.stdout


def test_smoke_fails_on_wrong_credentials_and_an_unreachable_url(stack_url: str) -> None:
    wrong = _smoke(stack_url, {"SMOKE_EMAIL": ADMIN_EMAIL, "SMOKE_PASSWORD": "not-the-password"})
    assert wrong.returncode == 1 and "FAIL login, me, refresh, logout: login answered 401" in wrong.stdout
    nowhere = _smoke("http://127.0.0.1:9", {})
    assert nowhere.returncode == 1 and nowhere.stdout.count("FAIL") == 6  # all but the skipped round trip
