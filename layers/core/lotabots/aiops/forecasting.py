"""Point forecasts for the predictive-scaling plan (pure Python, no fitting library).

`forecast` picks, per series, among a few robust seasonal methods by their error on the most recent
`horizon` points held out of the history (an in-sample holdout), then refits the chosen one on the
whole history. Short, flat or broken histories fall back to the last value / the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

__all__ = ["detect_season", "forecast"]

# Periods tried when no season is given; a season must repeat at least MIN_CYCLES times.
CANDIDATE_SEASONS = (24, 168, 7, 12, 288, 1440)
MIN_CYCLES = 3
# An autocorrelation below this at the candidate period is no season (a conventional "moderate").
MIN_AUTOCORRELATION = 0.3

Method = Callable[[list[float], int, int], list[float]]


def _clean(history: Sequence[float]) -> list[float]:
    """Finite floats; a NaN/inf takes the previous finite value (the first finite one at the start)."""
    values = [float(v) if isinstance(v, int | float) and math.isfinite(v) else math.nan for v in history]
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return []
    previous = finite[0]
    out = []
    for v in values:
        if math.isnan(v):
            v = previous
        out.append(v)
        previous = v
    return out


def _autocorrelation(values: list[float], lag: int) -> float:
    n = len(values)
    mean = sum(values) / n
    denominator = sum((v - mean) ** 2 for v in values)
    if denominator == 0:
        return 0.0
    numerator = sum((values[i] - mean) * (values[i - lag] - mean) for i in range(lag, n))
    return numerator / denominator


def detect_season(history: Sequence[float]) -> int | None:
    """The candidate period with the strongest autocorrelation, when it is strong enough."""
    values = _clean(history)
    best, best_r = None, MIN_AUTOCORRELATION
    for period in CANDIDATE_SEASONS:
        if len(values) >= MIN_CYCLES * period:
            r = _autocorrelation(values, period)
            if r > best_r:
                best, best_r = period, r
    return best


def _seasonal_naive(values: list[float], horizon: int, season: int) -> list[float]:
    last = values[-season:]
    return [last[i % season] for i in range(horizon)]


def _naive(values: list[float], horizon: int, _season: int) -> list[float]:
    return [values[-1]] * horizon


def _seasonal_mean(cycles: int) -> Method:
    """The mean of the last `cycles` seasons, phase by phase (robust to one odd season)."""

    def method(values: list[float], horizon: int, season: int) -> list[float]:
        k = max(1, min(cycles, len(values) // season))
        profile = [sum(values[-(c + 1) * season + i] for c in range(k)) / k for i in range(season)]
        return [profile[i % season] for i in range(horizon)]

    return method


def _level_adjusted(cycles: int) -> Method:
    """The seasonal mean shifted by how far the last season sits above/below it."""
    base = _seasonal_mean(cycles)

    def method(values: list[float], horizon: int, season: int) -> list[float]:
        k = max(1, min(cycles, len(values) // season))
        mean_k = sum(values[-k * season :]) / (k * season)
        last = sum(values[-season:]) / season
        return [v + (last - mean_k) for v in base(values, horizon, season)]

    return method


def _combined(methods: list[Method]) -> Method:
    """The plain average of several methods' forecasts (a forecast combination)."""

    def method(values: list[float], horizon: int, season: int) -> list[float]:
        runs = [m(values, horizon, season) for m in methods]
        return [sum(step) / len(step) for step in zip(*runs, strict=True)]

    return method


def _methods(season: int | None) -> list[Method]:
    if not season:
        return [_naive]
    return [_seasonal_naive, _seasonal_mean(7), _combined([_seasonal_naive, _seasonal_mean(7)])]


def _mae(actual: Sequence[float], predicted: Sequence[float]) -> float:
    return sum(abs(a - p) for a, p in zip(actual, predicted, strict=True)) / len(actual)


def forecast(history: Sequence[float], horizon: int, season: int | None = None) -> list[float]:
    """`horizon` future values of `history` (season None: detected, or none)."""
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    if len(history) == 0:
        raise ValueError("history is empty")
    values = _clean(history)
    if not values:
        return [0.0] * horizon
    if season is not None and season < 1:
        raise ValueError("season must be at least 1")
    if season is None:
        season = detect_season(values)
    if season is not None and len(values) < 2 * season:
        season = None
    if len(values) < 2:
        return [values[-1]] * horizon
    methods = _methods(season)
    chosen = methods[0]
    holdout = min(horizon, len(values) // 3)
    if len(methods) > 1 and season is not None and len(values) - holdout >= 2 * season:
        train, test = values[:-holdout], values[-holdout:]
        chosen = min(methods, key=lambda m: _mae(test, m(train, holdout, season)))
    result = chosen(values, horizon, season or 1)
    return [r if math.isfinite(r) else values[-1] for r in result]
