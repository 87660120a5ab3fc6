"""API fuzzing: schemathesis against the merged OpenAPI document of the running local stack,
once per kind of caller. Zero 5xx, and every answer conforms to the document (status codes,
content types, headers, bodies), including stateful sequences over the inferred links.

The fuzzer gets a stack of its own: it creates and changes whatever the API lets it (alerts,
silences, users), which must not leak into the other end-to-end tests. Bounded here
(`make test`); `make fuzz` runs the same with a larger budget
(LOTABOTS_FUZZ_EXAMPLES, LOTABOTS_FUZZ_SECONDS). Settings shared by both: schemathesis.toml.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ADMIN_EMAIL, ADMIN_PASSWORD, client, local_stack, login, make_callers

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Per caller: at most this many generated cases per operation, and this time budget (the
# fuzzing and stateful phases repeat until it is spent).
EXAMPLES = int(os.environ.get("LOTABOTS_FUZZ_EXAMPLES", "4"))
SECONDS = int(os.environ.get("LOTABOTS_FUZZ_SECONDS", "20"))
# Callers whose reach differs: anonymous hits the public routes, each role its own.
CALLERS = ("anonymous", "member", "operator", "auditor", "admin")
# The fuzzer sends many bad sign-ins and registrations from 127.0.0.1.
FUZZ_ENV = {"LOGIN_IP_MAX_FAILURES": "1000000", "REGISTER_IP_MAX_ATTEMPTS": "1000000"}


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """A stack for the fuzzer alone, and its callers."""
    with local_stack(FUZZ_ENV) as stack, client(stack.url) as http:
        admin_token = str(login(http, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
        yield stack.url, make_callers(stack, admin_token)


@pytest.mark.parametrize("caller", CALLERS)
def test_no_server_errors_and_every_answer_conforms_to_the_spec(
    fuzz_target: tuple[str, dict[str, dict[str, str]]], caller: str, tmp_path: Path
) -> None:
    stack_url, callers = fuzz_target
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{stack_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "20261201",
        "--no-color",
        "--output-truncate",
        "false",
        "--request-timeout",
        "30",
        "--max-time",
        str(SECONDS),
    ]
    for name, value in callers[caller].items():
        command += ["--header", f"{name}: {value}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1200, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"schemathesis as {caller} found problems:\n{output[-30000:]}"
