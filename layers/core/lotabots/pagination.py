"""Opaque keyset cursors for list routes: one encoding and one error for every domain.

A cursor is the sort key of the last item of a page (for example its creation time and id,
or its sequence number), JSON-encoded and base64url'd without padding. `decode_cursor` refuses
anything that does not decode to a key of the expected shape with a 400 (`invalid_cursor`) the
caller can act on, so a tampered, truncated or out-of-range cursor never reaches a query.
Timestamps travel as ISO 8601 UTC and are bounded like every other timestamp a caller sends
(`lotabots.timestamps`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from lotabots.errors import BadRequest
from lotabots.timestamps import to_utc

CursorPart = str | int | datetime
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
