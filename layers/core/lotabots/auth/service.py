"""Auth use cases: registration, sign-in, token refresh/logout, user administration.

Every function here is called by one thin handler in `functions/auth/app.py` (or the CLI and
the local stack). Errors are `lotabots.errors.AppError`s; nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lotabots import config
from lotabots.access import Principal, Role
from lotabots.auth import repository

# keys and tokens (cryptography, PyJWT), passwords (bcrypt), lockout and revocations (botocore)
# and the audit chain are imported by the functions that use them: a cold start pays only
# for what its request needs (docs/benchmarks.md, cold starts).
from lotabots.auth.models import RefreshToken, User
from lotabots.auth.schemas import (
    JWKS,
    LoginRequest,
    RegisterRequest,
    TokenPair,
    UserOut,
    UserPage,
    UserRole,
    UserUpdate,
    normalise_email,
)
from lotabots.config import AuthSettings
from lotabots.db import new_id, session_scope, utcnow
from lotabots.db.base import as_utc
from lotabots.errors import BadRequest, Conflict, NotFound, Unauthorized
from lotabots.observability import logger, metrics
from lotabots.pagination import decode_time_cursor, page

DUPLICATE_EMAIL = "an account with this email cannot be created"
BAD_CREDENTIALS = "email or password is incorrect"
BAD_REFRESH = "the refresh token is invalid, expired or revoked; sign in again"


def _settings() -> AuthSettings:
    return config.load(AuthSettings)


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,  # type: ignore[arg-type]  # the column only ever holds a UserRole
        disabled=user.disabled,
        created_at=as_utc(user.created_at),
        last_login_at=as_utc(user.last_login_at) if user.last_login_at else None,
    )


# --- registration and sign-in -------------------------------------------------------------


def register(request: RegisterRequest, source_ip: str | None = None) -> UserOut:
    """A new member. The 409 for a taken address tells the caller it exists (the price of a
    clear answer; docs/security.md): attempts are limited per client IP like sign-in failures."""
    from lotabots import audit
    from lotabots.auth import lockout, passwords

    lockout.check_registration(source_ip)
    lockout.record_registration_attempt(source_ip)
    passwords.check_policy(request.password, request.email)
    # Hash before looking the address up: a duplicate takes as long as a fresh account.
    password_hash = passwords.hash_password(request.password)
    try:
        with session_scope() as session:
            if repository.get_user_by_email(session, request.email) is not None:
                raise Conflict(DUPLICATE_EMAIL, code="registration_rejected")
            user = repository.add_user(
                session,
                User(
                    id=new_id(),
                    email=request.email,
                    password_hash=password_hash,
                    display_name=request.display_name,
                    role=Role.MEMBER.value,
                    disabled=False,
                ),
            )
            audit.record(
                session,
                actor_id=user.id,
                action="user.registered",
                target_type="user",
                target_id=user.id,
                details={"role": user.role},
            )
            result = user_out(user)
    except IntegrityError:
        # Lost a race with a concurrent registration of the same address.
        raise Conflict(DUPLICATE_EMAIL, code="registration_rejected") from None
    metrics.add_metric(name="UsersRegistered", unit="Count", value=1)
    return result


@dataclass(frozen=True)
class _Candidate:
    user_id: str
    password_hash: str
    disabled: bool


def _issue_pair(session: Session, user: User, *, family_id: str, expires_at: datetime) -> TokenPair:
    from lotabots.auth import tokens

    raw = secrets.token_urlsafe(32)
    repository.add_refresh_token(
        session,
        RefreshToken(
            id=new_id(),
            token_hash=_hash_token(raw),
            family_id=family_id,
            user_id=user.id,
            created_at=utcnow(),
            expires_at=expires_at,
        ),
    )
    not_before = as_utc(user.tokens_revoked_at).timestamp() if user.tokens_revoked_at else None
    access, expires_in = tokens.issue_access_token(user.id, user.email, user.role, not_before=not_before)
    return TokenPair(access_token=access, refresh_token=raw, expires_in=expires_in)


def login(request: LoginRequest, source_ip: str | None) -> TokenPair:
    """Unknown address, wrong password and disabled account look (and take) the same."""
    from lotabots.auth import lockout, passwords

    email = normalise_email(request.email)
    lockout.check(email, source_ip)
    with session_scope() as session:
        found = repository.get_user_by_email(session, email)
        candidate = _Candidate(found.id, found.password_hash, found.disabled) if found else None
    # bcrypt runs outside any transaction; unknown users get a dummy check of the same cost.
    valid = passwords.verify_password(request.password, candidate.password_hash if candidate else None)
    pair: TokenPair | None = None
    if valid and candidate and not candidate.disabled:
        with session_scope() as session:
            user = repository.get_user(session, candidate.user_id)
            if user is not None and not user.disabled:
                now = utcnow()
                user.last_login_at = now
                if passwords.needs_rehash(user.password_hash):
                    user.password_hash = passwords.hash_password(request.password)
                pair = _issue_pair(
                    session,
                    user,
                    family_id=new_id(),
                    expires_at=now + timedelta(seconds=_settings().refresh_token_ttl_seconds),
                )
    if pair is None:
        lockout.record_failure(email, source_ip)
        raise Unauthorized(BAD_CREDENTIALS, code="invalid_credentials")
    lockout.reset_account(email)
    metrics.add_metric(name="Logins", unit="Count", value=1)
    return pair


# --- refresh and logout ----------------------------------------------------------------------


def _refresh_in(session: Session, token_hash: str, now: datetime) -> TokenPair | str:
    """A new pair, or the reason the refresh is refused (state changes still commit)."""
    from lotabots import audit

    token = repository.get_refresh_token(session, token_hash)
    if token is None:
        return "unknown"
    if token.revoked_at is not None:
        return "revoked"
    if token.used_at is not None or not repository.spend_refresh_token(session, token.id, now):
        # A spent token came back: someone holds a copy. Kill the whole family.
        repository.revoke_family(session, token.family_id, now)
        audit.record(
            session,
            actor_id=token.user_id,
            action="auth.refresh_token_reused",
            target_type="user",
            target_id=token.user_id,
            details={"family_id": token.family_id},
        )
        return "reused"
    if as_utc(token.expires_at) <= now:
        return "expired"
    user = repository.get_user(session, token.user_id)
    if user is None or user.disabled:
        repository.revoke_family(session, token.family_id, now)
        return "disabled"
    return _issue_pair(session, user, family_id=token.family_id, expires_at=as_utc(token.expires_at))


def refresh(raw_token: str) -> TokenPair:
    with session_scope() as session:
        outcome = _refresh_in(session, _hash_token(raw_token), utcnow())
    if isinstance(outcome, TokenPair):
        return outcome
    if outcome == "reused":
        logger.warning("refresh token reuse detected; family revoked")
        metrics.add_metric(name="RefreshTokenReuse", unit="Count", value=1)
    raise Unauthorized(BAD_REFRESH, code="invalid_refresh_token")


def logout(raw_token: str) -> None:
    """Revoke the token's family. Unknown tokens are ignored: logout is idempotent."""
    with session_scope() as session:
        token = repository.get_refresh_token(session, _hash_token(raw_token))
        if token is not None:
            repository.revoke_family(session, token.family_id, utcnow())


# --- the caller and user administration ------------------------------------------------------


def me(principal: Principal) -> UserOut:
    with session_scope() as session:
        user = repository.get_user(session, principal.user_id)
        if user is None or user.disabled:
            raise Unauthorized()
        return user_out(user)


def list_users(*, limit: int, cursor: str | None = None, role: UserRole | None = None) -> UserPage:
    after = decode_time_cursor(cursor) if cursor else None
    with session_scope() as session:
        users = repository.list_users(session, limit=limit + 1, after=after, role=role)
        found, next_cursor = page(users, limit, lambda u: (u.created_at, u.id))
        return UserPage(items=[user_out(u) for u in found], next_cursor=next_cursor)


def update_user(actor: Principal, user_id: str, change: UserUpdate) -> UserOut:
    """Change a user's role and/or disabled flag; audited; live access tokens are revoked."""
    from lotabots import audit
    from lotabots.auth import revocations, tokens

    if user_id == actor.user_id:
        raise Conflict("you cannot change your own role or disable yourself", code="self_change")
    now = utcnow()
    with session_scope() as session:
        user = repository.get_user(session, user_id)
        if user is None:
            raise NotFound("no such user")
        revoke_access = False
        if change.role is not None and change.role != user.role:
            audit.record(
                session,
                actor_id=actor.user_id,
                action="user.role_changed",
                target_type="user",
                target_id=user.id,
                details={"from": user.role, "to": change.role},
            )
            user.role = change.role
            revoke_access = True
        if change.disabled is not None and change.disabled != user.disabled:
            audit.record(
                session,
                actor_id=actor.user_id,
                action="user.disabled" if change.disabled else "user.enabled",
                target_type="user",
                target_id=user.id,
            )
            user.disabled = change.disabled
            if change.disabled:
                repository.revoke_user_tokens(session, user.id, now)
                revoke_access = True
        if revoke_access:
            revoked_at = tokens.revocation_instant(now.timestamp())
            user.tokens_revoked_at = datetime.fromtimestamp(revoked_at, UTC)
            session.flush()
            # Before the commit: if SSM refuses, nothing changes (a revocation whose
            # commit then fails is harmless: the user just refreshes).
            revocations.revoke(user.id, revoked_at)
        return user_out(user)


def jwks() -> JWKS:
    from lotabots.auth import keys

    return JWKS.model_validate(keys.public_jwks())


# --- first admin --------------------------------------------------------------------------


def ensure_admin(email: str, password: str | None, *, actor: str) -> tuple[UserOut, bool]:
    """Create the admin, or make an existing account an enabled admin (its password is kept).

    Returns (user, created). `actor` names who did it in the audit log (cli, bootstrap).
    """
    from lotabots import audit
    from lotabots.auth import passwords
    from lotabots.auth.schemas import validate_email

    try:
        email = validate_email(email)
    except ValueError:
        raise BadRequest(f"{email!r} is not a valid email address") from None
    with session_scope() as session:
        user = repository.get_user_by_email(session, email)
        if user is not None:
            changed: dict[str, object] = {}
            if user.role != Role.ADMIN.value:
                changed["role"] = {"from": user.role, "to": Role.ADMIN.value}
                user.role = Role.ADMIN.value
            if user.disabled:
                changed["disabled"] = {"from": True, "to": False}
                user.disabled = False
            if changed:
                audit.record(
                    session,
                    actor_id=None,
                    action="user.admin_ensured",
                    target_type="user",
                    target_id=user.id,
                    details={"by": actor, **changed},
                )
            return user_out(user), False
        if not password:
            raise BadRequest("a password is needed to create the admin account")
        passwords.check_policy(password, email)
        user = repository.add_user(
            session,
            User(
                id=new_id(),
                email=email,
                password_hash=passwords.hash_password(password),
                display_name="Administrator",
                role=Role.ADMIN.value,
                disabled=False,
            ),
        )
        audit.record(
            session,
            actor_id=None,
            action="user.admin_created",
            target_type="user",
            target_id=user.id,
            details={"by": actor},
        )
        return user_out(user), True


def bootstrap_admin() -> UserOut | None:
    """The local stack's first admin from LOTABOTS_BOOTSTRAP_ADMIN_EMAIL/_PASSWORD (idempotent)."""
    settings = _settings()
    if not settings.bootstrap_admin_email:
        return None
    user, created = ensure_admin(
        settings.bootstrap_admin_email, settings.bootstrap_admin_password, actor="bootstrap"
    )
    if created:
        logger.info("bootstrap admin created", extra={"user_id": user.id})
    return user
