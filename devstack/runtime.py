"""Loads the functions' handler modules and invokes them as Lambda would, in this process.

Each `functions/<name>/app.py` is imported once under its own module name (one warm
container per function). Invocations run one at a time across the whole stack: in Lambda
every function has its own Powertools Logger, Metrics and resolver state, but here they
share the process's singletons (`lotabots.observability`, each module-level `app`), so two
concurrent invocations would mix each other's log keys (function name, request id,
correlation id), flush each other's metrics and race on the resolver's current event.
Serialising keeps every invocation's logs and metrics its own; triggers still run in
parallel (long polls, HTTP parsing, GPU worker processes are outside the lock).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lotabots import topology

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_ID = "123456789012"

Handler = Callable[[dict[str, Any], Any], Any]

# Re-entrant so that an in-process invocation made from inside a handler cannot deadlock.
_INVOCATION_LOCK = threading.RLock()

_log = logging.getLogger("devstack.runtime")


@dataclass(frozen=True)
class InvocationRecord:
    """What the Lambda service records about one invocation: the function's output lines (its
    Powertools JSON log lines and EMF metric blobs, as CloudWatch Logs would receive them), its
    duration and whether it failed. The local stack's telemetry turns these into CloudWatch Logs
    events and the `AWS/Lambda` metrics, so the AIOps functions read the same APIs as in AWS."""

    function: str
    request_id: str
    started_at: float  # epoch seconds
    duration_ms: float
    error: bool
    output: tuple[str, ...]


InvocationListener = Callable[[InvocationRecord], None]
# Called after every invocation, outside the invocation lock; a listener must return quickly
# (hand work to its own thread) and its failures never fail the invocation.
INVOCATION_LISTENERS: list[InvocationListener] = []


class _Tee(io.TextIOBase):
    """Writes through to the console and keeps a copy of what one invocation printed."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.captured = io.StringIO()

    def write(self, text: str) -> int:
        self.captured.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


@contextlib.contextmanager
def _captured_output() -> Any:
    """Capture stdout and the Powertools logger's stream for the duration of one invocation."""
    from lotabots.observability import logger

    tee = _Tee(sys.stdout)
    handler = logger.registered_handler
    previous = handler.setStream(tee) if isinstance(handler, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stdout(tee):
            yield tee
    finally:
        if previous is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous)


def _notify(record: InvocationRecord) -> None:
    for listener in list(INVOCATION_LISTENERS):
        try:
            listener(record)
        except Exception:
            _log.exception("invocation listener failed")


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as `context` (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id[:8]}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One function: its topology entry and its handler."""

    def __init__(
        self, spec: topology.Function, handler: Handler, module: Any = None, region: str = "us-east-1"
    ):
        self.spec = spec
        self.handler = handler
        self.module = module
        self.region = region

    @property
    def name(self) -> str:
        return self.spec.name

    def new_context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.spec.name,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            region=self.region,
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler; exceptions propagate like a failed invocation."""
        context = self.new_context()
        started_at, started = time.time(), time.perf_counter()
        failed = True
        tee: _Tee | None = None
        try:
            with _INVOCATION_LOCK, _captured_output() as tee:
                result = self.handler(event, context)
            failed = False
            return result
        finally:
            if INVOCATION_LISTENERS:
                lines = tee.captured.getvalue().splitlines() if tee is not None else []
                _notify(
                    InvocationRecord(
                        function=self.name,
                        request_id=context.aws_request_id,
                        started_at=started_at,
                        duration_ms=(time.perf_counter() - started) * 1000,
                        error=failed,
                        output=tuple(line for line in lines if line.strip()),
                    )
                )


def load_module(name: str, root: Path = ROOT) -> Any:
    """Import functions/<name>/app.py under a unique module name, once."""
    module_name = f"devstack_fn_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = root / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


@dataclass
class Registry:
    """The loaded functions, and why the others could not be loaded."""

    functions: dict[str, LocalFunction] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> LocalFunction | None:
        return self.functions.get(name)


def load_all(specs: Iterable[topology.Function], region: str, root: Path = ROOT) -> Registry:
    """Load every function's handler; a broken or missing one is reported, not fatal."""
    registry = Registry()
    for spec in specs:
        module_file, _, attribute = spec.handler.rpartition(".")
        if module_file != "app":
            registry.failures[spec.name] = f"unsupported handler {spec.handler!r} (expected app.<name>)"
            continue
        if not (root / spec.code_dir / "app.py").is_file():
            registry.failures[spec.name] = f"{spec.code_dir}/app.py does not exist"
            continue
        try:
            module = load_module(spec.name, root)
            handler = getattr(module, attribute)
        except Exception:
            registry.failures[spec.name] = traceback.format_exc(limit=-3).strip()
            continue
        registry.functions[spec.name] = LocalFunction(spec, handler, module, region)
    return registry
