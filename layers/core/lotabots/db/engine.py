"""Engine and session handling suited to Lambda.

The engine is created on first use and kept for the container's life. In AWS the URL is
built from the RDS Proxy endpoint and the database secret; locally it is `DATABASE_URL` or
an SQLite file. SQLite gets WAL, foreign keys and a busy timeout so the local stack's
processes can share it, and every transaction begins IMMEDIATE: it takes the write lock at
BEGIN (waiting up to the busy timeout). A deferred transaction that read first and writes
later fails at once with "database is locked" if another process committed in between
(SQLite cannot upgrade a stale read snapshot, and its busy handler does not wait for that).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from lotabots import config

_lock = threading.Lock()
_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None


def database_url() -> str:
    settings = config.core()
    if settings.database_url:
        return _normalise(settings.database_url)
    if settings.db_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret: Any = parameters.get_secret(settings.db_secret_arn, transform="json", max_age=300)
        url = URL.create(
            "postgresql+psycopg",
            username=secret["username"],
            password=secret["password"],
            host=settings.db_proxy_endpoint or secret["host"],
            port=int(secret.get("port", 5432)),
            database=secret.get("dbname", settings.db_name),
            query={"sslmode": settings.db_sslmode},
        )
        return url.render_as_string(hide_password=False)
    path = Path(settings.sqlite_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _normalise(url: str) -> str:
    """Accept the usual `postgresql://` spelling and use the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # pysqlite's own transaction handling breaks SAVEPOINTs; let SQLAlchemy emit BEGIN.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # RDS Proxy multiplexes connections: keep one per container and check it before use.
    engine = create_engine(url, pool_size=1, max_overflow=2, pool_pre_ping=True, pool_recycle=300)
    secret_arn = config.core().db_secret_arn
    if secret_arn and not config.core().database_url:
        _follow_secret_rotation(engine, secret_arn)
    return engine


def _follow_secret_rotation(engine: Engine, secret_arn: str) -> None:
    """New connections use the secret's current password; after a rotation the cached one
    fails authentication once, and the connection is retried with a freshly read secret."""
    from aws_lambda_powertools.utilities import parameters

    @event.listens_for(engine, "do_connect")
    def _connect_with_current_secret(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        secret: Any = parameters.get_secret(secret_arn, transform="json", max_age=300)
        cparams.update(user=secret["username"], password=secret["password"])
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as exc:
            if "authentication" not in str(exc).lower():
                raise
            secret = parameters.get_secret(secret_arn, transform="json", force_fetch=True)
            cparams.update(user=secret["username"], password=secret["password"])
            return dialect.connect(*cargs, **cparams)


def get_engine() -> Engine:
    global _engine, _sessionmaker
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = _create(database_url())
                _sessionmaker = sessionmaker(bind=_engine, expire_on_commit=False)
    return _engine


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    get_engine()
    assert _sessionmaker is not None
    session = _sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def reset_engine() -> None:
    global _engine, _sessionmaker
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _sessionmaker = None
