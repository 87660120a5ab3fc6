"""Login brute-force lockout: counters in DynamoDB, 429 + Retry-After, reset on success."""

from __future__ import annotations

import time

import pytest

from lotabots import aws, config
from lotabots.auth import lockout
from tests.support.api import api_event, invoke
from tests.support.auth import DEFAULT_PASSWORD, login, register


@pytest.fixture
def env(db: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("LOGIN_IP_MAX_FAILURES", "5")
    monkeypatch.setenv("LOGIN_WINDOW_SECONDS", "600")
    config.reset()
    register("alice@example.com")


def test_account_locks_after_max_failures_even_for_the_right_password(env: None) -> None:
    for _ in range(3):
        assert login("alice@example.com", "wrong password!")[0] == 401
    status, headers, body = login("alice@example.com", DEFAULT_PASSWORD)
    assert status == 429 and body["code"] == "login_locked"
    assert 0 < int(headers["Retry-After"]) <= 600
    assert set(body) == {"message", "code", "details", "request_id"}


def test_lockout_is_per_account_across_ips(env: None) -> None:
    for i in range(3):
        login("alice@example.com", "wrong password!", source_ip=f"10.0.0.{i}")
    assert login("alice@example.com", source_ip="10.9.9.9")[0] == 429


def test_unknown_emails_lock_too_so_lockout_reveals_no_accounts(env: None) -> None:
    for _ in range(3):
        assert login("ghost@example.com", "wrong password!")[0] == 401
    assert login("ghost@example.com", "wrong password!")[0] == 429


def test_ip_locks_after_its_own_limit_across_accounts(env: None) -> None:
    for i in range(5):
        assert login(f"victim{i}@example.com", "wrong password!", source_ip="203.0.113.7")[0] == 401
    status, headers, _ = login("alice@example.com", source_ip="203.0.113.7")
    assert status == 429 and int(headers["Retry-After"]) > 0
    assert login("alice@example.com", source_ip="198.51.100.1")[0] == 200


def test_successful_login_resets_the_account_counter(env: None) -> None:
    for _ in range(2):
        login("alice@example.com", "wrong password!", source_ip="10.1.1.1")
    assert login("alice@example.com", source_ip="10.1.1.2")[0] == 200
    for _ in range(2):
        assert login("alice@example.com", "wrong password!", source_ip="10.1.1.3")[0] == 401
    assert login("alice@example.com", source_ip="10.1.1.4")[0] == 200


def test_an_expired_window_starts_over(env: None) -> None:
    table = config.load(config.AuthSettings).rate_limit_table
    key = lockout.account_key("alice@example.com")
    past = int(time.time()) - 1
    aws.client("dynamodb").put_item(
        TableName=table, Item={"id": {"S": key}, "failures": {"N": "99"}, "expiration": {"N": str(past)}}
    )
    assert login("alice@example.com", "wrong password!")[0] == 401  # not 429: the window is over
    item = aws.client("dynamodb").get_item(TableName=table, Key={"id": {"S": key}})["Item"]
    assert item["failures"]["N"] == "1" and int(item["expiration"]["N"]) > time.time()


def test_counter_items_carry_the_ttl_attribute_and_no_plain_email(env: None) -> None:
    login("alice@example.com", "wrong password!")
    table = config.load(config.AuthSettings).rate_limit_table
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    assert items and all("expiration" in item for item in items)
    assert not any("alice" in item["id"]["S"] for item in items)


def test_registration_attempts_are_limited_per_ip_and_count_rejections_too(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each answer of /auth/register says whether an address is taken: attempts cost the caller."""
    monkeypatch.setenv("REGISTER_IP_MAX_ATTEMPTS", "3")
    config.reset()
    event = api_event(
        "POST", "/auth/register", body={"email": "taken@example.com", "password": "correct horse battery"}
    )
    event["requestContext"]["identity"]["sourceIp"] = "198.51.100.7"
    statuses = [invoke("auth", event)[0] for _ in range(3)]
    assert statuses == [201, 409, 409]
    status, headers, body = invoke("auth", event)
    assert status == 429 and body["code"] == "registration_throttled" and int(headers["Retry-After"]) > 0
    other_ip = api_event(
        "POST", "/auth/register", body={"email": "fresh@example.com", "password": "correct horse battery"}
    )
    other_ip["requestContext"]["identity"]["sourceIp"] = "198.51.100.8"
    assert invoke("auth", other_ip)[0] == 201
