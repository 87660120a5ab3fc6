"""Persisted state of the AIOps algorithms: one error type and one envelope check.

Both the template miner and the streaming detector persist a JSON document between scheduled
runs (S3). A document that is not ours, of another version, or damaged raises `StateError`, so
the caller can replace it with a fresh state and report that, instead of crashing a run.
"""

from __future__ import annotations

import math
from typing import Any


class StateError(ValueError):
    """A persisted state is corrupt or incompatible with this version of the algorithm."""


def check_envelope(state: Any, kind: str, version: int, *, readable: tuple[int, ...] = ()) -> dict[str, Any]:
    """Return `state` as a dict after checking its `kind` and `version` fields (`version`, or an
    older one in `readable` that the caller upgrades)."""
    if not isinstance(state, dict):
        raise StateError(f"{kind} state is not a JSON object")
    if state.get("kind") != kind:
        raise StateError(f"state is not a {kind} state (kind {state.get('kind')!r})")
    if state.get("version") != version and state.get("version") not in readable:
        raise StateError(f"{kind} state version {state.get('version')!r} is not {version}")
    return state


def require(condition: bool, message: str) -> None:
    if not condition:
        raise StateError(message)


def finite_number(value: Any, what: str) -> float:
    """A finite float from JSON (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StateError(f"{what} is not a finite number")
    return float(value)


def field(body: dict[str, Any], name: str) -> Any:
    """A field of a checked envelope (Any: the caller validates it)."""
    return body.get(name)
