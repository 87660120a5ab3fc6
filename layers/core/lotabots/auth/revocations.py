"""The revoked-principals list the authorizer checks: `{user_id: revoked_at_epoch}` in SSM.

Written by the auth service when an admin disables a user or changes their role; the
authorizer refuses tokens whose `iat` is older than the entry. An access token lives at most
`ACCESS_TOKEN_TTL_SECONDS`, so older entries are pruned on every write and the parameter
stays tiny. SSM has no conditional put, so a write is read back and retried if a concurrent
writer replaced it without our entry.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lotabots import aws, config
from lotabots.auth.tokens import LEEWAY_SECONDS
from lotabots.config import AuthSettings
from lotabots.observability import logger

_ATTEMPTS = 4


def parse(value: str | None) -> dict[str, float]:
    """Decode the parameter; anything malformed counts as empty (logged)."""
    if not value:
        return {}
    try:
        data: Any = json.loads(value)
    except ValueError:
        logger.warning("revocations parameter is not JSON; treating as empty")
        return {}
    if not isinstance(data, dict):
        return {}
    result: dict[str, float] = {}
    for key, revoked_at in data.items():
        if isinstance(revoked_at, int | float) and not isinstance(revoked_at, bool):
            result[str(key)] = float(revoked_at)
    return result


def _read(ssm: Any, name: str) -> dict[str, float]:
    try:
        return parse(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return {}


def current() -> dict[str, float]:
    settings = config.load(AuthSettings)
    return _read(aws.client("ssm"), settings.revocations_parameter_name)


def revoke(user_id: str, revoked_at: float | None = None) -> float:
    """Record that tokens of `user_id` issued before `revoked_at` (default now) are void."""
    settings = config.load(AuthSettings)
    ssm = aws.client("ssm")
    name = settings.revocations_parameter_name
    revoked_at = round(revoked_at if revoked_at is not None else time.time(), 3)
    horizon = settings.access_token_ttl_seconds + LEEWAY_SECONDS
    for _ in range(_ATTEMPTS):
        now = time.time()
        entries = {k: v for k, v in _read(ssm, name).items() if v >= now - horizon}
        entries[user_id] = max(entries.get(user_id, 0.0), revoked_at)
        ssm.put_parameter(
            Name=name,
            Value=json.dumps(entries, separators=(",", ":"), sort_keys=True),
            Type="String",
            Overwrite=True,
            Tier="Intelligent-Tiering",
        )
        if _read(ssm, name).get(user_id, 0.0) >= revoked_at:
            return revoked_at
    raise RuntimeError("could not record the revocation under concurrent writes")
