"""The local stack's default runtime: each function in worker processes of its own, so that one
slow invocation never stalls another function, each invocation's logs stay its own, and a
crashed worker fails only its invocation (then is replaced), as in Lambda."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import runtime
from devstack.gateway import Gateway, GatewayServer
from devstack.workers import FunctionError, WorkerFunction
from lotabots import topology

# Test-only handlers. `wait` blocks until the file named in the event appears (or 30 s pass), so
# a test holds an invocation for exactly as long as it needs; `crash` ends the process as a
# segfault or an out-of-memory kill would; `proxy` answers like an API function.
HANDLERS = textwrap.dedent(
    """
    import os, time
    from lotabots.observability import logger

    def lambda_handler(event, context):
        action = event.get("action", "echo")
        logger.warning("handled", extra={"action": action, "request": context.aws_request_id})
        if action == "wait":
            deadline = time.monotonic() + 30
            while not os.path.exists(event["until"]) and time.monotonic() < deadline:
                time.sleep(0.01)
        if action == "crash":
            os._exit(3)
        if action == "raise":
            raise Exception(event.get("message", "boom"))
        if action == "unserialisable":
            return {"when": object()}
        if "httpMethod" in event:
            return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                    "body": '{"pid": %d}' % os.getpid()}
        return {"pid": os.getpid(), "service": os.environ["POWERTOOLS_SERVICE_NAME"], "echo": event}
    """
)


@pytest.fixture
def functions_root(tmp_path: Path) -> Path:
    for name in ("documents", "aiops", "alert_flush"):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "app.py").write_text(HANDLERS)
    return tmp_path


@pytest.fixture
def make_function(functions_root: Path) -> Iterator[Callable[..., WorkerFunction]]:
    made: list[WorkerFunction] = []

    def _make(name: str, max_workers: int = 1) -> WorkerFunction:
        function = WorkerFunction(
            topology.function(name), "us-east-1", max_workers=max_workers, root=functions_root
        )
        made.append(function)
        return function

    yield _make
    for function in made:
        function.close(grace_s=1)


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def test_a_blocked_function_does_not_stall_the_gateway_routes_of_other_functions(
    make_function: Callable[..., WorkerFunction], tmp_path: Path
) -> None:
    """While one documents invocation is held, /health (aiops) answers at once through the HTTP
    gateway, many times; the held request completes when released."""
    documents, aiops = make_function("documents"), make_function("aiops")
    registry = runtime.Registry(functions={"documents": documents, "aiops": aiops})
    server = GatewayServer(("127.0.0.1", 0), Gateway(registry, authorizer=None))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    release = tmp_path / "release"
    try:
        aiops.invoke({"action": "echo"})  # warm, so the figures below are not a cold start
        held, outcome = _in_thread(lambda: documents.invoke({"action": "wait", "until": str(release)}))
        deadline = time.monotonic() + 10
        while not documents.worker_pids and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the documents worker is now inside its handler
        url = f"http://127.0.0.1:{server.server_port}/health"
        timings = []
        with httpx.Client(trust_env=False, timeout=10) as http:
            for _ in range(10):
                started = time.perf_counter()
                assert http.get(url).status_code == 200
                timings.append(time.perf_counter() - started)
        assert held.is_alive() and not outcome, "the documents invocation should still be held"
        assert max(timings) < 2.0, timings
        release.touch()
        held.join(10)
        assert outcome and outcome[0]["echo"]["action"] == "wait"
    finally:
        release.touch()
        server.shutdown()
        server.server_close()


def test_each_worker_logs_as_its_function_and_reports_only_its_own_lines(
    make_function: Callable[..., WorkerFunction], records: list[runtime.InvocationRecord]
) -> None:
    """POWERTOOLS_SERVICE_NAME is the function's name; each record carries that invocation's
    lines (with its request id) and nothing from the other function running at the same time."""
    documents, aiops = make_function("documents"), make_function("aiops")
    first, out = _in_thread(lambda: documents.invoke({"action": "echo"}))
    assert aiops.invoke({"action": "echo"})["service"] == "aiops"
    first.join(30)
    assert out[0]["service"] == "documents"
    assert {r.function for r in records} == {"documents", "aiops"}
    for record in records:
        logs = [json.loads(line) for line in record.output]
        assert logs and all(log["service"] == record.function for log in logs)
        assert all(log["request"] == record.request_id for log in logs)
        assert not record.error and record.duration_ms >= 0


def test_a_crashed_worker_fails_its_invocation_and_is_replaced(
    make_function: Callable[..., WorkerFunction], records: list[runtime.InvocationRecord]
) -> None:
    """A worker that dies mid-invocation fails it like Lambda's Runtime.ExitError; the next
    invocation starts a fresh worker."""
    documents = make_function("documents")
    first_pid = documents.invoke({})["pid"]
    with pytest.raises(FunctionError) as failure:
        documents.invoke({"action": "crash"})
    assert failure.value.error_type == "Runtime.ExitError"
    assert "exit code 3" in str(failure.value)
    assert records[-1].error
    again = documents.invoke({})
    assert again["pid"] != first_pid
    assert documents.worker_pids == [again["pid"]]


def test_a_raised_exception_reaches_the_trigger_with_its_message_and_remote_traceback(
    make_function: Callable[..., WorkerFunction], records: list[runtime.InvocationRecord]
) -> None:
    """The gateway recognises an authorizer's `Unauthorized` by the message; logged tracebacks
    show where the function raised; the worker stays warm."""
    documents = make_function("documents")
    pid = documents.invoke({})["pid"]
    with pytest.raises(FunctionError) as failure:
        documents.invoke({"action": "raise", "message": "Unauthorized"})
    assert str(failure.value) == "Unauthorized" and failure.value.error_type == "Exception"
    assert "lambda_handler" in str(failure.value.__cause__)
    with pytest.raises(FunctionError) as marshal:
        documents.invoke({"action": "unserialisable"})
    assert marshal.value.error_type == "Runtime.MarshalError"
    assert [r.error for r in records] == [False, True, True]
    assert documents.invoke({})["pid"] == pid


def test_an_import_error_fails_the_invocation_as_an_init_error(
    make_function: Callable[..., WorkerFunction], functions_root: Path
) -> None:
    """A handler module that cannot be imported fails each invocation (Lambda's init error)
    and leaves no process behind."""
    (functions_root / "functions" / "documents" / "app.py").write_text("raise RuntimeError('no import')\n")
    documents = make_function("documents")
    with pytest.raises(FunctionError) as failure:
        documents.invoke({})
    assert failure.value.error_type == "Runtime.ImportModuleError"
    assert "no import" in str(failure.value)
    assert documents.worker_pids == []


def test_the_pool_runs_concurrent_invocations_up_to_its_size_and_reserved_concurrency(
    make_function: Callable[..., WorkerFunction], tmp_path: Path
) -> None:
    """Two held invocations of one function run in two workers; a function whose reserved
    concurrency is 1 (alert_flush) never gets a second one, the call waits instead."""
    release = tmp_path / "release"
    documents = make_function("documents", max_workers=2)
    flush = make_function("alert_flush", max_workers=2)
    assert flush.max_workers == 1
    calls = [
        _in_thread(lambda: documents.invoke({"action": "wait", "until": str(release)})) for _ in range(2)
    ]
    waits = [_in_thread(lambda: flush.invoke({"action": "wait", "until": str(release)})) for _ in range(2)]
    deadline = time.monotonic() + 20
    while (len(documents.worker_pids) < 2 or not flush.worker_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # time enough for a second flush worker, were one allowed
    assert len(documents.worker_pids) == 2
    assert len(flush.worker_pids) == 1
    release.touch()
    for thread, outcome in calls + waits:
        thread.join(20)
        assert not isinstance(outcome[0], Exception), outcome
    assert len({outcome[0]["pid"] for _thread, outcome in calls}) == 2


def test_closing_stops_idle_and_busy_workers(
    make_function: Callable[..., WorkerFunction], tmp_path: Path
) -> None:
    """Stopping the stack leaves no worker behind, even one stuck in an invocation."""
    idle, busy = make_function("aiops"), make_function("documents")
    idle_pid = idle.invoke({})["pid"]
    held, outcome = _in_thread(lambda: busy.invoke({"action": "wait", "until": str(tmp_path / "never")}))
    deadline = time.monotonic() + 20
    while not busy.worker_pids and time.monotonic() < deadline:
        time.sleep(0.05)
    (busy_pid,) = busy.worker_pids
    time.sleep(0.2)
    idle.close(grace_s=1)
    busy.close(grace_s=0.5)
    held.join(10)
    assert isinstance(outcome[0], FunctionError) and outcome[0].error_type == "Runtime.Stopped"
    assert not _alive(idle_pid) and not _alive(busy_pid)
    with pytest.raises(FunctionError):
        idle.invoke({})
