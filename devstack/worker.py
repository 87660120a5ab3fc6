"""One function's warm container: `python -m devstack.worker NAME REPLY_FD ROOT` (started by
`workers`).

Reads the function's topology entry (a JSON line) from stdin, imports
`ROOT/functions/NAME/app.py` once, answers `{"ready": true}` (or the import error) and then
serves one request at a time until its standard input closes:

    {"op": "invoke", "event": {...}, "request_id": "..."}
        -> {"ok": true, "result": ..., "output": [...], "duration_ms": 12.3}
        -> {"ok": false, "error": {"errorType", "errorMessage", "stackTrace"}, "output": [...], ...}

Requests arrive as JSON lines on stdin; replies go to REPLY_FD, never to stdout: stdout and
stderr are the function's console (shared with the stack's), and what the function prints
during an invocation is also sent back as `output` (its Powertools log lines and EMF blobs).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import IO, Any

from devstack import runtime
from lotabots import topology


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """An error as the Lambda runtime reports it."""
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _send(reply: IO[bytes], message: dict[str, Any]) -> None:
    reply.write(json.dumps(message).encode() + b"\n")
    reply.flush()


def _invoke(function: runtime.LocalFunction, request: dict[str, Any]) -> dict[str, Any]:
    context = function.new_context()
    context.aws_request_id = str(request.get("request_id") or context.aws_request_id)
    started = time.perf_counter()
    answer: dict[str, Any]
    with runtime.captured_output() as tee:
        try:
            result = function.handler(request["event"], context)
        except Exception as exc:
            answer = {"ok": False, "error": _error(exc)}
        else:
            try:  # what Lambda cannot turn into JSON fails the invocation
                answer = {"ok": True, "result": json.loads(json.dumps(result))}
            except (TypeError, ValueError) as exc:
                answer = {"ok": False, "error": _error(exc, "Runtime.MarshalError")}
    answer["duration_ms"] = (time.perf_counter() - started) * 1000
    answer["output"] = [line for line in tee.captured.getvalue().splitlines() if line.strip()]
    return answer


def serve(spec: topology.Function, root: Path, reply: IO[bytes], requests: IO[bytes]) -> int:
    try:
        module = runtime.load_module(spec.name, root)
        handler = getattr(module, spec.handler.rpartition(".")[2])
    except Exception as exc:
        _send(reply, {"ready": False, "error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    function = runtime.LocalFunction(spec, handler, module, os.environ.get("AWS_REGION", "us-east-1"))
    _send(reply, {"ready": True, "pid": os.getpid()})
    for line in iter(requests.readline, b""):
        _send(reply, _invoke(function, json.loads(line)))
    return 0


def main(argv: list[str]) -> int:
    # Ctrl-C in `make dev` reaches the whole process group; the stack stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # As the stack's own process does: handlers that emit no metric would print this every time.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    requests = sys.stdin.buffer
    spec = topology.Function(**json.loads(requests.readline()))
    if spec.name != argv[0]:
        raise SystemExit(f"expected the entry of {argv[0]!r}, got {spec.name!r}")
    with os.fdopen(int(argv[1]), "wb") as reply:
        return serve(spec, Path(argv[2]), reply, requests)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # As a Lambda container is frozen and dropped: no interpreter teardown (half a second of CPU
    # per worker, all of them at once when the stack stops). Every invocation already flushed
    # its metrics and committed its transactions.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
