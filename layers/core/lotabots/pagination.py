"""Keyset pagination cursors, one format for every list route.

A cursor is the position after the last item of a page: the item's sort timestamp and id,
JSON in URL-safe base64. It is opaque to callers; anything that does not decode to exactly
that (a forged, truncated or out-of-range cursor) is a 400 `invalid_cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from lotabots.errors import BadRequest
from lotabots.timestamps import to_utc

MAX_ID_LENGTH = 64


class InvalidCursor(BadRequest):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("cursor is not valid; use the next_cursor of a previous page")


def encode_cursor(sort_key: datetime, item_id: str) -> str:
    raw = json.dumps({"t": to_utc(sort_key).isoformat(), "i": item_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(aware UTC timestamp, id) of a cursor made by `encode_cursor`; InvalidCursor otherwise."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        sort_key = to_utc(datetime.fromisoformat(data["t"]))
        item_id = data["i"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidCursor() from None
    if not isinstance(item_id, str) or not 0 < len(item_id) <= MAX_ID_LENGTH:
        raise InvalidCursor()
    return sort_key, item_id
