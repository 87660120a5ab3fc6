"""Block Kit rendering within Slack's limits and clean truncation."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from lotabots.alerts.slack import (
    HEADER_LIMIT,
    MAX_BLOCKS,
    SECTION_LIMIT,
    escape,
    render,
    retry_after_seconds,
    truncate,
)


def _alert(i: int, **annotations: str) -> dict[str, Any]:
    return {
        "id": f"id{i}",
        "fingerprint": f"{i:064d}",
        "labels": {"alertname": "Flood", "instance": f"i-{i}"},
        "annotations": annotations,
        "severity": "warning",
        "starts_at": "2026-11-25T10:00:00+00:00",
        "ends_at": None,
        "acknowledged_by": None,
    }


def _payload(firing: list[dict[str, Any]], total: int, **extra: Any) -> dict[str, Any]:
    return {
        "notification_id": "n1",
        "kind": "firing",
        "receiver": "ops",
        "group_labels": {"alertname": "Flood"},
        "counts": {"firing": total, "resolved": 0, "acknowledged": 0},
        "firing": firing,
        "resolved": [],
        **extra,
    }


def test_short_text_is_untouched() -> None:
    assert truncate("hello", 10) == "hello"


def test_truncation_cuts_at_a_word_and_adds_an_ellipsis() -> None:
    text = "alpha beta gamma delta " * 20
    cut = truncate(text, 50)
    assert len(cut) <= 50 and cut.endswith("…")
    assert cut[:-1].rstrip() == cut[:-1] and text.startswith(cut[:-1])
    assert cut[:-1].split(" ")[-1] in {"alpha", "beta", "gamma", "delta"}  # no half word


def test_truncation_never_splits_an_escape_or_a_combining_mark() -> None:
    escaped = escape("a" * 45 + " <b>")  # "... &lt;b&gt;"
    cut = truncate(escaped, 49)
    assert "&l…" not in cut and not cut[:-1].endswith("&") and cut.endswith("…")
    combining = "x" * 8 + "e\u0301" * 10
    body = truncate(combining, 12)[:-1]
    assert combining.startswith(body)
    assert not unicodedata.combining(combining[len(body)])  # cut before a base character


def test_truncation_does_not_leave_an_open_code_block() -> None:
    cut = truncate("log: ```" + "x " * 100 + "```", 60)
    assert cut.count("```") % 2 == 0


def test_mrkdwn_control_characters_are_escaped() -> None:
    assert escape("<@U1> & <!here>") == "&lt;@U1&gt; &amp; &lt;!here&gt;"


def test_flood_summary_lists_the_first_alerts_and_counts_the_rest() -> None:
    text, blocks = render(_payload([_alert(i) for i in range(10)], 10_000))
    assert "[FIRING:10000] Flood" in blocks[0]["text"]["text"]
    assert "10,000" in text
    assert any("9,990 more firing" in b["elements"][0]["text"] for b in blocks if b["type"] == "context")
    assert len(blocks) <= MAX_BLOCKS


def test_huge_annotations_and_labels_respect_every_limit() -> None:
    huge = _alert(1, summary="s" * 10_000, description="word " * 20_000, runbook="r" * 5000)
    payload = _payload([huge] * 40, 40, group_labels={"alertname": "A" * 400, "team": "t" * 400})
    payload["resolved"] = [huge] * 40
    payload["counts"]["resolved"] = 40
    text, blocks = render(payload)
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= HEADER_LIMIT and blocks[0]["text"]["text"].endswith("…")
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SECTION_LIMIT
        for element in block.get("elements", []):
            assert len(element["text"]) <= 3000
    assert len(text) <= 3000
    assert blocks[-1]["type"] == "context" and "n1" in blocks[-1]["elements"][0]["text"]


def test_resolved_header() -> None:
    payload = _payload([], 0, kind="resolved")
    payload["counts"]["resolved"] = 2
    payload["resolved"] = [_alert(1), _alert(2)]
    _, blocks = render(payload)
    assert blocks[0]["text"]["text"].startswith("[RESOLVED:2] Flood")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "30"}, 30), ({"retry-after": ["7"]}, 7), ({}, None), ({"Retry-After": "soon"}, None)],
)
def test_retry_after_header(headers: dict[str, Any], expected: int | None) -> None:
    assert retry_after_seconds(headers) == expected
