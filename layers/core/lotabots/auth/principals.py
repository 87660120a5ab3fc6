"""The caller as the database knows them now, for every request that reaches a function.

The authorizer's answer is cached (API Gateway's result cache, the revocations parameter's
cache), so the role and the enabled flag in a token's authorizer context may be stale. Every
API function re-reads them here before the route → roles check: a role change, a disabled
account or a revocation takes effect on the next request, whatever any cache still holds.
Integration principals have no user row; only the authorizer's revocation list covers them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select

from lotabots.access import Principal, Role
from lotabots.auth.models import User
from lotabots.db import session_scope
from lotabots.db.base import as_utc
from lotabots.errors import Unauthorized


def current(principal: Principal, issued_at: float | None) -> Principal:
    """`principal` with the role the database holds now; Unauthorized when the account is gone,
    disabled, or its tokens were revoked after `issued_at` (epoch seconds; None = unknown)."""
    if principal.role is Role.INTEGRATION:
        return principal
    with session_scope() as session:
        row = session.execute(
            select(User.role, User.email, User.disabled, User.tokens_revoked_at).where(
                User.id == principal.user_id
            )
        ).one_or_none()
    if row is None:
        raise Unauthorized("this account no longer exists", code="account_unknown")
    if row.disabled:
        raise Unauthorized("this account is disabled", code="account_disabled")
    if row.tokens_revoked_at is not None and _revoked(row.tokens_revoked_at, issued_at):
        raise Unauthorized(
            "this token was revoked (role change, disable or logout everywhere); log in again",
            code="token_revoked",
        )
    try:
        role = Role(row.role)
    except ValueError:
        raise Unauthorized("this account has no valid role", code="account_unknown") from None
    return replace(principal, role=role, email=row.email)


def _revoked(revoked_at: datetime, issued_at: float | None) -> bool:
    return issued_at is None or issued_at < as_utc(revoked_at).timestamp()
