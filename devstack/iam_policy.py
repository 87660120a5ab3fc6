"""IAM policy evaluation of a REQUEST authorizer's policy document, as API Gateway does it for
`execute-api:Invoke` on the request's method ARN."""

from __future__ import annotations

import re
from typing import Any


def _arn_pattern(resource: str) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters, `?` any one character."""
    return re.compile(
        "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource) + "$"
    )


def policy_allows(policy: dict[str, Any], arn: str) -> bool:
    """IAM evaluation for execute-api:Invoke: an explicit Deny wins, else an Allow is needed."""
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(_arn_pattern(a).match("execute-api:Invoke") for a in actions):
            continue
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if not any(_arn_pattern(r).match(arn) for r in resources):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        if effect == "allow":
            allowed = True
    return allowed
