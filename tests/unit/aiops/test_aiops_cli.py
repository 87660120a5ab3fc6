"""`lotabots aiops logs|detect|forecast`: CSV out, and exit 2 with a message on bad files."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lotabots.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[list[str]], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, list(csv.reader(io.StringIO(out))), err


def test_logs_writes_one_row_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """1-based LineId and a <*> template for every line, blank lines included."""
    log = tmp_path / "app.log"
    log.write_text("worker 1 started\nworker 2 started\n\ndisk, full\n")
    code, rows, _ = _run(["aiops", "logs", str(log)], capsys)
    assert code == 0
    assert rows == [
        ["LineId", "EventTemplate"],
        ["1", "worker <*> started"],
        ["2", "worker <*> started"],
        ["3", ""],
        ["4", "disk, full"],
    ]


def test_detect_scores_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ISO, NAB and epoch timestamps are read; every row gets a score in [0, 1]; NaN values pass."""
    data = tmp_path / "s.csv"
    rows = [
        "timestamp,value",
        "2026-01-01T00:00:00Z,1",
        "2026-01-01 00:05:00,2",
        "1767226200,",
        "1767226500,nan",
    ]
    rows += [f"{1767226500 + 300 * i},{i % 3}" for i in range(1, 50)]
    data.write_text("\n".join(rows) + "\n")
    code, out, _ = _run(["aiops", "detect", str(data)], capsys)
    assert code == 0
    assert out[0] == ["timestamp", "value", "anomaly_score"]
    assert len(out) == len(rows)
    assert out[1][0] == "2026-01-01T00:00:00Z"
    assert all(0.0 <= float(r[2]) <= 1.0 for r in out[1:])


def test_forecast_writes_horizon_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--horizon rows numbered from 1, close to a clean daily cycle."""
    data = tmp_path / "s.csv"
    lines = ["timestamp,value"] + [
        f"{3600 * h},{100 + 50 * math.sin(2 * math.pi * h / 24)}" for h in range(24 * 14)
    ]
    data.write_text("\n".join(lines) + "\n")
    code, out, _ = _run(["aiops", "forecast", str(data), "--horizon", "6", "--season", "24"], capsys)
    assert code == 0
    assert [r[0] for r in out] == ["step", "1", "2", "3", "4", "5", "6"]
    assert float(out[1][1]) == pytest.approx(100, abs=5)


@pytest.mark.parametrize(
    ("command", "content", "message"),
    [
        (["logs"], None, "no such file"),
        (["logs"], b"\x00\x01binary\x00", "binary"),
        (["logs"], b"ok line\n\xff\xfe bad\n", "line 2 is not valid UTF-8"),
        (["detect"], b"", "empty file"),
        (["detect"], b"time,val\n1,2\n", "missing column"),
        (["detect"], b"timestamp,value\nyesterday,1\n", "line 2"),
        (["detect"], b"timestamp,value\n2026-01-01,abc\n", "not a number"),
        (["detect"], b"timestamp,value\n1e30,1\n", "out of range"),
        (["forecast", "--horizon", "3"], b"timestamp,value\n", "no rows"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    content: bytes | None,
    message: str,
) -> None:
    """Each unusable file is one clear line on stderr and exit code 2, no traceback."""
    path = tmp_path / "input"
    if content is not None:
        path.write_bytes(content)
    code = main(["aiops", command[0], str(path), *command[1:]])
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_bad_horizon_is_a_usage_error(tmp_path: Path) -> None:
    """--horizon 0 is refused by the parser (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["aiops", "forecast", str(tmp_path / "x.csv"), "--horizon", "0"])
    assert exit_info.value.code == 2


def test_console_script_as_a_subprocess(tmp_path: Path) -> None:
    """The module runs as a program: CSV on stdout, and exit 2 with a message on a missing file."""
    log = tmp_path / "a.log"
    log.write_text("GET /x/1 200\nGET /x/2 200\n")
    ok = subprocess.run(
        [sys.executable, "-m", "lotabots.cli", "aiops", "logs", str(log)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["LineId,EventTemplate", "1,GET <*> <*>", "2,GET <*> <*>"]
    missing = subprocess.run(
        [sys.executable, "-m", "lotabots.cli", "aiops", "detect", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`lotabots aiops logs big.log | head -1`: the reader leaves early, the CLI stops without a
    traceback (stdout goes to devnull, exit 1) instead of crashing on the closed pipe."""
    log = tmp_path / "big.log"
    log.write_text("".join(f"worker {i} finished job {i * 7} in {i % 97} ms\n" for i in range(50_000)))
    process = subprocess.Popen(
        [sys.executable, "-m", "lotabots.cli", "aiops", "logs", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"LineId,EventTemplate\n"
    process.stdout.close()  # what `head -1` does after its line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert stderr == ""
