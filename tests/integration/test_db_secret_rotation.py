"""In AWS the database password comes from a rotated secret: after a rotation the stale cached
password is replaced by a fresh read of the secret instead of failing connections for minutes."""

import json
from typing import Any

import pytest
from sqlalchemy import text

from lotabots import aws, config
from lotabots.db import engine as db_engine


class _RotatedServer:
    """Stands in for the PostgreSQL driver: only the current password authenticates."""

    def __init__(self, dbapi: Any, password: str) -> None:
        self.dbapi = dbapi
        self.password = password
        self.attempts: list[str] = []

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        self.attempts.append(cparams["password"])
        if cparams["password"] != self.password:
            raise self.dbapi.OperationalError('FATAL: password authentication failed for user "app"')
        raise _Connected


class _Connected(Exception):
    """Raised instead of returning a connection: reaching the server is all we assert."""


def test_stale_password_is_refreshed_from_the_secret(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = {
        "username": "app",
        "password": "first",
        "host": "proxy.local",
        "port": 5432,
        "dbname": "lotabots",
    }
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="lotabots/db-rotation-test", SecretString=json.dumps(secret))["ARN"]
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    config.reset()
    db_engine.reset_engine()
    engine = db_engine.get_engine()
    assert "proxy.local" in str(engine.url) and "sslmode=require" in str(engine.url)

    # Warm the container's cache with the first password, then rotate.
    server = _RotatedServer(engine.dialect.loaded_dbapi, password="first")
    monkeypatch.setattr(engine.dialect, "connect", server.connect)
    with pytest.raises(_Connected):
        engine.connect()
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({**secret, "password": "second"}))
    server.password = "second"
    server.attempts.clear()

    with pytest.raises(_Connected):
        engine.connect()
    assert server.attempts == ["first", "second"]
    db_engine.reset_engine()


def test_other_connection_errors_are_not_retried(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = {"username": "app", "password": "pw", "host": "proxy.local", "port": 5432, "dbname": "lotabots"}
    arn = aws.client("secretsmanager").create_secret(
        Name="lotabots/db-down", SecretString=json.dumps(secret)
    )["ARN"]
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    config.reset()
    db_engine.reset_engine()
    engine = db_engine.get_engine()
    dbapi = engine.dialect.loaded_dbapi
    calls: list[int] = []

    def unreachable(*_a: Any, **_k: Any) -> Any:
        calls.append(1)
        raise dbapi.OperationalError("connection refused")

    monkeypatch.setattr(engine.dialect, "connect", unreachable)
    with pytest.raises(Exception, match="connection refused"), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert calls == [1]
    db_engine.reset_engine()
