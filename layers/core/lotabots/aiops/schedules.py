"""Which AIOps schedule a "Scheduled Event" is for: its rule, named `<stage prefix><schedule>`."""

from __future__ import annotations

from collections.abc import Iterable


class UnknownSchedule(ValueError):
    """The event names no schedule this function runs (it fails, and EventBridge dead-letters it)."""


def schedule_of(resources: Iterable[str], schedules: Iterable[str]) -> str:
    """The schedule whose rule is among the event's `resources` (`.../rule/lotabots-dev-aiops-logs`)."""
    names = sorted(schedules, key=len, reverse=True)
    for resource in resources:
        rule = resource.rsplit("/", 1)[-1]
        for name in names:
            if rule == name or rule.endswith(f"-{name}"):
                return name
    raise UnknownSchedule(f"no AIOps schedule in {list(resources)}; expected one of {sorted(names)}")
