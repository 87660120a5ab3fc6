"""Runs `pdf_worker` on a spooled PDF and turns its per-page records into text and a note.

The worker stops itself when a budget runs out; this side is the backstop that does not rely
on it: the process is killed at the deadline plus a short grace, and every page record it had
written by then still counts. So a document always settles: `ready` with the text that was read
(and a note saying why it is partial), or `rejected` when no page could be read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from lotabots.documents.extraction import TextCollector, UnacceptableContent, clean_text
from lotabots.documents.pdf_budget import PdfBudget

# After the deadline the worker gets this long to report that it stopped, then it is killed.
KILL_GRACE_S = 1.0
NOTE_CHARS = 500
_LISTED_PAGES = 5


class PdfUnreadable(UnacceptableContent):
    """No page of the PDF could be read within the budget (or it is no readable PDF at all)."""

    def __init__(self, reason: str, *, peak_rss: int | None, seconds: float) -> None:
        super().__init__(reason[:NOTE_CHARS])
        self.peak_rss = peak_rss
        self.seconds = seconds


@dataclass(frozen=True)
class PdfResult:
    page_count: int
    note: str | None
    peak_rss: int | None  # bytes, of the worker process (None when it was killed)
    seconds: float


def _child_environment() -> dict[str, str]:
    """What the worker needs to import this package, and nothing else (no AWS credentials)."""
    paths = [entry for entry in sys.path if entry and os.path.isdir(entry)]
    env = {
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "LANG": "C.UTF-8",
    }
    for name in ("PATH", "LD_LIBRARY_PATH"):  # Lambda puts layer libraries on LD_LIBRARY_PATH
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _worker_command(budget: PdfBudget, path: str) -> list[str]:
    return [sys.executable, "-s", "-m", "lotabots.documents.pdf_worker", budget.to_json(), path]


def extract_pdf(path: str, collector: TextCollector, budget: PdfBudget) -> PdfResult:
    """Feed the text of the PDF at `path` to `collector` within `budget`.

    Raises PdfUnreadable when the file is not a readable PDF or no page could be read within
    the budget; OSError when the worker cannot be started (retried like any I/O error)."""
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        _worker_command(budget, path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_environment(),
        close_fds=True,
    )
    killed = False
    try:
        out, err = process.communicate(timeout=max(0.0, budget.deadline - time.monotonic()) + KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        killed = True
        out, err = process.communicate(timeout=10)  # the worker starts no processes of its own
    except BaseException:
        process.kill()
        process.wait()
        raise
    seconds = time.monotonic() - started
    return _interpret(_records(out), budget, process.returncode, killed, err, seconds, collector)


def _records(out: bytes) -> list[dict[str, Any]]:
    """The complete JSON lines (a kill can cut the last one short)."""
    records = []
    for line in out.split(b"\n"):
        try:
            record = json.loads(line.decode("utf-8", errors="replace"))
        except ValueError:
            break
        if isinstance(record, dict):
            records.append(record)
    return records


def _interpret(
    records: list[dict[str, Any]],
    budget: PdfBudget,
    returncode: int,
    killed: bool,
    stderr: bytes,
    seconds: float,
    collector: TextCollector,
) -> PdfResult:
    pages_read = 0
    skipped: dict[int, str] = {}
    finished = False
    rejected: str | None = None
    stop: str | None = None
    peak_rss: int | None = None
    for record in records:
        if "page" in record:
            collector.add_counted(
                clean_text(str(record["text"])), int(record["words"]), cut=bool(record["cut"])
            )
            pages_read += 1
        elif "skip" in record:
            skipped[int(record["skip"])] = str(record["why"])
        elif "reject" in record:
            rejected = str(record["reject"])
        elif "done" in record:
            finished = True
            stop = record["done"].get("stop")
        elif "peak_rss" in record:
            peak_rss = int(record["peak_rss"])
    if rejected is None and not finished:
        stop = _why_it_ended(budget, returncode, killed, stderr)
    if rejected is None and pages_read == 0:
        rejected = _nothing_read(stop, skipped)
    if rejected is not None:
        raise PdfUnreadable(rejected, peak_rss=peak_rss, seconds=seconds)
    return PdfResult(
        page_count=pages_read + len(skipped),
        note=_note(stop, skipped),
        peak_rss=peak_rss,
        seconds=seconds,
    )


def _nothing_read(stop: str | None, skipped: dict[int, str]) -> str:
    first = next(iter(skipped.items()), None)
    if stop is not None:
        detail = "" if first is None else f"; page {first[0]}: {first[1]}"
        return f"the PDF could not be read: {stop}{detail}"
    if first is not None:
        return f"the file is not a readable PDF (no page could be read; page {first[0]}: {first[1]})"
    return "the PDF has no pages"


def _why_it_ended(budget: PdfBudget, returncode: int, killed: bool, stderr: bytes) -> str:
    """Why the worker ended without its final record."""
    if killed:
        return f"the time budget of {budget.seconds:g} s ran out"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"the CPU budget of {budget.seconds:g} s ran out"
    if b"MemoryError" in stderr[-2000:]:
        return f"the memory budget of {budget.memory_mb} MiB ran out"
    return f"the PDF reader stopped unexpectedly (exit status {returncode})"


def _note(stop: str | None, skipped: dict[int, str]) -> str | None:
    """Why the text is partial, for the document's owner; None when every page was read."""
    parts = []
    if stop is not None:
        parts.append(f"reading stopped because {stop}")
    if skipped:
        numbers = sorted(skipped)
        listed = ", ".join(str(n) for n in numbers[:_LISTED_PAGES])
        if len(numbers) > _LISTED_PAGES:
            listed += f" and {len(numbers) - _LISTED_PAGES} more"
        noun = "page" if len(numbers) == 1 else "pages"
        parts.append(f"{noun} {listed} could not be read ({skipped[numbers[0]]})")
    if not parts:
        return None
    return ("partial text: " + "; ".join(parts))[:NOTE_CHARS]
