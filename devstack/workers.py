"""Each function in worker processes of its own, as Lambda runs each function in containers of
its own (the local stack's default runtime).

Why processes: in one process every function shares the Powertools Logger, Metrics and
module-level resolvers, so invocations had to run one at a time and one slow request (a large
PDF being ingested, a slow schedule) stalled every route. A worker process has its own
singletons (and `POWERTOOLS_SERVICE_NAME` = the function's name), so functions run side by side
and each invocation's logs and metrics stay its own.

Like a Lambda container, a worker is started on the first invocation that finds no idle one
(its import is the cold start), runs one invocation at a time and stays warm afterwards. A
function gets at most `max_workers` of them (its reserved concurrency, if lower): further
invocations wait for one to be free. A worker that dies fails its invocation like a Lambda
runtime error (`Runtime.ExitError`) and is replaced by the next invocation. The parent keeps
the `Invocable` contract: `invoke(event)` returns the result or raises `FunctionError`, and the
invocation listeners fire here with the lines the worker captured (`devstack/worker.py` has the
wire protocol).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from devstack import runtime
from lotabots import topology

log = logging.getLogger("devstack.workers")

STOP_GRACE_S = 3.0


class RemoteTraceback(Exception):
    """The worker's traceback, chained to `FunctionError` so that logged tracebacks show it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class FunctionError(Exception):
    """A failed invocation, as the Lambda runtime reports it: `str()` is the errorMessage (the
    gateway recognises an authorizer's `Unauthorized` by it), `error_type` the errorType."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type

    @classmethod
    def from_reply(cls, error: Mapping[str, Any]) -> FunctionError:
        exc = cls(str(error.get("errorType") or "Error"), str(error.get("errorMessage") or ""))
        trace = "".join(error.get("stackTrace") or ())
        if trace:
            exc.__cause__ = RemoteTraceback("\n" + trace)
        return exc


class WorkerDied(Exception):
    """The worker process ended (or closed its reply pipe) before it answered."""


class Worker:
    """One worker process and its two pipes."""

    def __init__(self, spec: topology.Function, env: Mapping[str, str], root: Path) -> None:
        self.name = spec.name
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-m", "devstack.worker", spec.name, str(write_fd), str(root)],
                cwd=runtime.ROOT,  # where `devstack` is importable; `root` holds the functions
                env=dict(env),
                stdin=subprocess.PIPE,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the worker holds the only write end: EOF here means it is gone
        self._replies: IO[bytes] = os.fdopen(read_fd, "rb")
        entry = {
            "name": spec.name,
            "kind": spec.kind,
            "description": spec.description,
            "memory_mb": spec.memory_mb,
            "timeout_s": spec.timeout_s,
            "handler": spec.handler,
        }
        self._write(entry)  # the first line: which function it is

    @property
    def pid(self) -> int:
        return self.process.pid

    def _write(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # read() reports how it ended

    def read(self) -> dict[str, Any]:
        line = self._replies.readline()
        if not line:
            code = self.process.wait()
            raise WorkerDied(f"exit code {code}" if code >= 0 else f"signal {-code}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self._write(message)
        return self.read()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Close its input (an idle worker exits at once), then terminate, then kill."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._replies.close()


class WorkerFunction:
    """One function served by up to `max_workers` worker processes, started lazily."""

    def __init__(
        self,
        spec: topology.Function,
        region: str,
        *,
        max_workers: int = 1,
        root: Path = runtime.ROOT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.region = region
        self.root = root
        limit = spec.reserved_concurrency or max_workers
        self.max_workers = max(1, min(max_workers, limit))
        self._env = env
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()
        self._starting = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def worker_pids(self) -> list[int]:
        with self._cond:
            return sorted(worker.pid for worker in self._all)

    def worker_env(self) -> dict[str, str]:
        """The stack's environment when the worker starts, plus the function's own variables."""
        env = dict(os.environ if self._env is None else self._env)
        env.update(self.spec.extra_env)
        env["POWERTOOLS_SERVICE_NAME"] = self.spec.name
        env["PYTHONUNBUFFERED"] = "1"  # its console lines appear when printed, and survive a crash
        return env

    # Invocations ----------------------------------------------------------------------

    def invoke(self, event: dict[str, Any]) -> Any:
        request_id = str(uuid.uuid4())
        started_at, started = time.time(), time.perf_counter()
        reply: dict[str, Any] = {}
        try:
            reply = self._call({"op": "invoke", "event": event, "request_id": request_id})
            if not reply.get("ok"):
                raise FunctionError.from_reply(reply.get("error") or {})
            return reply.get("result")
        finally:
            if runtime.INVOCATION_LISTENERS:
                runtime.notify(
                    runtime.InvocationRecord(
                        function=self.name,
                        request_id=request_id,
                        started_at=started_at,
                        duration_ms=float(reply.get("duration_ms") or (time.perf_counter() - started) * 1000),
                        error=not reply.get("ok"),
                        output=tuple(reply.get("output") or ()),
                    )
                )

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        worker = self._acquire()
        healthy = False
        try:
            reply = worker.request(message)
            healthy = True
            return reply
        except WorkerDied as exc:
            if self._closed:
                raise FunctionError("Runtime.Stopped", "the local stack is stopping") from None
            log.error(
                "%s: worker %d died during an invocation (%s); the next one starts anew",
                self.name,
                worker.pid,
                exc,
            )
            raise FunctionError("Runtime.ExitError", f"Runtime exited with error: {exc}") from None
        finally:
            self._release(worker, healthy)

    # The pool -------------------------------------------------------------------------

    def _acquire(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise FunctionError("Runtime.Stopped", "the local stack is stopping")
                if self._idle:
                    return self._idle.pop()  # the most recently used: the warmest
                if len(self._all) + self._starting < self.max_workers:
                    self._starting += 1
                    break
                self._cond.wait()
        try:
            worker = self._start()
        finally:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
        with self._cond:
            closed = self._closed
            if not closed:
                self._all.add(worker)
        if closed:
            worker.stop()
            raise FunctionError("Runtime.Stopped", "the local stack is stopping")
        return worker

    def _start(self) -> Worker:
        """A new worker, once it has imported the handler (Lambda's INIT phase)."""
        started = time.perf_counter()
        worker = Worker(self.spec, self.worker_env(), self.root)
        try:
            ready = worker.read()
        except WorkerDied as exc:
            worker.stop()
            raise FunctionError("Runtime.ExitError", f"Runtime exited during init: {exc}") from None
        if not ready.get("ready"):
            worker.stop()
            error = FunctionError.from_reply(ready.get("error") or {})
            log.error("%s could not start: %s", self.name, error, exc_info=error)
            raise error
        log.info(
            "%s: worker %d ready (init %.0f ms)",
            self.name,
            worker.pid,
            (time.perf_counter() - started) * 1000,
        )
        return worker

    def _release(self, worker: Worker, healthy: bool) -> None:
        with self._cond:
            keep = healthy and not self._closed
            if keep:
                self._idle.append(worker)
            else:
                self._all.discard(worker)
            self._cond.notify()
        if not keep:
            worker.stop()

    def close(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop every worker (a busy one gets `grace_s` to finish, then it is terminated)."""
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        threads = [threading.Thread(target=w.stop, args=(grace_s,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def start_all(
    specs: Iterable[topology.Function], region: str, *, max_workers: int, root: Path = runtime.ROOT
) -> runtime.Registry:
    """A registry of worker-backed functions; nothing starts until a function is first invoked
    (a handler that fails to import fails its invocations, as a Lambda init error does)."""
    registry = runtime.Registry()
    for spec in specs:
        reason = runtime.unavailable(spec, root)
        if reason is not None:
            registry.failures[spec.name] = reason
            continue
        registry.functions[spec.name] = WorkerFunction(spec, region, max_workers=max_workers, root=root)
    return registry
