"""Slack: Block Kit rendering within Slack's limits, the bot token and the Web API client.

Limits respected (https://api.slack.com/reference/block-kit): at most 50 blocks per message,
header text ≤ 150 characters, section text ≤ 3000. Long text is cut at a word boundary where
one is near, never inside an `&amp;`-style escape or before a combining mark, and ends with "…".
"""

from __future__ import annotations

import time
import unicodedata
from datetime import datetime
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    RateLimitErrorRetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from lotabots import config as settings_module
from lotabots.config import AlertSettings

MAX_BLOCKS = 50
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 3000
FALLBACK_TEXT_LIMIT = 3000
ANNOTATION_LIMIT = 1000  # per annotation inside an alert's section
ELLIPSIS = "…"
METADATA_EVENT_TYPE = "lotabots_alert_notification"
_PREFERRED_ANNOTATIONS = ("summary", "description", "message", "error", "reason")


def escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else a clean cut ending with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ELLIPSIS))]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # never leave half an escape such as "&am"
    while cut and unicodedata.combining(text[len(cut)]):
        cut = cut[:-1]  # keep a base character together with its combining marks
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= len(cut) - 40 and space > 0:
        cut = cut[:space]
    if cut.count("```") % 2:
        cut = cut[: cut.rfind("```")]  # an unclosed code block would swallow the ellipsis
    return cut.rstrip() + ELLIPSIS


def _when(iso: str | None) -> str:
    if not iso:
        return ""
    at = datetime.fromisoformat(iso)
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at.strftime('%Y-%m-%d %H:%M UTC')}>"


def _title(payload: dict[str, Any]) -> str:
    labels: dict[str, str] = payload.get("group_labels") or payload.get("common_labels") or {}
    if not labels:
        return payload.get("receiver", "alerts")
    name = labels.get("alertname")
    rest = " ".join(f"{k}={v}" for k, v in labels.items() if k != "alertname")
    return f"{name} {rest}".strip() if name else rest


def _alert_section(alert: dict[str, Any], status: str, group_labels: dict[str, str]) -> dict[str, Any]:
    labels: dict[str, str] = alert.get("labels") or {}
    annotations: dict[str, str] = alert.get("annotations") or {}
    icon = ":large_green_circle:" if status == "resolved" else ":red_circle:"
    head = f"{icon} *{escape(labels.get('alertname', alert.get('fingerprint', '')[:12]))}*"
    if alert.get("severity"):
        head += f" · `{escape(alert['severity'])}`"
    if alert.get("acknowledged_by"):
        head += " · acknowledged"
    lines = [head]
    ordered = [k for k in _PREFERRED_ANNOTATIONS if k in annotations] + sorted(
        k for k in annotations if k not in _PREFERRED_ANNOTATIONS
    )
    for name in ordered:
        value = escape(annotations[name].strip())
        if not value:
            continue
        lines.append(
            truncate(value if name in ("summary", "description") else f"*{name}:* {value}", ANNOTATION_LIMIT)
        )
    extra = [
        f"`{escape(k)}={escape(v)}`" for k, v in labels.items() if k != "alertname" and k not in group_labels
    ]
    if extra:
        lines.append(" ".join(extra))
    times = f"since {_when(alert.get('starts_at'))}"
    if status == "resolved" and alert.get("ends_at"):
        times += f" · resolved {_when(alert['ends_at'])}"
    lines.append(times)
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), SECTION_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, CONTEXT_LIMIT)}]}


def render(payload: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for one group notification."""
    counts = payload.get("counts") or {}
    firing_n = int(counts.get("firing", 0))
    resolved_n = int(counts.get("resolved", 0))
    acked_n = int(counts.get("acknowledged", 0))
    group_labels: dict[str, str] = payload.get("group_labels") or {}
    if payload.get("kind") == "resolved" or firing_n == 0:
        tag = f"[RESOLVED{':' + str(resolved_n) if resolved_n else ''}]"
    else:
        tag = f"[FIRING:{firing_n}]"
    header = truncate(f"{tag} {_title(payload)}", HEADER_LIMIT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    summary = [f"*{firing_n:,}* firing", f"*{resolved_n:,}* resolved"]
    if acked_n:
        summary.append(f"*{acked_n:,}* acknowledged")
    group = " ".join(f"`{escape(k)}={escape(v)}`" for k, v in group_labels.items()) or "(all alerts)"
    blocks.append(
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": truncate(f"{' · '.join(summary)}\n*Group:* {group}", SECTION_LIMIT),
            },
        }
    )
    for status, listed, total in (
        ("firing", payload.get("firing") or [], firing_n),
        ("resolved", payload.get("resolved") or [], resolved_n),
    ):
        for alert in listed:
            blocks.append(_alert_section(alert, status, group_labels))
        if total > len(listed):
            blocks.append(_context(f"…and {total - len(listed):,} more {status} alert(s) in this group"))
    receiver = escape(str(payload.get("receiver", "")))
    footer = _context(f"notification `{payload.get('notification_id', '')}` · receiver `{receiver}`")
    if len(blocks) + 1 > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 2], _context("…more alerts omitted (Slack allows 50 blocks)")]
    blocks.append(footer)
    text = truncate(f"{header} — {firing_n:,} firing, {resolved_n:,} resolved", FALLBACK_TEXT_LIMIT)
    return text, blocks


def metadata(notification_id: str) -> dict[str, Any]:
    """Message metadata that lets a retry find a post whose outcome it never learned."""
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"notification_id": notification_id}}


def bot_token() -> str | None:
    """SLACK_BOT_TOKEN, else `bot_token` of the SLACK_SECRET_ID secret; None: log only."""
    settings = settings_module.load(AlertSettings)
    if settings.slack_bot_token:
        return settings.slack_bot_token
    from aws_lambda_powertools.utilities import parameters

    secret: Any = parameters.get_secret(
        settings.slack_secret_id, transform="json", max_age=settings.slack_secret_max_age_s
    )
    token = secret.get("bot_token") if isinstance(secret, dict) else None
    return str(token) if token else None


def retry_after_seconds(headers: Any) -> int | None:
    if not headers:
        return None
    for name, value in dict(headers).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0, int(float(raw)))
            except (TypeError, ValueError):
                return None
    return None


class BudgetedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Sleeps out a 429's Retry-After inside the call only if the Lambda has time left for it.

    Otherwise the call fails at once and the message is redelivered after Retry-After.
    """

    def __init__(self, max_retry_count: int, deadline: float, request_timeout: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.deadline = deadline
        self.request_timeout = request_timeout

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        wait = retry_after_seconds(response.headers if response else None) or 1
        return time.monotonic() + wait + 1 + self.request_timeout < self.deadline


def client(token: str, *, deadline: float, posting: bool) -> WebClient:
    """A WebClient with retry handlers; `posting`: only retry errors that happened before
    the request reached Slack (a retry after that could post twice)."""
    settings = settings_module.load(AlertSettings)
    base_url = settings.slack_api_url or WebClient.BASE_URL
    if not base_url.endswith("/"):
        base_url += "/"
    connection = (
        ConnectionErrorRetryHandler(max_retry_count=2, error_types=[URLError])
        if posting
        else ConnectionErrorRetryHandler(max_retry_count=2)
    )
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=max(1, int(settings.slack_timeout_s)),
        retry_handlers=[
            connection,
            BudgetedRateLimitRetryHandler(
                settings.slack_rate_limit_retries, deadline, settings.slack_timeout_s
            ),
            ServerErrorRetryHandler(max_retry_count=settings.slack_server_error_retries),
        ],
    )
