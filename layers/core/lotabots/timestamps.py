"""Timestamps a caller may send: aware or naive (read as UTC), normalised to UTC, bounded.

`year 1 +14:00` or `year 9999 -14:00` cannot be converted to UTC at all (OverflowError), and
dates near either end of the calendar overflow later arithmetic (a silence's end plus a group
interval). Every timestamp that enters through a body, a query filter or a cursor goes through
`to_utc`, so such values are a 4xx with a clear message, never a 500.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def to_utc(value: datetime) -> datetime:
    """`value` as aware UTC; ValueError when it is outside [EARLIEST, LATEST)."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_out_of_range()) from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(_out_of_range())
    return utc


def _out_of_range() -> str:
    return f"timestamp must be between {EARLIEST.date()} and {LATEST.date()} (UTC)"


_ISO_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_8601_only(value: Any) -> Any:
    """Refuse epoch numbers (pydantic would take `0`, `"1.5"` as 1970): the API speaks ISO 8601."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_START.match(value):
        raise ValueError("use an ISO 8601 timestamp such as 2026-01-31T12:00:00Z")
    return value


UtcDateTime = Annotated[datetime, BeforeValidator(iso_8601_only), AfterValidator(to_utc)]
"""A request timestamp: naive means UTC; returned aware UTC; bounded (422 otherwise)."""
AwareUtcDateTime = Annotated[AwareDatetime, BeforeValidator(iso_8601_only), AfterValidator(to_utc)]
"""A request timestamp that must carry its offset; returned aware UTC; bounded (422 otherwise)."""
