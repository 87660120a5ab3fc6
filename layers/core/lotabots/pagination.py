"""Opaque keyset cursors for list routes: one encoding and one error for every domain.

A cursor is the sort key of the last item of a page, JSON-encoded and base64url'd without
padding. `decode_cursor` refuses anything that does not decode to a key of the expected
shape with a 400 (`invalid_cursor`) the caller can act on, so a tampered or truncated cursor
never reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import json

from lotabots.errors import BadRequest

CursorPart = str | int
_INVALID = "cursor is not valid; use the next_cursor of a previous page"
_MAX_STRING = 200


def encode_cursor(*key: CursorPart) -> str:
    raw = json.dumps(list(key), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *shape: type[CursorPart]) -> tuple[CursorPart, ...]:
    """The key `encode_cursor` was given; each part must have the type named in `shape`."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(_INVALID, code="invalid_cursor") from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise BadRequest(_INVALID, code="invalid_cursor")
    for part, expected in zip(key, shape, strict=True):
        # bool is an int subclass in Python, never a sort key here.
        if type(part) is not expected or (isinstance(part, str) and len(part) > _MAX_STRING):
            raise BadRequest(_INVALID, code="invalid_cursor")
    return tuple(key)
