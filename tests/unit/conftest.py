"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack import runtime


@pytest.fixture
def records() -> Iterator[list[runtime.InvocationRecord]]:
    """Every invocation the local runtime reports while the test runs."""
    seen: list[runtime.InvocationRecord] = []
    runtime.INVOCATION_LISTENERS.append(seen.append)
    try:
        yield seen
    finally:
        runtime.INVOCATION_LISTENERS.remove(seen.append)
