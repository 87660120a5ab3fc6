"""The `lotabots` console script: admin create, keys ensure/rotate, integration tokens, db upgrade."""

from __future__ import annotations

import pytest

from lotabots import cli
from lotabots.auth import keys, tokens
from tests.support.auth import login


@pytest.fixture
def env(db: str, aws_env: dict[str, str]) -> None:
    """Migrated database and moto resources."""


def test_admin_create_then_login(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(["admin", "create", "--email", "Ops@Example.com", "--password", "a long admin passphrase"])
        == 0
    )
    assert "created admin ops@example.com" in capsys.readouterr().out
    status, _, body = login("ops@example.com", "a long admin passphrase")
    assert status == 200 and tokens.verify(body["access_token"]).role == "admin"


def test_admin_create_is_idempotent_and_keeps_the_password(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["admin", "create", "--email", "ops@example.com", "--password", "a long admin passphrase"])
    assert (
        cli.main(["admin", "create", "--email", "ops@example.com", "--password", "another passphrase!"]) == 0
    )
    assert "ensured admin" in capsys.readouterr().out
    assert login("ops@example.com", "a long admin passphrase")[0] == 200


def test_admin_create_refuses_a_weak_password(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["admin", "create", "--email", "ops@example.com", "--password", "short"]) == 1
    assert "at least 12" in capsys.readouterr().err


def test_admin_create_reads_the_password_from_the_environment(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOTABOTS_ADMIN_PASSWORD", "a long admin passphrase")
    assert cli.main(["admin", "create", "--email", "ops@example.com"]) == 0
    assert login("ops@example.com", "a long admin passphrase")[0] == 200


def test_keys_ensure_and_rotate(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    before = keys.load(force=True).current.kid
    assert cli.main(["keys", "ensure"]) == 0
    assert before in capsys.readouterr().out
    assert cli.main(["keys", "rotate"]) == 0
    after = keys.load(force=True)
    assert after.current.kid != before and after.previous[0].kid == before


def test_integration_token_is_printed_and_verifies(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tokens", "integration", "--name", "grafana", "--days", "30"]) == 0
    token = capsys.readouterr().out.strip()
    assert tokens.verify(token).role == "integration"
    assert cli.main(["tokens", "integration", "--name", "Not OK", "--days", "30"]) == 2


def test_db_upgrade_reports_the_heads(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["db", "upgrade"]) == 0
    assert "0002_auth" in capsys.readouterr().out


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as err:
        cli.main(["admin"])
    assert err.value.code == 2
