"""No log call may pass a LogRecord attribute name as an `extra` key (issue 8, item 4).

`logger.info("...", extra={"created": n})` raises KeyError ("Attempt to overwrite 'created' in
LogRecord") inside logging, after whatever the caller already committed: alert_ingest failed
every EventBridge event that way and dead-lettered it. Tests ran at WARNING, so the INFO call
never built a record. This scan walks the source (AST) of everything that runs in Lambda or the
local stack and fails on such a key in an `extra={...}` / `extra=dict(...)` literal, and on a
keyword argument of that name to a logging method (Powertools' Logger merges `**kwargs` into
`extra`). Extras built at run time are covered by the worker handler tests, which log at DEBUG.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("functions", "layers", "devstack", "gpu_jobs", "bench", "infra")
LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
)
# Parameters of the logging methods themselves (not extras).
LOG_PARAMETERS = frozenset({"exc_info", "stack_info", "stacklevel", "extra"})
# What LogRecord.__init__ sets, plus what Formatter adds and Python 3.12 (Lambda) sets.
RESERVED = frozenset(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _literal_keys(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Dict):
        return [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return [kw.arg for kw in node.keywords if kw.arg]
    return []


def reserved_extras(source: str, filename: str = "<source>") -> Iterator[str]:
    """`file:line: key` for every reserved name used as a log extra in `source`."""
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "extra":
                for key in _literal_keys(keyword.value):
                    if key in RESERVED:
                        yield f"{filename}:{node.lineno}: extra key {key!r}"
        if isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS:
            for keyword in node.keywords:
                if keyword.arg and keyword.arg not in LOG_PARAMETERS and keyword.arg in RESERVED:
                    yield f"{filename}:{node.lineno}: keyword {keyword.arg!r}"


def _sources() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not {"cdk.out", "build", "node_modules", "__pycache__"} & set(path.parts):
                yield path


def test_the_reserved_names_include_the_ones_that_broke_ingest() -> None:
    assert {"created", "name", "msg", "args", "levelname", "module", "filename", "lineno"} <= RESERVED
    assert {"process", "thread", "message", "asctime", "taskName"} <= RESERVED


def test_the_scan_finds_every_form_of_the_mistake() -> None:
    source = """
logger.info("ingested", extra={"created": 1, "fine": 2})
log.warning("x", extra=dict(name="n"))
logger.info("kw", module="m")
logger.error("ok", exc_info=True, extra={"created_count": 1})
settings = ConfigDict(extra="forbid")
"""
    assert sorted(reserved_extras(source)) == [
        "<source>:2: extra key 'created'",
        "<source>:3: extra key 'name'",
        "<source>:4: keyword 'module'",
    ]


def test_no_log_call_in_the_code_base_uses_a_reserved_extra_key() -> None:
    scanned = list(_sources())
    assert len(scanned) > 50  # the walk really reached the code base
    found = [
        hit
        for path in scanned
        for hit in reserved_extras(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == [], "LogRecord attribute names used as log extras:\n" + "\n".join(found)
