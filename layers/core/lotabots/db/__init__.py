"""Database access: one engine per Lambda container, short sessions per request."""

from lotabots.db.base import Base, TimestampMixin, new_id, utcnow
from lotabots.db.engine import database_url, get_engine, reset_engine, session_scope

__all__ = [
    "Base",
    "TimestampMixin",
    "database_url",
    "get_engine",
    "new_id",
    "reset_engine",
    "session_scope",
    "utcnow",
]
