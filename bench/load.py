"""Load: mixed read/write traffic from concurrent clients against a local stack (`make load`).

Starts its own local stack (the e2e launcher: `python -m devstack` on a free port, temporary
state, bcrypt cost 4, fast schedules), warms every API function up with concurrent requests
(each worker's cold start, as after a deploy), then runs locust headless (`bench/locustfile.py`:
members, operators, auditors, and one user that keeps a large PDF ingesting) and computes the
figures from every request's record: p50/p99 per route and overall, requests/s, errors (any
status other than the one the step expects), and p99 of the requests made while a large PDF
was being ingested. The contrast run does the same with `LOTABOTS_FUNCTION_WORKERS=0` (every
function in the stack's process, one invocation at a time: the runtime before workers).

GPU jobs are dispatched to the Modal backend (`JOB_BACKEND=modal`), which has no credentials
locally: dispatch fails and retries in the background, so the figures are the API's, not the
GPU work's (that runs on Modal or Batch, never on the API's machine).

Environment: LOAD_USERS (12), LOAD_SECONDS (60), LOAD_SPAWN_RATE (4), LOAD_PDF_PAGES (1000),
LOAD_CONTRAST (1: also run the in-process contrast; 0: skip it).
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USERS = int(os.environ.get("LOAD_USERS", "12"))
SECONDS = int(os.environ.get("LOAD_SECONDS", "60"))
SPAWN_RATE = float(os.environ.get("LOAD_SPAWN_RATE", "4"))
PDF_PAGES = int(os.environ.get("LOAD_PDF_PAGES", "1000"))
CONTRAST = os.environ.get("LOAD_CONTRAST", "1") != "0"
INGEST_PREFIX = "[ingest]"
NOT_API = ("S3 presigned POST (moto)",)
# Set when the main run had errors: `python -m bench load` then exits non-zero (the section is kept).
FAILED = False


@dataclass
class Record:
    start: float
    name: str
    ms: float
    status: int
    ok: bool


@dataclass
class RunResult:
    label: str
    workers: int
    records: list[Record]
    wall_s: float
    load_avg: list[float]
    cold_starts: int
    locust_rc: int
    command: str
    errors_seen: dict[str, int] = field(default_factory=dict)

    @property
    def api(self) -> list[Record]:
        return [r for r in self.records if not r.name.startswith(INGEST_PREFIX) and r.name not in NOT_API]

    @property
    def ingests(self) -> list[Record]:
        return [r for r in self.records if r.name.startswith(INGEST_PREFIX)]

    @property
    def errors(self) -> int:
        return sum(1 for r in self.records if not r.ok)

    def during_ingest(self) -> list[Record]:
        windows = [(r.start, r.start + r.ms / 1000) for r in self.ingests]
        return [r for r in self.api if any(a <= r.start <= b for a, b in windows)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def _warm_up(url: str, email: str, password: str) -> None:
    """Two concurrent rounds on every API function, so that the measured run finds the workers
    started (at most two per function) instead of timing their imports."""
    import httpx

    with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
        token = http.post("/auth/login", json={"email": email, "password": password}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    paths = ["/health", "/auth/me", "/documents", "/jobs", "/alerts", "/attestations", "/audit"]

    def get(path: str) -> None:
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
            http.get(path, headers=headers)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(3):
            list(pool.map(get, [p for p in paths for _ in range(2)]))


class _LoadSampler(threading.Thread):
    """The machine's 1-minute load average every 5 s while the run lasts."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = [os.getloadavg()[0]]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5):
            self.samples.append(os.getloadavg()[0])


def _read_records(path: Path) -> list[Record]:
    with path.open(newline="") as handle:
        return [
            Record(float(start), name, float(ms), int(status), ok == "1")
            for start, name, ms, status, ok in csv.reader(handle)
        ]


def run_once(label: str, workers: int) -> RunResult:
    from tests.e2e.harness import ADMIN_EMAIL, ADMIN_PASSWORD, local_stack

    env = {"JOB_BACKEND": "modal", "LOTABOTS_FUNCTION_WORKERS": str(workers)}
    records_path = Path(tempfile.mkdtemp(prefix="lotabots-load-")) / "records.csv"
    try:
        with local_stack(env) as stack:
            _warm_up(stack.url, ADMIN_EMAIL, ADMIN_PASSWORD)
            log_before = stack.log_path.read_text(errors="replace").count(": worker ")
            args = [
                "-m", "locust", "-f", "bench/locustfile.py", "--headless", "--only-summary",
                "-u", str(USERS), "-r", str(SPAWN_RATE), "-t", f"{SECONDS}s", "--stop-timeout", "30",
                "--host", stack.url, "--exit-code-on-error", "0",
            ]  # fmt: skip
            sampler = _LoadSampler()
            sampler.start()
            started = time.monotonic()
            finished = subprocess.run(
                [sys.executable, *args],
                cwd=ROOT,
                env={
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "LOAD_RECORDS": str(records_path),
                    "LOAD_ADMIN_EMAIL": ADMIN_EMAIL,
                    "LOAD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "LOAD_PDF_PAGES": str(PDF_PAGES),
                },
                capture_output=True,
                text=True,
                timeout=SECONDS + 180,
                check=False,
            )
            wall = time.monotonic() - started
            sampler.stop.set()
            cold = stack.log_path.read_text(errors="replace").count(": worker ") - log_before
            if finished.returncode != 0:
                print(finished.stdout[-3000:], finished.stderr[-3000:], file=sys.stderr)
    except BaseException as exc:  # the launcher reports a stack that would not start via pytest.fail
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RuntimeError(f"{label}: {exc}") from exc
    records = _read_records(records_path)
    errors: dict[str, int] = {}
    for line in (finished.stdout + finished.stderr).splitlines():
        if "expected " in line and ", got " in line:
            errors[line.strip()[:200]] = errors.get(line.strip()[:200], 0) + 1
    return RunResult(
        label=label,
        workers=workers,
        records=records,
        wall_s=wall,
        load_avg=sampler.samples,
        cold_starts=cold,
        locust_rc=finished.returncode,
        command="python -m locust " + " ".join(a if a != stack.url else "<stack url>" for a in args[2:]),
        errors_seen=errors,
    )


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _summary_row(result: RunResult) -> str:
    api = result.api
    times = [r.ms for r in api]
    during = [r.ms for r in result.during_ingest()]
    ingest_s = [r.ms / 1000 for r in result.ingests]
    return (
        f"| {result.label} | {USERS} | {result.wall_s:.0f} | {len(api)} | {len(api) / result.wall_s:.1f} "
        f"| **{result.errors}** | {_ms(percentile(times, 50))} | {_ms(percentile(times, 99))} "
        f"| {_ms(percentile(during, 99))} ({len(during)}) "
        f"| {len(ingest_s)}, {statistics.median(ingest_s) if ingest_s else float('nan'):.1f} s "
        f"| {result.cold_starts} | {statistics.mean(result.load_avg):.1f} (max {max(result.load_avg):.1f}) |"
    )


def _routes_table(result: RunResult) -> list[str]:
    lines = [
        "| route | requests | errors | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_route: dict[str, list[Record]] = {}
    for record in result.records:
        if not record.name.startswith(INGEST_PREFIX):
            by_route.setdefault(record.name, []).append(record)
    for name, records in sorted(by_route.items(), key=lambda item: -len(item[1])):
        times = [r.ms for r in records]
        errors = sum(1 for r in records if not r.ok)
        lines.append(
            f"| `{name}` | {len(records)} | {errors} | {_ms(percentile(times, 50))} "
            f"| {_ms(percentile(times, 99))} | {_ms(max(times))} |"
        )
    return lines


def section(results: list[RunResult]) -> str:
    main = results[0]
    lines = [
        "## Load\n",
        f"Command: `make load` (`python -m bench load`), {time.strftime('%Y-%m-%d %H:%M %Z')}. A local stack "
        "of its own (`tests/e2e/harness.py`: SQLite, bcrypt cost 4, fast schedules; `JOB_BACKEND=modal` "
        "without credentials, so GPU jobs are recorded and their dispatch retried, and no GPU work "
        "competes with the API); every API function warmed up with two concurrent rounds; then "
        f"`{main.command}` (`bench/locustfile.py`). {USERS} users: members (documents: declare, upload "
        "the bytes to the presigned POST, get, delete then get 404, list, search; a refused `/jobs`), "
        "operators (jobs create/list/get on a ready document, alerts post/list, attestations list), "
        "auditors (reads, a refused alert post), everyone health, me, refresh-token rotation and "
        f"logins; plus one user that keeps uploading a {PDF_PAGES}-page PDF and waits for its ingest. "
        "An error is any answer whose status is not the one its step expects. Client and stack share "
        f"the machine ({os.cpu_count()} CPUs; load average sampled every 5 s during the run, other "
        "work included).\n",
        "| runtime | users | seconds | API requests | requests/s | errors | p50 ms | p99 ms "
        "| p99 ms while a large PDF ingests (requests) | large PDFs ingested, median time | worker cold "
        "starts in the run | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
        *(_summary_row(result) for result in results),
        "",
        f"Requests/s, p50 and p99 cover the API routes (the S3 upload to moto and the ingest waits are "
        f"listed below, not in them). Zero errors required: **{'PASS' if main.errors == 0 else 'FAIL'}** "
        f"({main.errors} in the main run).",
    ]
    if len(results) > 1:
        contrast = results[1]
        main_p99 = percentile([r.ms for r in main.during_ingest()], 99)
        contrast_p99 = percentile([r.ms for r in contrast.during_ingest()], 99)
        lines.append(
            f"With a large PDF ingesting, p99 is {_ms(main_p99)} ms with worker processes against "
            f"{_ms(contrast_p99)} ms in the contrast run, where the ingest held the stack's one "
            "invocation at a time."
        )
    for result in results:
        if result.errors_seen:
            lines += ["", f"Errors seen ({result.label}), as locust reported them:", ""]
            lines += [f"- {count} x `{text}`" for text, count in sorted(result.errors_seen.items())[:10]]
    lines += ["", f"### Per route ({main.label})\n", *_routes_table(main)]
    return "\n".join(lines) + "\n"


def run() -> str:
    global FAILED
    results = [run_once("worker processes (default)", workers=2)]
    if CONTRAST:
        results.append(run_once("contrast: in-process, one invocation at a time", workers=0))
    FAILED = results[0].errors > 0 or results[0].locust_rc != 0
    return section(results)
