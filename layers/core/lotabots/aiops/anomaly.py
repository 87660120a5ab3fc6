"""Streaming anomaly scores for one metric series (causal, constant work per point).

A score uses only points at or before its timestamp. See docs/aiops-algorithms.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from lotabots.aiops.state import StateError, check_envelope, field, finite_number, require

__all__ = ["ANOMALY_THRESHOLD", "StateError", "StreamingDetector", "score_series"]

STATE_KIND = "lotabots.aiops.anomaly"
STATE_VERSION = 1
ANOMALY_THRESHOLD = 0.9
# Exponential forgetting of the running mean/variance: about the last 1/ALPHA points.
ALPHA = 0.01


class StreamingDetector:
    """One per series. `update` returns a score in [0, 1]; never raises on NaN/inf/gaps."""

    def __init__(self, *, season_s: Sequence[int] = (86400, 604800)) -> None:
        self.season_s = tuple(int(s) for s in season_s)
        self._n = 0
        self._mean = 0.0
        self._var = 0.0
        self._last_t: float | None = None

    def update(self, timestamp: float, value: float) -> float:
        if not (isinstance(value, int | float) and math.isfinite(value)):
            return 0.0
        if not math.isfinite(timestamp) or (self._last_t is not None and timestamp < self._last_t):
            return 0.0
        self._last_t = timestamp
        self._n += 1
        if self._n == 1:
            self._mean = float(value)
            return 0.0
        deviation = value - self._mean
        std = math.sqrt(self._var)
        scale = max(std, 1e-9 * max(1.0, abs(self._mean)))
        z = abs(deviation) / scale if self._n > 2 else 0.0
        self._mean += ALPHA * deviation
        self._var = (1 - ALPHA) * (self._var + ALPHA * deviation * deviation)
        return 1.0 - math.exp(-z * z / 18.0)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "season_s": list(self.season_s),
            "n": self._n,
            "mean": self._mean,
            "var": self._var,
            "last_t": self._last_t,
        }

    @classmethod
    def from_state(cls, state: Any) -> StreamingDetector:
        body = check_envelope(state, STATE_KIND, STATE_VERSION)
        seasons = field(body, "season_s")
        require(
            isinstance(seasons, list) and all(isinstance(s, int) and s > 0 for s in seasons),
            "season_s is not a list of positive integers",
        )
        detector = cls(season_s=seasons)
        n = field(body, "n")
        require(isinstance(n, int) and not isinstance(n, bool) and n >= 0, "n is not a count")
        detector._n = n
        detector._mean = finite_number(field(body, "mean"), "mean")
        detector._var = finite_number(field(body, "var"), "var")
        last_t = field(body, "last_t")
        detector._last_t = None if last_t is None else finite_number(last_t, "last_t")
        return detector


def score_series(points: Iterable[tuple[float, float]]) -> list[float]:
    """Scores of a whole series in one causal pass with a fresh detector."""
    detector = StreamingDetector()
    return [detector.update(t, v) for t, v in points]
