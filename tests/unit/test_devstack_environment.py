"""The local stack's environment (defaults never override the developer; AWS always points at
moto with fake credentials) and how function modules are loaded."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import environment, runtime
from lotabots import topology


def test_defaults_fill_only_what_the_developer_did_not_set(tmp_path: Path) -> None:
    env = {"LOTABOTS_STAGE": "mine", "JOB_BACKEND": "modal", "LOTABOTS_STATE_DIR": str(tmp_path / "state")}
    applied = environment.apply_defaults(env)
    assert env["LOTABOTS_STAGE"] == "mine" and "LOTABOTS_STAGE" not in applied
    assert env["JOB_BACKEND"] == "modal"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["LOTABOTS_BOOTSTRAP_ADMIN_EMAIL"] == environment.DEFAULT_ADMIN_EMAIL
    assert env["LOTABOTS_SQLITE_PATH"] == str(tmp_path / "state" / "lotabots.db")
    assert "BCRYPT_ROUNDS" not in env  # the production cost stays unless the developer lowers it


def test_state_dir_becomes_absolute_so_worker_processes_find_it() -> None:
    env = {"LOTABOTS_STATE_DIR": "relative-state"}
    environment.apply_defaults(env)
    assert Path(env["LOTABOTS_STATE_DIR"]).is_absolute()
    assert Path(env["LOTABOTS_SQLITE_PATH"]).is_absolute()


def test_the_default_admin_password_meets_the_password_policy() -> None:
    from lotabots.auth.passwords import policy_violations

    assert policy_violations(environment.DEFAULT_ADMIN_PASSWORD, environment.DEFAULT_ADMIN_EMAIL) == []


def test_aws_always_points_at_moto_with_fake_credentials() -> None:
    env = {
        "AWS_PROFILE": "prod-admin",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
        "AWS_SECRET_ACCESS_KEY": "real",
        "AWS_ENDPOINT_URL": "https://example.com",
    }
    environment.point_at_moto(env, "http://127.0.0.1:5555")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"
    assert env["AWS_ACCESS_KEY_ID"] == "local"
    assert env["AWS_SESSION_TOKEN"]
    assert "AWS_PROFILE" not in env


@pytest.fixture
def fake_function_modules() -> Iterator[None]:
    """Keep the fake function modules out of the process for later tests."""
    names = ("devstack_fn_alerts", "devstack_fn_jobs", "devstack_fn_documents")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    yield
    for name in names:
        sys.modules.pop(name, None)
    sys.modules.update(saved)


@pytest.mark.usefixtures("fake_function_modules")
def test_functions_load_once_and_missing_or_broken_ones_are_reported(tmp_path: Path) -> None:
    (tmp_path / "functions" / "alerts").mkdir(parents=True)
    (tmp_path / "functions" / "alerts" / "app.py").write_text("raise RuntimeError('broken at import')\n")
    (tmp_path / "functions" / "jobs").mkdir(parents=True)
    (tmp_path / "functions" / "jobs" / "app.py").write_text(
        "CALLS = []\n"
        "def lambda_handler(event, context):\n"
        "    CALLS.append(context.function_name)\n"
        "    return event\n"
    )
    specs = [topology.function(name) for name in ("alerts", "jobs", "documents")]
    registry = runtime.load_all(specs, "us-east-1", root=tmp_path)
    assert set(registry.functions) == {"jobs"}
    assert "broken at import" in registry.failures["alerts"]
    assert "does not exist" in registry.failures["documents"]
    jobs = registry.functions["jobs"]
    assert jobs.invoke({"x": 1}) == {"x": 1}
    assert jobs.module.CALLS == ["jobs"]
    assert runtime.load_module("jobs", tmp_path) is jobs.module
