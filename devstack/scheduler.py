"""The EventBridge schedules of the topology, run in-process.

`rate(N unit)` and minute-level `cron(min hour day-of-month month day-of-week year)`
(EventBridge syntax: `* , - / ?`, month and weekday names, weekday 1 = Sunday; `L`, `W` and
`#` are not supported locally) are parsed; each schedule invokes its function with a
"Scheduled Event" payload. `LOTABOTS_SCHEDULE_SPEEDUP` makes time pass faster for the
schedules (a speedup of 60 runs `rate(1 minute)` every second).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from devstack.runtime import ACCOUNT_ID, Invocable

log = logging.getLogger("devstack.scheduler")

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_WEEKDAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}


class ScheduleError(ValueError):
    """An expression the local scheduler cannot run."""


class Schedule(Protocol):
    @property
    def expression(self) -> str: ...

    def next_after(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class Rate:
    expression: str
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """One cron field: `*`, `?`, values, names, ranges, lists and `/` steps."""

    def number(token: str) -> int:
        token = token.upper()
        if names and token in names:
            return names[token]
        if any(mark in token for mark in "LW#"):
            raise ScheduleError(f"{token!r}: L, W and # are not supported by the local scheduler")
        if not token.isdigit() or not low <= int(token) <= high:
            raise ScheduleError(f"{token!r} is not a value between {low} and {high}")
        return int(token)

    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"bad step in {part!r}")
            step = int(step_text)
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = number(first), number(last)
            if start > end:
                raise ScheduleError(f"range {base!r} runs backwards")
        else:
            start = number(base)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: "?" (day-of-week decides)
    months: frozenset[int]
    weekdays: frozenset[int] | None  # EventBridge numbering, 1 = Sunday; None: "?"
    years: frozenset[int]

    @classmethod
    def parse(cls, expression: str, body: str) -> Cron:
        parts = body.split()
        if len(parts) != 6:
            raise ScheduleError(
                f"cron needs 6 fields (minutes hours day month weekday year), got {len(parts)}"
            )
        minute, hour, day, month, weekday, year = parts
        if (day == "?") == (weekday == "?"):
            raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            expression=expression,
            minutes=_field(minute, 0, 59),
            hours=_field(hour, 0, 23),
            days=None if day == "?" else _field(day, 1, 31),
            months=_field(month, 1, 12, _MONTHS),
            weekdays=None if weekday == "?" else _field(weekday, 1, 7, _WEEKDAYS),
            years=_field(year, 1970, 2199),
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.days is not None:
            return day.day in self.days
        assert self.weekdays is not None
        return (day.isoweekday() % 7) + 1 in self.weekdays  # Sunday → 1 … Saturday → 7

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after `moment` (UTC)."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError(f"{self.expression} does not fire within five years")


def parse(expression: str) -> Schedule:
    """Parse an EventBridge schedule expression."""
    text = expression.strip()
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)", text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if unit not in _UNITS or value <= 0:
            raise ScheduleError(f"{expression!r}: expected rate(N minute|minutes|hour|hours|day|days), N > 0")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(f"{expression!r}: use the singular unit for 1 and the plural otherwise")
        return Rate(text, value * _UNITS[unit])
    cron = re.fullmatch(r"cron\((.*)\)", text)
    if cron:
        return Cron.parse(text, cron.group(1))
    raise ScheduleError(f"{expression!r} is neither rate(...) nor cron(...)")


def scheduled_event(rule_name: str, at: datetime, region: str) -> dict[str, Any]:
    """The payload EventBridge sends a function for a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


class ScheduleRunner(threading.Thread):
    """Fires one schedule. Time runs `speedup` times faster than the wall clock for it."""

    def __init__(
        self,
        function: Invocable,
        rule_name: str,
        schedule: Schedule,
        *,
        stop: threading.Event,
        region: str,
        speedup: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name=f"schedule-{rule_name}", daemon=True)
        if speedup <= 0:
            raise ScheduleError("LOTABOTS_SCHEDULE_SPEEDUP must be > 0")
        self.function = function
        self.rule_name = rule_name
        self.schedule = schedule
        self.stop_event = stop
        self.region = region
        self.speedup = speedup
        self.clock = clock
        self.runs = 0

    def fire(self, at: datetime) -> None:
        started = time.monotonic()
        try:
            self.function.invoke(scheduled_event(self.rule_name, at, self.region))
            outcome = "ok"
        except Exception:
            log.error(
                "%s raised on schedule %s:\n%s", self.function.name, self.rule_name, traceback.format_exc()
            )
            outcome = "raised"
        self.runs += 1
        log.info(
            "schedule %s -> %s: %s, %.1f ms",
            self.rule_name,
            self.function.name,
            outcome,
            (time.monotonic() - started) * 1000,
        )

    def run(self) -> None:
        virtual = datetime.now(UTC)
        real = self.clock()
        while not self.stop_event.is_set():
            due = self.schedule.next_after(virtual)
            delay = (due - virtual).total_seconds() / self.speedup - (self.clock() - real)
            if self.stop_event.wait(max(0.0, delay)):
                break
            virtual, real = due, self.clock()
            self.fire(due)
