"""Shared fixtures: isolated environment, databases (SQLite always, PostgreSQL when
LOTABOTS_TEST_DATABASE_URL is set), and moto-backed AWS resources."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="lotabots-tests-"))

# Set before any lotabots module reads its settings.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "LotaBotsTest",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_DEV": "false",
        "LOTABOTS_STAGE": "test",
        "LOTABOTS_SQLITE_PATH": str(_TMP / "lotabots.db"),
        "BCRYPT_ROUNDS": "4",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("DATABASE_URL", None)

from sqlalchemy import text  # noqa: E402

from lotabots import aws, config  # noqa: E402
from lotabots.db import engine as db_engine  # noqa: E402
from lotabots.db import migrate  # noqa: E402
from lotabots.db.base import Base  # noqa: E402

_BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("LOTABOTS_TEST_DATABASE_URL") else [])


def _reset_caches() -> None:
    config.reset()
    aws.reset()
    db_engine.reset_engine()


def _private_postgres_database(base_url: str) -> str:
    """A fresh database of this test process's own (xdist workers must not share one)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(db_engine._normalise(base_url))
    name = f"{base.database}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=_BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A freshly migrated database; every test using `db` runs once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{_TMP / 'test.db'}"
    else:
        url = _private_postgres_database(os.environ["LOTABOTS_TEST_DATABASE_URL"])
    migrate.upgrade(db_engine._normalise(url))
    return url


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the platform at the test database; every table is emptied afterwards."""
    import lotabots.db.all_models  # noqa: F401

    monkeypatch.setenv("DATABASE_URL", database_url)
    _reset_caches()
    yield database_url
    engine = db_engine.get_engine()
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    _reset_caches()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto in-process with every platform resource created; yields the queue env vars."""
    from moto import mock_aws

    from devstack.provision import provision

    with mock_aws(config={"batch": {"use_docker": False}}):
        _reset_caches()
        env = provision()
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        _reset_caches()
        yield env
    _reset_caches()
