"""Keyset cursors: what one page encodes the next decodes; anything else is a 400."""

import pytest

from lotabots.errors import BadRequest
from lotabots.pagination import decode_cursor, encode_cursor


def test_round_trip_of_mixed_keys() -> None:
    cursor = encode_cursor("2026-11-25T10:00:00+00:00", 42)
    assert "=" not in cursor
    assert decode_cursor(cursor, str, int) == ("2026-11-25T10:00:00+00:00", 42)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "bm90IGpzb24",  # "not json"
        encode_cursor(1, 2),  # wrong length
        encode_cursor("1"),  # wrong type
        "W3RydWVd",  # [true]: bool is not int
        "eyJzIjogMX0",  # {"s": 1}: not a list
        encode_cursor("x" * 201),  # over-long string
    ],
)
def test_anything_else_is_a_400_invalid_cursor(cursor: str) -> None:
    shape = (str,) if cursor == encode_cursor("x" * 201) else (int,)
    with pytest.raises(BadRequest) as raised:
        decode_cursor(cursor, *shape)
    assert raised.value.code == "invalid_cursor" and raised.value.status == 400
