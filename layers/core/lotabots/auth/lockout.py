"""Brute-force protection: login failure counters per account and per client IP, and
registration attempts per client IP (each answer of /auth/register says whether an address is
taken, so attempts are what an enumeration costs), in DynamoDB.

Each counter is one item `{id, failures, expiration}` in `RATE_LIMIT_TABLE`: a fixed window
that starts at the first failure and ends at `expiration` (also the table's TTL attribute,
but DynamoDB deletes expired items lazily, so the code compares `expiration` itself).
Increments are a single conditional `update_item` (ADD + TTL), so concurrent failures are
never lost; an expired window is restarted with another conditional update. Account keys
hold a hash of the email, not the email.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lotabots import aws, config
from lotabots.config import AuthSettings
from lotabots.errors import ServiceUnavailable, TooManyRequests
from lotabots.observability import logger, metrics

LOCKED_MESSAGE = "too many failed sign-in attempts; try again later"
_ATTEMPTS = 4


@dataclass(frozen=True)
class Counter:
    key: str
    limit: int


def _settings() -> AuthSettings:
    return config.load(AuthSettings)


def account_key(email: str) -> str:
    return "login:account:" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:40]


def ip_key(source_ip: str | None) -> str:
    return f"login:ip:{source_ip or 'unknown'}"


def registration_key(source_ip: str | None) -> str:
    return f"register:ip:{source_ip or 'unknown'}"


def _counters(email: str, source_ip: str | None) -> tuple[Counter, Counter]:
    settings = _settings()
    return (
        Counter(account_key(email), settings.login_max_failures),
        Counter(ip_key(source_ip), settings.login_ip_max_failures),
    )


def _unavailable(exc: Exception) -> ServiceUnavailable:
    logger.error("rate-limit table unavailable", extra={"error": str(exc)})
    return ServiceUnavailable(
        "sign-in is temporarily unavailable; try again shortly", code="login_unavailable"
    )


def check(email: str, source_ip: str | None) -> None:
    """Raise 429 with Retry-After if the account or the IP is locked out right now."""
    retry_after = _retry_after(_counters(email, source_ip))
    if retry_after:
        metrics.add_metric(name="LoginLockedOut", unit="Count", value=1)
        raise TooManyRequests(LOCKED_MESSAGE, retry_after=retry_after, code="login_locked")


def check_registration(source_ip: str | None) -> None:
    """Raise 429 with Retry-After if this IP made too many registration attempts lately."""
    retry_after = _retry_after((Counter(registration_key(source_ip), _settings().register_ip_max_attempts),))
    if retry_after:
        metrics.add_metric(name="RegistrationsThrottled", unit="Count", value=1)
        raise TooManyRequests(
            "too many registration attempts from this address; try again later",
            retry_after=retry_after,
            code="registration_throttled",
        )


def record_registration_attempt(source_ip: str | None) -> None:
    """Count one registration attempt, accepted or not."""
    settings = _settings()
    try:
        _increment(
            aws.client("dynamodb"),
            settings.rate_limit_table,
            registration_key(source_ip),
            int(time.time()),
            settings.login_window_seconds,
        )
    except (ClientError, BotoCoreError) as exc:
        raise _unavailable(exc) from exc


def _retry_after(counters: tuple[Counter, ...]) -> int:
    """Seconds until every counter is under its limit again (0: none is over)."""
    settings = _settings()
    now = int(time.time())
    try:
        response = aws.client("dynamodb").batch_get_item(
            RequestItems={
                settings.rate_limit_table: {
                    "Keys": [{"id": {"S": c.key}} for c in counters],
                    "ConsistentRead": True,
                }
            }
        )
    except (ClientError, BotoCoreError) as exc:
        raise _unavailable(exc) from exc
    items = {
        item["id"]["S"]: item for item in response.get("Responses", {}).get(settings.rate_limit_table, [])
    }
    retry_after = 0
    for counter in counters:
        item = items.get(counter.key)
        if not item:
            continue
        failures = int(item.get("failures", {}).get("N", "0"))
        expiration = int(item.get("expiration", {}).get("N", "0"))
        if failures >= counter.limit and expiration > now:
            retry_after = max(retry_after, expiration - now)
    return retry_after


def _increment(ddb: Any, table: str, key: str, now: int, window: int) -> int:
    values = {":one": {"N": "1"}, ":now": {"N": str(now)}, ":exp": {"N": str(now + window)}}
    # Attribute names go through placeholders: no clash with DynamoDB's reserved words.
    names = {"#id": "id", "#f": "failures", "#e": "expiration"}
    for _ in range(_ATTEMPTS):
        try:
            item = ddb.update_item(
                TableName=table,
                Key={"id": {"S": key}},
                UpdateExpression="ADD #f :one SET #e = if_not_exists(#e, :exp)",
                ConditionExpression="attribute_not_exists(#id) OR #e > :now",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )["Attributes"]
            return int(item["failures"]["N"])
        except ddb.exceptions.ConditionalCheckFailedException:
            pass
        # The window is over: start a new one (conditional, so racing restarts happen once).
        try:
            ddb.update_item(
                TableName=table,
                Key={"id": {"S": key}},
                UpdateExpression="SET #f = :one, #e = :exp",
                ConditionExpression="#e <= :now",
                ExpressionAttributeNames={"#f": "failures", "#e": "expiration"},
                ExpressionAttributeValues=values,
            )
            return 1
        except ddb.exceptions.ConditionalCheckFailedException:
            continue  # someone restarted it first: count into their window
    raise RuntimeError(f"could not update login counter {key}")


def record_failure(email: str, source_ip: str | None) -> None:
    settings = _settings()
    ddb = aws.client("dynamodb")
    now = int(time.time())
    try:
        for counter in _counters(email, source_ip):
            _increment(ddb, settings.rate_limit_table, counter.key, now, settings.login_window_seconds)
    except (ClientError, BotoCoreError) as exc:
        raise _unavailable(exc) from exc
    metrics.add_metric(name="LoginFailures", unit="Count", value=1)


def reset_account(email: str) -> None:
    """A successful login clears the account's counter (never the IP's)."""
    settings = _settings()
    try:
        aws.client("dynamodb").delete_item(
            TableName=settings.rate_limit_table, Key={"id": {"S": account_key(email)}}
        )
    except (ClientError, BotoCoreError) as exc:
        raise _unavailable(exc) from exc
