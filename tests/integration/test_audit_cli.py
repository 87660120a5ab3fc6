"""`lotabots audit verify`: against the database and bucket, or a deployed API; exit 0 valid,
1 invalid (or not checkable), 2 usage error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lotabots import cli
from tests.support.audit import edit_in_place, run_anchor, seed

pytestmark = pytest.mark.usefixtures("db", "aws_env")


def test_a_valid_log_exits_0_with_a_readable_summary(capsys: pytest.CaptureFixture[str]) -> None:
    seqs = seed(3)
    run_anchor()
    seed(1, start=3)
    capsys.readouterr()  # the worker's metrics
    assert cli.main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"audit log VALID: 4 entries, head #{seqs[-1] + 1} ")
    assert "anchors: 1 in s3://lotabots-audit-anchors/audit-anchors/, 1 match" in out
    assert "entries not anchored yet: 1" in out


def test_json_output_is_the_api_result(capsys: pytest.CaptureFixture[str]) -> None:
    seed(2)
    run_anchor()
    capsys.readouterr()  # the worker's metrics
    assert cli.main(["audit", "verify", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is True and result["entries"] == 2 and result["anchors"]["matched"] == 1


def test_an_edited_row_exits_1_and_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    seqs = seed(3)
    run_anchor()
    edit_in_place(seqs[1], action="user.nothing_to_see")
    capsys.readouterr()  # the worker's metrics
    assert cli.main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "audit log INVALID" in out and f"first bad entry: #{seqs[1]}" in out
    assert f"entry_altered (entry #{seqs[1]})" in out and "anchor_mismatch" in out
    assert cli.main(["audit", "verify", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["first_bad_entry"] == seqs[1]


@pytest.mark.parametrize(
    "argv",
    [["audit"], ["audit", "verify", "--bogus"], ["audit", "check"], ["audit", "verify", "--api"]],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2


def test_api_mode_needs_a_token_and_an_http_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOTABOTS_ACCESS_TOKEN", raising=False)
    assert cli.main(["audit", "verify", "--api", "http://127.0.0.1:9"]) == 2
    assert "LOTABOTS_ACCESS_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("LOTABOTS_ACCESS_TOKEN", "token")
    assert cli.main(["audit", "verify", "--api", "file:///etc/passwd"]) == 2
    assert "http(s) URL" in capsys.readouterr().err


class _FakeApi(BaseHTTPRequestHandler):
    """Answers GET /audit/verify like the audit function: the canned answer for the token given."""

    answers: dict[str, tuple[int, Any]] = {}
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        type(self).seen.append((self.path, token))
        status, body = type(self).answers.get(
            token, (401, {"message": "authentication required", "code": "x"})
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/"
    finally:
        server.shutdown()
        server.server_close()
        _FakeApi.answers, _FakeApi.seen = {}, []


def test_api_mode_renders_the_api_answer(
    fake_api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lotabots.audit import service

    edit_seqs = seed(2)
    edit_in_place(edit_seqs[0], details={"forged": True})
    _FakeApi.answers = {
        "auditor-token": (200, json.loads(service.verify_log().model_dump_json())),
        "member-token": (403, {"message": "your role may not call this route", "code": "forbidden"}),
    }
    monkeypatch.setenv("LOTABOTS_ACCESS_TOKEN", "auditor-token")
    assert cli.main(["audit", "verify", "--api", fake_api]) == 1
    assert f"first bad entry: #{edit_seqs[0]}" in capsys.readouterr().out
    assert _FakeApi.seen == [("/api/audit/verify", "auditor-token")]

    monkeypatch.setenv("LOTABOTS_ACCESS_TOKEN", "member-token")
    assert cli.main(["audit", "verify", "--api", fake_api]) == 1
    assert "the API answered 403: your role may not call this route" in capsys.readouterr().err


def test_api_mode_reports_an_unreachable_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOTABOTS_ACCESS_TOKEN", "token")
    assert cli.main(["audit", "verify", "--api", "http://127.0.0.1:9"]) == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
