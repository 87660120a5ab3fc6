"""The deploy-time migration function (functions/migrate): schema + signing keyset bootstrap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from lotabots import aws, config
from lotabots.config import AuthSettings
from lotabots.db import engine as db_engine
from lotabots.db import migrate
from tests.support.api import FakeLambdaContext, load_function


@pytest.fixture
def fresh_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    config.reset()
    db_engine.reset_engine()
    yield url
    db_engine.reset_engine()
    config.reset()


def test_migrate_builds_an_empty_database_to_all_heads_and_creates_the_signing_keys(
    aws_env: dict[str, str], fresh_database: str
) -> None:
    """On a new stage the database is empty and the keyset secret holds CloudFormation's
    placeholder: one invocation migrates to every head and replaces the placeholder."""
    settings = config.load(AuthSettings)
    sm = aws.client("secretsmanager")
    sm.put_secret_value(
        SecretId=settings.signing_key_secret_id,
        SecretString=json.dumps({"placeholder": "replaced by lotabots keys ensure"}),
    )
    aws.client("ssm").put_parameter(
        Name=settings.jwks_parameter_name, Value='{"keys": []}', Type="String", Overwrite=True
    )

    result = load_function("migrate").lambda_handler({}, FakeLambdaContext())

    assert result["heads"] == sorted(migrate.current_heads())
    tables = set(inspect(create_engine(fresh_database)).get_table_names())
    assert {"alembic_version", "audit_log"} <= tables
    keyset = json.loads(sm.get_secret_value(SecretId=settings.signing_key_secret_id)["SecretString"])
    assert keyset["current"]["kid"] == result["signing_kid"]
    jwks = json.loads(
        aws.client("ssm").get_parameter(Name=settings.jwks_parameter_name)["Parameter"]["Value"]
    )
    assert [key["kid"] for key in jwks["keys"]] == [result["signing_kid"]]


def test_migrate_is_idempotent_across_deploys(aws_env: dict[str, str], fresh_database: str) -> None:
    """A second deploy changes nothing: same heads, same signing key."""
    handler = load_function("migrate").lambda_handler
    first = handler({}, FakeLambdaContext())
    second = handler({}, FakeLambdaContext())
    assert first == second
