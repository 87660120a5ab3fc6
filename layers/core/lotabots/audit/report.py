"""`lotabots audit verify` output: a verification result for people, and fetching one from the API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from lotabots.audit.schemas import VerifyResult
from lotabots.errors import AppError

TOKEN_VARIABLE = "LOTABOTS_ACCESS_TOKEN"  # noqa: S105 - the name of the variable, not a secret
TIMEOUT_S = 60


def _short(digest: str | None) -> str:
    return f"{digest[:16]}…" if digest else "-"


def render(result: VerifyResult) -> str:
    anchors = result.anchors
    lines = [
        f"audit log {'VALID' if result.valid else 'INVALID'}: {result.entries} entries"
        + (f", head #{result.head_seq} {_short(result.head)}" if result.head_seq is not None else ""),
    ]
    where = f"s3://{anchors.bucket}/{anchors.prefix}"
    if anchors.latest is None:
        lines.append(f"anchors: none yet in {where}")
    else:
        latest = anchors.latest
        lines.append(
            f"anchors: {anchors.count} in {where}, {anchors.matched} match, {anchors.mismatched} do not; "
            f"the latest covers {latest.entries} entries (anchored {latest.anchored_at.isoformat()})"
        )
    lines.append(f"entries not anchored yet: {anchors.unanchored_entries}")
    if result.first_bad_entry is not None:
        lines.append(f"first bad entry: #{result.first_bad_entry}")
    if result.problems:
        lines.append("problems:")
        for problem in result.problems:
            subject = f" (entry #{problem.entry})" if problem.entry is not None else ""
            subject += f" ({problem.anchor})" if problem.anchor else ""
            lines.append(f"  - {problem.code}{subject}: {problem.message}")
    lines.append(f"checked at {result.checked_at.isoformat()}")
    return "\n".join(lines)


def check_api_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--api needs an http(s) URL of the API, got {url!r}")
    return url.rstrip("/") + "/audit/verify"


def fetch(url: str, token: str) -> VerifyResult:
    """GET <url>/audit/verify with the caller's bearer token; an error answer becomes an AppError."""
    request = urllib.request.Request(  # noqa: S310 - check_api_url allows http(s) only
        check_api_url(url), headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return VerifyResult.model_validate_json(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
            message, code = str(body["message"]), str(body["code"])
        except (ValueError, KeyError, TypeError):
            message, code = exc.reason or "request failed", "http_error"
        raise AppError(f"the API answered {exc.code}: {message}", code=code) from None
    except urllib.error.URLError as exc:
        raise AppError(f"cannot reach {url}: {exc.reason}", code="unreachable") from None
