"""Database access for users and refresh tokens (SQLAlchemy 2; SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lotabots import pagination
from lotabots.auth.models import RefreshToken, User


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).first()


def add_user(session: Session, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def list_users(
    session: Session, *, limit: int, after: tuple[datetime, str] | None = None, role: str | None = None
) -> list[User]:
    """Users oldest first; keyset pagination on (created_at, id)."""
    query = select(User).order_by(User.created_at, User.id).limit(limit)
    if after is not None:
        query = query.where(pagination.after(session, User.created_at, User.id, after, descending=False))
    if role is not None:
        query = query.where(User.role == role)
    return list(session.scalars(query))


def add_refresh_token(session: Session, token: RefreshToken) -> RefreshToken:
    session.add(token)
    session.flush()
    return token


def get_refresh_token(session: Session, token_hash: str) -> RefreshToken | None:
    return session.scalars(select(RefreshToken).where(RefreshToken.token_hash == token_hash)).first()


def spend_refresh_token(session: Session, token_id: str, now: datetime) -> bool:
    """Mark a refresh token used, atomically: False if it was already spent (reuse or race)."""
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def revoke_family(session: Session, family_id: str, now: datetime) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def revoke_user_tokens(session: Session, user_id: str, now: datetime) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))
