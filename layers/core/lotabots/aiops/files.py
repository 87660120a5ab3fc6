"""Reading the CLI's input files: log lines and `timestamp,value` CSV series.

Every problem with a file (missing, not UTF-8 text, binary, missing columns, a bad timestamp or
value) is an `InputError` whose message names the file and the line, for the CLI to print.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lotabots.timestamps import to_utc

__all__ = ["InputError", "Series", "parse_timestamp", "read_lines", "read_series"]

# Reject files that look binary: a NUL byte in the first block is never in text logs or CSV.
_SNIFF_BYTES = 8192


class InputError(ValueError):
    """An input file the CLI cannot use; the message is for the operator."""


@dataclass
class Series:
    stamps: list[str]  # as written in the file
    times: list[float]  # epoch seconds
    values: list[float]  # NaN where the cell is empty or "nan"


def _read_text(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise InputError(f"{path}: looks binary (NUL bytes), expected text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line} is not valid UTF-8 (byte offset {exc.start})") from None


def read_lines(path: str) -> list[str]:
    """The file's lines without their line endings (an empty file is no lines)."""
    return _read_text(path).splitlines()


def parse_timestamp(text: str) -> float:
    """Epoch seconds from ISO 8601, NAB's `YYYY-MM-DD HH:MM:SS` (naive = UTC) or epoch seconds."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        try:
            to_utc(datetime.fromtimestamp(number, tz=UTC))
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"timestamp {text!r} is out of range") from None
        return number
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(
            f"timestamp {text!r} is neither ISO 8601 (2026-01-31T12:00:00Z), "
            "'YYYY-MM-DD HH:MM:SS' nor epoch seconds"
        ) from None
    return to_utc(moment).timestamp()


def read_series(path: str) -> Series:
    """A `timestamp,value` CSV (other columns ignored); values may be empty/NaN, timestamps may not."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = next(reader, None)
    if header is None:
        raise InputError(f"{path}: empty file, expected a header with timestamp,value")
    names = [h.strip().lower() for h in header]
    missing = [c for c in ("timestamp", "value") if c not in names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
    t_col, v_col = names.index("timestamp"), names.index("value")
    series = Series([], [], [])
    for number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(t_col, v_col):
            raise InputError(f"{path}: line {number} has {len(row)} column(s), expected {len(names)}")
        try:
            moment = parse_timestamp(row[t_col])
        except ValueError as exc:
            raise InputError(f"{path}: line {number}: {exc}") from None
        cell = row[v_col].strip()
        try:
            value = float(cell) if cell else math.nan
        except ValueError:
            raise InputError(f"{path}: line {number}: value {cell!r} is not a number") from None
        series.stamps.append(row[t_col].strip())
        series.times.append(moment)
        series.values.append(value)
    return series
