"""Schedule expressions (EventBridge rate/cron syntax), the Scheduled Event payload and the
runner's speedup."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.runtime import LocalFunction
from devstack.scheduler import Cron, Rate, ScheduleError, ScheduleRunner, parse, scheduled_event
from lotabots import topology

T0 = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
    ],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    schedule = parse(expression)
    assert isinstance(schedule, Rate) and schedule.seconds == seconds
    assert (schedule.next_after(T0) - T0).total_seconds() == seconds


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",  # EventBridge wants the singular for 1
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(3 weeks)",
        "every 5 minutes",
        "cron(0 7 * * *)",  # five fields
        "cron(0 7 * * * *)",  # neither day field is ?
        "cron(0 7 ? * ? *)",  # both are
        "cron(0 7 L * ? *)",
        "cron(0 7 ? * 6#3 *)",
        "cron(61 * * * ? *)",
        "cron(0 5-2 * * ? *)",
        "cron(*/0 * * * ? *)",
    ],
)
def test_invalid_or_unsupported_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse(expression)


def test_daily_cron_fires_at_the_next_matching_minute() -> None:
    schedule = parse("cron(0 7 * * ? *)")
    assert isinstance(schedule, Cron)
    assert schedule.next_after(T0) == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert schedule.next_after(datetime(2026, 11, 28, 6, 59, 59, tzinfo=UTC)) == datetime(
        2026, 11, 28, 7, 0, tzinfo=UTC
    )


def test_cron_steps_and_lists() -> None:
    every_quarter = parse("cron(*/15 * * * ? *)")
    assert every_quarter.next_after(T0) == datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
    listed = parse("cron(5,35 8-9 * * ? *)")
    assert listed.next_after(T0) == datetime(2026, 11, 28, 8, 5, tzinfo=UTC)


def test_cron_weekdays_count_from_sunday_as_one() -> None:
    weekdays = parse("cron(0 9 ? * MON-FRI *)")
    assert weekdays.next_after(T0) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # Friday 10:00 → Monday
    mondays = parse("cron(0 12 ? * 2 *)")
    assert mondays.next_after(T0) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    sundays = parse("cron(0 12 ? * 1 *)")
    assert sundays.next_after(T0) == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_cron_month_names_and_years() -> None:
    new_year = parse("cron(0 0 1 JAN ? 2027)")
    assert new_year.next_after(T0) == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    past = parse("cron(0 0 1 JAN ? 2020)")
    with pytest.raises(ScheduleError):
        past.next_after(T0)


def test_every_topology_schedule_parses() -> None:
    for fn in topology.FUNCTIONS:
        for trigger in fn.schedules:
            parse(trigger.expression)


def test_scheduled_event_payload() -> None:
    event = scheduled_event("flush-alert-groups", T0, "us-east-1")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-11-27T10:00:30Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/flush-alert-groups"]
    assert event["detail"] == {}


def test_runner_fires_repeatedly_with_a_speedup_and_survives_handler_errors() -> None:
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], _context: Any) -> None:
        events.append(event)
        if len(events) == 1:
            raise RuntimeError("first run fails")

    stop = threading.Event()
    function = LocalFunction(topology.function("alert_flush"), handler)
    runner = ScheduleRunner(
        function, "flush-alert-groups", parse("rate(1 minute)"), stop=stop, region="us-east-1", speedup=600
    )
    runner.start()
    deadline = time.monotonic() + 10
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    runner.join(5)
    assert not runner.is_alive()
    assert len(events) >= 3
    assert all(e["detail-type"] == "Scheduled Event" for e in events)
    times = [datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%SZ") for e in events[:3]]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [60, 60]


def test_speedup_must_be_positive() -> None:
    function = LocalFunction(topology.function("alert_flush"), lambda _e, _c: None)
    with pytest.raises(ScheduleError):
        ScheduleRunner(function, "x", parse("rate(1 minute)"), stop=threading.Event(), region="r", speedup=0)
