"""Opaque keyset cursors for list routes: one encoding and one error for every domain.

A cursor is the sort key of the last item of a page (for example its creation time and id,
or its sequence number), JSON-encoded and base64url'd without padding. `decode_cursor` refuses
anything that does not decode to a key of the expected shape with a 400 (`invalid_cursor`) the
caller can act on, so a tampered, truncated or out-of-range cursor never reaches a query.
Timestamps travel as ISO 8601 UTC and are bounded like every other timestamp a caller sends
(`lotabots.timestamps`).

Every list route takes `limit` and `cursor` and answers `{items, next_cursor}`. A repository
reads one page with SQL: `after(...)` is the keyset condition (rows past the cursor in the
list's order), `LIMIT limit + 1` tells whether there is a next page, and `page(...)` cuts the
extra row off and encodes the cursor. Nothing loads every row to slice it in Python.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

from lotabots.errors import BadRequest
from lotabots.timestamps import to_utc

CursorPart = str | int | datetime
T = TypeVar("T")
_MAX_STRING = 200


class InvalidCursor(BadRequest):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("cursor is not valid; use the next_cursor of a previous page")


def encode_cursor(*key: CursorPart) -> str:
    parts = [to_utc(part).isoformat() if isinstance(part, datetime) else part for part in key]
    raw = json.dumps(parts, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *shape: type[CursorPart]) -> tuple[Any, ...]:
    """The key `encode_cursor` was given; each part must have the type named in `shape`."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise InvalidCursor()
    decoded: list[Any] = []
    for part, expected in zip(key, shape, strict=True):
        if expected is datetime:
            decoded.append(_timestamp(part))
        # bool is an int subclass in Python, never a sort key here.
        elif type(part) is not expected or (isinstance(part, str) and not 0 < len(part) <= _MAX_STRING):
            raise InvalidCursor()
        else:
            decoded.append(part)
    return tuple(decoded)


def _timestamp(part: Any) -> datetime:
    if not isinstance(part, str):
        raise InvalidCursor()
    try:
        return to_utc(datetime.fromisoformat(part))
    except ValueError:
        raise InvalidCursor() from None


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """The (timestamp, id) key of lists ordered by time (newest first), then id."""
    sort_key, item_id = decode_cursor(cursor, datetime, str)
    return sort_key, item_id


def after(
    session: Session, sort_column: Any, id_column: Any, key: tuple[Any, str], *, descending: bool = True
) -> ColumnElement[bool]:
    """Rows past `key` (a decoded cursor) in the order (sort_column, id_column), newest first
    unless `descending` is False."""
    value, item_id = key
    plain_column = not isinstance(getattr(sort_column, "type", None), TypeDecorator)
    if isinstance(value, datetime) and plain_column and session.get_bind().dialect.name == "sqlite":
        value = value.replace(tzinfo=None)  # SQLite keeps naive UTC (UTC column types convert themselves)
    if descending:
        return or_(sort_column < value, and_(sort_column == value, id_column < item_id))
    return or_(sort_column > value, and_(sort_column == value, id_column > item_id))


def page(
    rows: Sequence[T], limit: int, key: Callable[[T], tuple[CursorPart, ...]]
) -> tuple[list[T], str | None]:
    """The page out of rows read with `LIMIT limit + 1`, and the cursor of the next page (None
    on the last)."""
    items = list(rows[:limit])
    return items, (encode_cursor(*key(items[-1])) if len(rows) > limit and items else None)
