"""The SnapStart runtime hooks: what they release before the snapshot and renew after a restore."""

from __future__ import annotations

import ast
import importlib
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import snapshot_restore_py
from sqlalchemy import text

from lotabots import aws, snapstart, topology
from lotabots.db import engine as db_engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sqlite_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'snap.db'}")
    from lotabots import config

    config.reset()
    db_engine.reset_engine()
    yield
    db_engine.reset_engine()
    config.reset()


def _run(registry: list[tuple[object, tuple[object, ...], dict[str, object]]]) -> None:
    """Call the hooks the way the Lambda runtime does."""
    for func, args, kwargs in registry:
        func(*args, **kwargs)  # type: ignore[operator]


def test_importing_the_module_registers_one_hook_of_each_kind() -> None:
    assert snapstart.REGISTERED
    assert (snapstart.release_connections, (), {}) in snapshot_restore_py.get_before_snapshot()
    assert (snapstart.reinitialise_after_restore, (), {}) in snapshot_restore_py.get_after_restore()


def test_before_snapshot_closes_pooled_connections_and_drops_cached_clients(
    sqlite_engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    engine = db_engine.get_engine()
    with engine.connect() as connection:
        connection.execute(text("select 1"))
    assert engine.pool.checkedin() == 1
    aws.client("s3")
    assert aws.client.cache_info().currsize == 1

    snapstart.release_connections()

    assert engine.pool.checkedin() == 0
    assert aws.client.cache_info().currsize == 0
    with engine.connect() as connection:  # reconnects on first use
        assert connection.execute(text("select 1")).scalar() == 1


def test_after_restore_reseeds_random_so_restored_copies_diverge(sqlite_engine: None) -> None:
    snapshot_state = random.getstate()
    first_copy = [random.random() for _ in range(3)]
    random.setstate(snapshot_state)
    _run(
        [
            entry
            for entry in snapshot_restore_py.get_after_restore()
            if entry[0] is snapstart.reinitialise_after_restore
        ]
    )
    second_copy = [random.random() for _ in range(3)]
    assert first_copy != second_copy


def test_after_restore_forgets_inherited_connections_without_closing_them(sqlite_engine: None) -> None:
    engine = db_engine.get_engine()
    with engine.connect() as connection:
        connection.execute(text("select 1"))
    inherited = engine.pool
    snapstart.reinitialise_after_restore()
    assert engine.pool is not inherited and engine.pool.checkedin() == 0


def test_hooks_do_not_import_what_the_function_never_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the authorizer's path SQLAlchemy is never imported; the hooks must not import it either."""
    monkeypatch.delitem(sys.modules, "lotabots.db.engine")
    monkeypatch.delitem(sys.modules, "lotabots.aws", raising=False)
    snapstart.release_connections()
    snapstart.reinitialise_after_restore()
    assert "lotabots.db.engine" not in sys.modules


def test_without_the_runtime_package_importing_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import raises ImportError
    try:
        reloaded = importlib.reload(snapstart)
        assert reloaded.REGISTERED is False
    finally:
        monkeypatch.undo()
        importlib.reload(snapstart)


def test_every_function_imports_the_hooks() -> None:
    """SnapStart snapshots each function's init: each handler module must register the hooks."""
    for spec in topology.FUNCTIONS:
        tree = ast.parse((ROOT / spec.code_dir / "app.py").read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "lotabots"
            for alias in node.names
        }
        assert "snapstart" in imported, f"{spec.code_dir}/app.py must import lotabots.snapstart"
