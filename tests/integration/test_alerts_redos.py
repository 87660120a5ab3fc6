"""Silences, listing and flushing cannot be stalled by a regex (issue 8, item 5).

The attack that worked: a silence `(a+)+b` and alerts whose label is a run of a's made
`GET /alerts` take 16 s and a flush 5 s (Python's backtracking `re`). Matchers are RE2 now:
the same requests answer at once; patterns RE2 refuses are a 422 at creation, in the common
error shape, and store nothing; a silence stored before the change that RE2 refuses mutes
nothing instead of failing every listing and flush.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from lotabots.alerts import flush, service
from lotabots.alerts.engine import normalise_posted
from lotabots.alerts.models import Silence
from lotabots.db import session_scope
from tests.support import alerts_helpers
from tests.support.alerts_helpers import OPERATOR
from tests.support.api import api_event, invoke

alerting = alerts_helpers.alerting  # the fixture


def _silence(matchers: list[dict[str, Any]]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "matchers": matchers,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "comment": "maintenance",
    }


def _silence_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Silence)) or 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (r"(a)\1", "invalid escape sequence"),
        (r"(?=db)db.*", "invalid perl operator"),
        (r"(?<!web)db", "invalid perl operator"),
        (r"a{5000}", "invalid repetition size"),
        (r"[\p{L}\p{N}]{1000}", "pattern too large"),
    ],
)
def test_regexes_re2_refuses_are_422_in_the_common_shape(
    alerting: dict[str, str], value: str, reason: str
) -> None:
    status, _, body = invoke(
        "alerts",
        api_event(
            "POST",
            "/silences",
            principal=OPERATOR,
            body=_silence([{"name": "host", "value": value, "isRegex": True}]),
        ),
    )
    assert status == 422, body
    assert set(body) == {"message", "code", "details", "request_id"}
    text = " ".join(d["message"] for d in body["details"])
    assert reason in text and "RE2" in text
    assert _silence_count() == 0


def test_catastrophic_silence_regex_neither_stalls_listing_nor_flush(alerting: dict[str, str]) -> None:
    status, _, silence = invoke(
        "alerts",
        api_event(
            "POST",
            "/silences",
            principal=OPERATOR,
            body=_silence([{"name": "host", "value": "(a+)+b", "isRegex": True}]),
        ),
    )
    assert status == 201, silence
    # 24 a's took Python's re seconds per alert (the time doubles with each a); 1024 is the
    # longest label value the API takes.
    alerts = [{"labels": {"alertname": "ReDoS", "host": "a" * 24, "n": str(i)}} for i in range(20)]
    alerts += [{"labels": {"alertname": "ReDoS", "host": "a" * 1024, "n": f"long-{i}"}} for i in range(20)]
    assert invoke("alerts", api_event("POST", "/alerts", principal=OPERATOR, body=alerts))[0] == 200

    started = time.perf_counter()
    status, _, listing = invoke("alerts", api_event("GET", "/alerts", principal=OPERATOR))
    listed_in = time.perf_counter() - started
    assert status == 200 and len(listing["items"]) == 40
    assert all(a["state"] == "firing" for a in listing["items"])  # "(a+)+b" matches none of them
    started = time.perf_counter()
    report = flush.flush_due(now=datetime.now(UTC) + timedelta(minutes=1))
    flushed_in = time.perf_counter() - started
    assert report.groups_claimed == 1 and len(report.notifications) == 1
    assert listed_in < 2 and flushed_in < 2, (listed_in, flushed_in)


def test_a_stored_silence_re2_refuses_mutes_nothing_and_breaks_nothing(alerting: dict[str, str]) -> None:
    now = datetime.now(UTC)
    with session_scope() as session:
        session.add(
            Silence(
                id="legacy",
                matchers=[{"name": "host", "value": r"(db)\1", "isRegex": True, "isEqual": True}],
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(hours=1),
                comment="stored while matchers were Python re",
                created_by=OPERATOR.user_id,
            )
        )
        service.ingest(
            session,
            [
                normalise_posted(
                    {"alertname": "Old", "host": "dbdb"}, {}, None, None, now=now, resolve_timeout=0
                )
            ],
            now=now,
        )
    status, _, listing = invoke("alerts", api_event("GET", "/alerts", principal=OPERATOR))
    assert status == 200 and [a["state"] for a in listing["items"]] == ["firing"]
    status, _, silences = invoke("alerts", api_event("GET", "/silences", principal=OPERATOR))
    assert status == 200 and silences["items"][0]["matchers"][0]["value"] == r"(db)\1"
    assert len(flush.flush_due(now=now + timedelta(minutes=1)).notifications) == 1
