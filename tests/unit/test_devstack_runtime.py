"""The local runtime reports every invocation to its listeners with what the function printed,
as the Lambda service hands a function's output to CloudWatch Logs (the AIOps functions read it)."""

from __future__ import annotations

from typing import Any

import pytest

from devstack import runtime
from lotabots import topology
from lotabots.observability import logger


def _function(handler: runtime.Handler) -> runtime.LocalFunction:
    spec = topology.Function("probe", "worker", "test function")
    return runtime.LocalFunction(spec, handler)


def test_listener_receives_log_lines_and_printed_metrics(records: list[runtime.InvocationRecord]) -> None:
    """Powertools log lines and printed EMF blobs of one invocation reach the listener, in order."""

    def handler(event: dict[str, Any], context: Any) -> str:
        logger.warning("probe ran", extra={"n": event["n"]})
        print('{"_aws": {"CloudWatchMetrics": []}}')
        return "ok"

    assert _function(handler).invoke({"n": 3}) == "ok"
    (record,) = records
    assert record.function == "probe" and not record.error
    assert any('"probe ran"' in line and '"n":3' in line.replace(" ", "") for line in record.output)
    assert record.output[-1].startswith('{"_aws"')
    assert record.duration_ms >= 0 and record.request_id


def test_failed_invocation_is_reported_as_error_and_still_raises(
    records: list[runtime.InvocationRecord],
) -> None:
    """A handler that raises is recorded with error=True; the exception reaches the trigger."""

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _function(handler).invoke({})
    assert [r.error for r in records] == [True]


def test_a_failing_listener_never_fails_the_invocation() -> None:
    """Telemetry is best effort: a listener that raises does not change the invocation's outcome."""

    def broken(record: runtime.InvocationRecord) -> None:
        raise ValueError("listener bug")

    runtime.INVOCATION_LISTENERS.append(broken)
    try:
        assert _function(lambda event, context: 42).invoke({}) == 42
    finally:
        runtime.INVOCATION_LISTENERS.remove(broken)
