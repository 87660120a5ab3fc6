"""A local mock of the Slack Web API for the local stack, tests and benchmarks (stdlib
ThreadingHTTPServer). `make dev` starts one when no SLACK_BOT_TOKEN is set: alerts and AIOps
reports go through the real `slack_sdk` calls to it, and `GET <mock>/messages` shows what it got.

`slack_sdk.WebClient(base_url=server.base_url)` talks to it. It implements chat.postMessage,
chat.update, conversations.history and auth.test, checks Block Kit limits the way Slack
does (≤ 50 blocks, header ≤ 150 characters, section text ≤ 3000) and records every request.
Faults are programmed per request, in order: `fail_next("rate_limit", retry_after=1)`,
`"server_error"` (HTTP 500), `"drop"` (close the connection without an answer; with
`process=True` the message is posted first, as when a response is lost), `"ok_false"`
(HTTP 200 with `{"ok": false, "error": ...}`) and `"slow"` (answer after `delay` seconds).
`down("server_error")` makes every request fail that way until `up()`: an outage of any length.
File uploads (`files_upload_v2`): files.getUploadURLExternal, the upload URL it returns (bytes
kept in `uploads`) and files.completeUploadExternal, which shares the file in the channel as a
message whose text is the `initial_comment` (so conversations.history finds it); `shared_files()`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

FaultKind = str  # rate_limit | server_error | drop | ok_false | slow


@dataclass
class Fault:
    kind: FaultKind
    method: str | None = None  # only requests to this API method; None: any
    retry_after: int = 1
    error: str = "channel_not_found"
    delay: float = 0.0
    process: bool = False


@dataclass
class Request:
    method: str
    payload: dict[str, Any]
    authorization: str | None
    fault: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    updates: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


def _block_errors(blocks: list[dict[str, Any]]) -> list[str]:
    errors = []
    if len(blocks) > 50:
        errors.append(f"must provide at most 50 blocks [{len(blocks)}]")
    for i, block in enumerate(blocks):
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "header" and len(text) > 150:
            errors.append(f"header text must be at most 150 characters [json-pointer:/blocks/{i}/text]")
        if block.get("type") == "section" and len(text) > 3000:
            errors.append(f"section text must be at most 3000 characters [json-pointer:/blocks/{i}/text]")
        for element in block.get("elements") or []:
            if len(element.get("text", "")) > 3000:
                errors.append(f"context text too long [json-pointer:/blocks/{i}]")
    return errors


class MockSlack:
    """Start with `with MockSlack() as slack:`; `slack.base_url` ends with `/api/`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104
        self.requests: list[Request] = []
        self.messages: list[Message] = []
        self._faults: deque[Fault] = deque()
        self._outage: Fault | None = None
        self._lock = threading.Lock()
        self._counter = 0
        self._channel_ids: dict[str, str] = {}
        self.uploads: dict[str, bytes] = {}
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mock-slack", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        port = self._server.server_address[1]
        return f"http://{self.host}:{port}/api/"

    def start(self) -> MockSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MockSlack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- programming and inspection ----------------------------------------------------
    def fail_next(self, kind: FaultKind, count: int = 1, **options: Any) -> None:
        with self._lock:
            for _ in range(count):
                self._faults.append(Fault(kind, **options))

    def down(self, kind: FaultKind = "server_error", **options: Any) -> None:
        """Every request fails with `kind` (after any programmed faults) until `up()`."""
        with self._lock:
            self._outage = Fault(kind, **options)

    def up(self) -> None:
        with self._lock:
            self._outage = None

    def channel_id(self, channel: str) -> str:
        """The id this server gives a channel name (ids map to themselves)."""
        with self._lock:
            return self._channel_id(channel)

    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "chat.postMessage" and r.fault is None]

    def shared_files(self) -> list[Message]:
        """Messages that shared an uploaded file (files.completeUploadExternal)."""
        return [m for m in self.messages if m.files]

    def transcript(self) -> dict[str, Any]:
        """What a person would have seen in Slack: every message (with its updates and shared
        files) in order; `GET /messages` answers this."""
        with self._lock:
            return {
                "messages": [
                    {
                        "channel": m.channel,
                        "ts": m.ts,
                        "text": m.text,
                        "blocks": m.blocks,
                        "updates": len(m.updates),
                        **({"files": m.files} if m.files else {}),
                    }
                    for m in self.messages
                ]
            }

    def calls(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self.uploads.clear()
            self._faults.clear()
            self._outage = None

    # --- internals ---------------------------------------------------------------------
    def _channel_id(self, channel: str) -> str:
        if channel and channel[0] in "CGD" and channel[1:].isalnum() and channel.isupper():
            return channel
        if channel not in self._channel_ids:
            self._channel_ids[channel] = f"C{len(self._channel_ids) + 1:08d}"
        return self._channel_ids[channel]

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in list(self._faults):
                if fault.method in (None, method):
                    self._faults.remove(fault)
                    return fault
            if self._outage is not None and self._outage.method in (None, method):
                return self._outage
        return None

    def _next_ts(self) -> str:
        with self._lock:
            self._counter += 1
            return f"{int(time.time())}.{self._counter:06d}"

    def _api(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team": "lotabots-test", "user": "alerts-bot", "bot_id": "B0000001"}
        if method == "chat.postMessage":
            blocks = payload.get("blocks") or []
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            errors = _block_errors(blocks)
            if errors:
                return {"ok": False, "error": "invalid_blocks", "errors": errors}
            if not payload.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            with self._lock:
                channel = self._channel_id(str(payload["channel"]))
            message = Message(
                channel=channel,
                ts=self._next_ts(),
                text=str(payload.get("text", "")),
                blocks=blocks,
                metadata=payload.get("metadata"),
            )
            with self._lock:
                self.messages.append(message)
            return {"ok": True, "channel": channel, "ts": message.ts, "message": {"text": message.text}}
        if method == "chat.update":
            blocks = payload.get("blocks") or []
            errors = _block_errors(blocks)
            if errors:
                return {"ok": False, "error": "invalid_blocks", "errors": errors}
            with self._lock:
                found = next(
                    (
                        m
                        for m in self.messages
                        if m.channel == payload.get("channel") and m.ts == payload.get("ts")
                    ),
                    None,
                )
                if found is None:
                    return {"ok": False, "error": "message_not_found"}
                found.updates.append({"text": payload.get("text"), "blocks": blocks})
                found.text, found.blocks = str(payload.get("text", "")), blocks
            return {"ok": True, "channel": found.channel, "ts": found.ts, "text": found.text}
        if method == "files.getUploadURLExternal":
            if not payload.get("filename") or not str(payload.get("length", "")).isdigit():
                return {"ok": False, "error": "invalid_arguments"}
            with self._lock:
                self._counter += 1
                file_id = f"F{self._counter:08d}"
            port = self._server.server_address[1]
            upload_url = f"http://{self.host}:{port}/upload/{file_id}"
            return {"ok": True, "upload_url": upload_url, "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = payload.get("files") or "[]"
            files = json.loads(files) if isinstance(files, str) else files
            with self._lock:
                missing = [f.get("id") for f in files if f.get("id") not in self.uploads]
            if not files or missing:
                return {"ok": False, "error": "file_not_found"}
            if not payload.get("channel_id"):
                return {"ok": True, "files": files}
            with self._lock:
                channel = self._channel_id(str(payload["channel_id"]))
            message = Message(
                channel=channel,
                ts=self._next_ts(),
                text=str(payload.get("initial_comment", "")),
                blocks=[],
                metadata=None,
                files=[
                    {"id": f["id"], "title": f.get("title"), "size": len(self.uploads[f["id"]])}
                    for f in files
                ],
            )
            with self._lock:
                self.messages.append(message)
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "conversations.history":
            channel = str(payload.get("channel", ""))
            oldest = float(payload.get("oldest") or 0)
            with_metadata = str(payload.get("include_all_metadata", "")) in ("1", "true", "True")
            with self._lock:
                found_messages = [
                    {
                        "type": "message",
                        "ts": m.ts,
                        "text": m.text,
                        **({"metadata": m.metadata} if with_metadata and m.metadata else {}),
                    }
                    for m in reversed(self.messages)
                    if m.channel == channel and float(m.ts) >= oldest
                ]
            return {"ok": True, "messages": found_messages, "has_more": False}
        return {"ok": False, "error": "unknown_method"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path.split("?")[0].rstrip("/") in ("", "/messages"):
                    self._answer(200, mock.transcript())
                else:
                    self._answer(404, {"ok": False, "error": "unknown_path"})

            def do_POST(self) -> None:
                method = self.path.split("?")[0].rsplit("/", 1)[-1]
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.startswith("/upload/"):
                    data = self.rfile.read(length) if length else b""
                    upload_fault = mock._take_fault("upload")
                    with mock._lock:
                        mock.requests.append(
                            Request(
                                "upload",
                                {"file_id": method, "bytes": len(data)},
                                None,
                                upload_fault.kind if upload_fault else None,
                            )
                        )
                        if upload_fault is None:
                            mock.uploads[method] = data
                    if upload_fault is None:
                        self._answer(200, {"ok": True})
                    else:
                        self._answer(500, {"ok": False, "error": "internal_error"})
                    return
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                content_type = self.headers.get("Content-Type", "")
                if "json" in content_type:
                    payload = json.loads(raw) if raw else {}
                else:
                    payload = {k: v[-1] for k, v in parse_qs(raw).items()}
                fault = mock._take_fault(method)
                request = Request(
                    method, payload, self.headers.get("Authorization"), fault.kind if fault else None
                )
                with mock._lock:
                    mock.requests.append(request)
                if fault is None:
                    self._answer(200, mock._api(method, payload))
                elif fault.kind == "rate_limit":
                    self._answer(
                        429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)}
                    )
                elif fault.kind == "server_error":
                    self._answer(500, {"ok": False, "error": "internal_error"})
                elif fault.kind == "ok_false":
                    self._answer(200, {"ok": False, "error": fault.error})
                elif fault.kind == "slow":
                    time.sleep(fault.delay)
                    self._answer(200, mock._api(method, payload))
                elif fault.kind == "drop":
                    if fault.process:
                        mock._api(method, payload)
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self._answer(400, {"ok": False, "error": f"unknown fault {fault.kind}"})

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
