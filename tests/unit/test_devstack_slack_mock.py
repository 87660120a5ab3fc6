"""The local stack's mock Slack: what slack_sdk sends it is what `GET /messages` shows a person."""

from __future__ import annotations

import json
import urllib.request

from slack_sdk import WebClient

from devstack.slack_mock import MockSlack


def test_messages_and_shared_files_are_listed_in_order() -> None:
    """A posted message and a file shared with files_upload_v2 both appear, oldest first."""
    with MockSlack() as slack:
        client = WebClient(token="xoxb-local-mock", base_url=slack.base_url)
        client.chat_postMessage(channel="#alerts", text="GpuHot firing")
        client.files_upload_v2(
            channel="C0AIOPS01",
            content=b"\x89PNG chart",
            filename="forecast.png",
            initial_comment="daily report",
        )
        with urllib.request.urlopen(slack.base_url.removesuffix("/api/") + "/messages") as response:
            transcript = json.loads(response.read())
    texts = [m["text"] for m in transcript["messages"]]
    assert texts == ["GpuHot firing", "daily report"]
    assert "files" not in transcript["messages"][0] and transcript["messages"][1]["files"]
