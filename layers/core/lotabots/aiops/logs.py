"""The logs schedule (every 5 minutes): mine the functions' log lines into templates online.

Each run reads, per function, the CloudWatch Logs events since that function's checkpoint,
turns each line into (level, message) (Powertools JSON lines: their `level`, `message` and
exception name; plain lines: a level word in the text; EMF metric blobs and Lambda platform
lines are not log messages and are skipped), feeds the messages to one `TemplateMiner` and
counts per (function, template). Results go to `aiops_log_clusters`; findings:

- `new_log_template`: a WARNING/ERROR line of a shape never seen before (not on the very
  first run, when every template is new);
- `log_spike`: a template counted more than `AIOPS_SPIKE_FACTOR` times its learned mean per
  run (an exponentially weighted mean, learned after 3 runs) and at least `AIOPS_SPIKE_MIN_COUNT`.

The miner, the checkpoints and the baselines are one state document (`store`): an unreadable
one is replaced by a fresh state and reported (`state_reset`), never a crash. The document is
written (conditionally) before the database transaction commits, so an overlapping run that
lost the race rolls its counts back instead of counting the same lines twice.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from lotabots import config
from lotabots.aiops import findings, repository, sources, store
from lotabots.aiops.findings import Finding
from lotabots.aiops.logmining import TemplateMiner
from lotabots.aiops.monitor import state_reset_finding
from lotabots.aiops.state import StateError
from lotabots.config import AIOpsSettings
from lotabots.db import session_scope
from lotabots.observability import logger

STATE = "logs"
BASELINE_ALPHA = 0.2
BASELINE_MIN_RUNS = 3
BASELINE_DROP = 0.01
MAX_LINE_CHARS = 8192
_PLATFORM_PREFIXES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START", "EXTENSION")
_LEVEL_WORD = re.compile(r"\b(CRITICAL|FATAL|ERROR|WARN(?:ING)?|DEBUG)\b")
_LEVELS = {"FATAL": "CRITICAL", "WARN": "WARNING"}
ALERTING_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})


def parse_line(line: str) -> tuple[str, str] | None:
    """(level, message) of one log line, or None for what is not a log message."""
    text = line.strip()
    if not text or text.startswith(_PLATFORM_PREFIXES):
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            if "_aws" in data or str(data.get("type", "")).startswith("platform."):
                return None  # an EMF metric blob or a Lambda platform event
            level = str(data.get("level") or data.get("levelname") or "INFO").upper()
            message = str(data.get("message", text))
            if data.get("exception_name"):
                message = f"{message} [{data['exception_name']}]"
            return _LEVELS.get(level, level)[:16], message[:MAX_LINE_CHARS]
    found = _LEVEL_WORD.search(text[:512])
    level = found.group(1) if found else ("ERROR" if text.startswith("Traceback") else "INFO")
    return _LEVELS.get(level, level), text[:MAX_LINE_CHARS]


@dataclass
class _Seen:
    level: str
    count: int = 0
    first_ms: int = 0
    last_ms: int = 0
    examples: list[str] = field(default_factory=list)
    new: bool = False


class LogsRunResult(BaseModel):
    events: int
    lines: int
    templates: int
    new_templates: int
    spikes: int
    functions: dict[str, int]
    unavailable: list[str]
    state_reset: bool
    findings: dict[str, int]


def _load_state() -> tuple[TemplateMiner, dict[str, Any], str | None, str | None, bool]:
    """(miner, rest of the state, etag, problem, first run)."""
    stored = store.load(STATE)
    if stored.body is None:
        return TemplateMiner(), {}, stored.etag, stored.problem, stored.problem is None
    body = stored.body
    try:
        if not isinstance(body, dict):
            raise StateError("logs state is not a JSON object")
        miner = TemplateMiner.from_state(body.get("miner"))
        checkpoints = body.get("checkpoints", {})
        baselines = body.get("baselines", {})
        if not isinstance(checkpoints, dict) or not isinstance(baselines, dict):
            raise StateError("logs state has malformed checkpoints or baselines")
    except (StateError, ValueError, TypeError, KeyError) as exc:
        return TemplateMiner(), {}, stored.etag, f"logs state is unusable: {exc}", False
    return miner, {"checkpoints": checkpoints, "baselines": baselines}, stored.etag, None, False


def _learn(
    baselines: dict[str, dict[str, float]], seen: dict[tuple[str, str], _Seen], functions: dict[str, int]
) -> None:
    """Every baseline of a function read in this run learns its count (0 when absent); a baseline
    that decayed to nothing is dropped (it is learned again if the template comes back)."""
    for function in functions:
        keys = {k for k in baselines if k.split(":", 1)[0] == function}
        keys |= {f"{function}:{t}" for (f, t) in seen if f == function}
        for key in keys:
            entry = seen.get((function, key.split(":", 1)[1]))
            count = float(entry.count if entry else 0)
            old = baselines.get(key)
            if old is None:
                baselines[key] = {"mean": count, "runs": 1}
                continue
            mean = float(old.get("mean", 0.0)) + BASELINE_ALPHA * (count - float(old.get("mean", 0.0)))
            if mean < BASELINE_DROP:
                del baselines[key]
            else:
                baselines[key] = {"mean": round(mean, 4), "runs": int(old.get("runs", 0)) + 1}


def run(now: datetime | None = None) -> LogsRunResult:
    now = now or datetime.now(UTC)
    settings = config.load(AIOpsSettings)
    end_ms = int(now.timestamp() * 1000)
    miner, rest, etag, problem, first_run = _load_state()
    checkpoints: dict[str, int] = {k: int(v) for k, v in rest.get("checkpoints", {}).items()}
    baselines: dict[str, dict[str, float]] = rest.get("baselines", {})
    found: list[Finding] = []
    if problem:
        found.append(state_reset_finding("log miner", problem))
    seen: dict[tuple[str, str], _Seen] = {}
    per_function: dict[str, int] = {}
    unavailable: list[str] = []
    events = lines = 0
    inventory = sources.inventory()
    for function, group in inventory.log_groups.items():
        floor_ms = end_ms - settings.log_lookback_s * 1000
        start_ms = max(checkpoints.get(function, floor_ms), floor_ms)
        newest = start_ms - 1
        try:
            for event in sources.log_events(group, start_ms, end_ms, settings.max_log_events):
                events += 1
                newest = max(newest, event.timestamp_ms)
                parsed = parse_line(event.message)
                if parsed is None:
                    continue
                level, message = parsed
                lines += 1
                match = miner.add(message)
                entry = seen.get((function, match.template_id))
                if entry is None:
                    entry = seen[(function, match.template_id)] = _Seen(
                        level, first_ms=event.timestamp_ms, last_ms=event.timestamp_ms
                    )
                entry.count += 1
                entry.new = entry.new or match.is_new
                entry.first_ms = min(entry.first_ms, event.timestamp_ms)
                entry.last_ms = max(entry.last_ms, event.timestamp_ms)
                if repository.severity(level) > repository.severity(entry.level):
                    entry.level = level
                if len(entry.examples) < repository.MAX_EXAMPLES:
                    entry.examples.append(message)
        except sources.SourceUnavailable as exc:
            unavailable.append(function)
            found.append(findings.source_unavailable(exc.source, exc.reason))
            continue
        checkpoints[function] = newest + 1
        per_function[function] = sum(s.count for (f, _), s in seen.items() if f == function)

    templates = {t.template_id: t.template for t in miner.templates()}
    updates = [
        repository.ClusterUpdate(
            function=function,
            template_id=template_id,
            template=templates.get(template_id, ""),
            level=entry.level,
            count=entry.count,
            first_seen=datetime.fromtimestamp(entry.first_ms / 1000, UTC),
            last_seen=datetime.fromtimestamp(entry.last_ms / 1000, UTC),
            examples=entry.examples,
        )
        for (function, template_id), entry in seen.items()
    ]
    new_templates = spikes = 0
    for (function, template_id), entry in seen.items():
        labels = {"function": function, "level": entry.level}
        template = templates.get(template_id, "")
        if entry.new and not first_run and entry.level in ALERTING_LEVELS:
            new_templates += 1
            found.append(
                Finding(
                    "new_log_template",
                    f"logs:new:{function}:{template_id}",
                    f"{function}: new {entry.level} log template ({entry.count}x): {template[:300]}",
                    "warning",
                    labels,
                    {
                        "template_id": template_id,
                        "example": entry.examples[0][:500] if entry.examples else "",
                    },
                    condition=False,
                )
            )
        key = f"{function}:{template_id}"
        baseline = baselines.get(key, {"mean": 0.0, "runs": 0})
        mean, runs = float(baseline.get("mean", 0.0)), int(baseline.get("runs", 0))
        if (
            runs >= BASELINE_MIN_RUNS
            and entry.count >= settings.spike_min_count
            and entry.count > settings.spike_factor * max(mean, 1.0)
        ):
            spikes += 1
            found.append(
                Finding(
                    "log_spike",
                    f"logs:spike:{function}:{template_id}",
                    f"{function}: {entry.count} lines of one template in a run, usually {mean:.1f}: "
                    f"{template[:300]}",
                    "warning",
                    labels,
                    {"template_id": template_id, "count": entry.count, "baseline": round(mean, 2)},
                )
            )
    _learn(baselines, seen, per_function)
    state = {"miner": miner.to_state(), "checkpoints": checkpoints, "baselines": baselines}
    with session_scope() as session:
        repository.merge_clusters(session, updates)
        # The commit point: a run that overlapped another fails here and its counts roll back.
        store.save(STATE, state, etag)
    ledger = findings.Ledger.load("logs")
    if ledger.reset_problem:
        found.append(state_reset_finding("log findings", ledger.reset_problem))
    counts = ledger.reconcile(found, time.time(), settings.finding_repeat_s)
    ledger.save()
    result = LogsRunResult(
        events=events,
        lines=lines,
        templates=len(templates),
        new_templates=new_templates,
        spikes=spikes,
        functions=per_function,
        unavailable=unavailable,
        state_reset=problem is not None,
        findings=counts,
    )
    logger.info("logs run", extra={"result": result.model_dump()})
    return result
