"""Every handler module pauses the cyclic garbage collector while it loads and freezes what it
built before collection resumes: that is most of what keeps cold starts inside their budget."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FUNCTIONS = sorted((Path(__file__).resolve().parents[2] / "functions").glob("*/app.py"))


def _call(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        func = statement.value.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return f"{func.value.id}.{func.attr}"
    return None


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.parent.name)
def test_the_collector_is_paused_before_the_imports_and_resumed_last(path: Path) -> None:
    body = ast.parse(path.read_text()).body
    first_import = next(
        i
        for i, s in enumerate(body)
        if isinstance(s, ast.Import | ast.ImportFrom)
        and getattr(s, "module", None) != "__future__"
        and not (isinstance(s, ast.Import) and s.names[0].name == "gc")
    )
    assert "gc.disable" in [_call(s) for s in body[:first_import]], path
    assert [_call(s) for s in body[-2:]] == ["gc.freeze", "gc.enable"], path
