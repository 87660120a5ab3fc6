"""Point forecasts for the predictive-scaling plan (numpy, no fitting library).

With a season, `forecast` combines seven simple, diverse candidates: seasonal naive; the median and
the mean of the last `PROFILE_SEASONS` seasons phase by phase, scaled to the last season's level;
and four least-squares autoregressions (on the values and on their seasonal differences, each in
raw and in log space). Each candidate is scored by its mean absolute error on the most recent
`horizon` points held out of the history, and the forecast is the candidates refitted on the whole
history, weighted by the inverse of that error (Bates and Granger's combination). Combinations are
the robust winners of the M competitions; weights from a holdout keep a candidate that fails on a
series from dominating it. Without a season (or with too short a history) the forecast is the last
value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["detect_season", "forecast"]

# Periods tried when no season is given; a season must repeat at least MIN_CYCLES times.
CANDIDATE_SEASONS = (24, 168, 7, 12, 288, 1440)
MIN_CYCLES = 3
# An autocorrelation below this at the candidate period is no season (a conventional "moderate").
MIN_AUTOCORRELATION = 0.3
# Seasons in a phase profile, and the seasonal lags of the autoregressions: a week when the season
# is a day, the cycle that most operational metrics repeat.
PROFILE_SEASONS = 7
# Short lags of the autoregressions: the last day of hourly points, at most one season.
SHORT_LAGS = 24
# Ridge penalty (per row, on standardised data): keeps a regression with ~30 lags stable on a few
# hundred rows without visibly shrinking a real effect.
RIDGE = 1e-3
# A regression needs this many rows per coefficient, or it is not fitted.
ROWS_PER_COEFFICIENT = 5

Candidate = Callable[[np.ndarray, int, int], np.ndarray]


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


def _repeat(profile: np.ndarray, horizon: int) -> np.ndarray:
    return np.resize(profile, horizon)


def _seasonal_naive(x: np.ndarray, horizon: int, season: int) -> np.ndarray:
    return _repeat(x[-season:], horizon)


def _profile(average: Callable[..., np.ndarray]) -> Candidate:
    """The phase-by-phase average of the last seasons, scaled to the last season's level."""

    def candidate(x: np.ndarray, horizon: int, season: int) -> np.ndarray:
        k = max(1, min(PROFILE_SEASONS, len(x) // season))
        cycles = x[len(x) - k * season :].reshape(k, season)
        profile = average(cycles, axis=0)
        level, last = profile.mean(), cycles[-1].mean()
        if level > 0 and last > 0:
            profile = profile * (last / level)
        return _repeat(profile, horizon)

    return candidate


def _lags(season: int, rows: int) -> list[int]:
    """Short lags, then each whole season back to PROFILE_SEASONS with its two neighbours (a
    pattern that drifts by a step); lags too long for the rows are left out."""
    lags = set(range(1, min(SHORT_LAGS, season) + 1))
    lags |= {k * season + d for k in range(1, PROFILE_SEASONS + 1) for d in (-1, 0, 1)}
    needed = ROWS_PER_COEFFICIENT * (len(lags) + 1)
    return [lag for lag in sorted(lags) if lag >= 1 and rows - lag >= needed]


def _regression(lags: list[int], z: np.ndarray, intercept: bool) -> np.ndarray | None:
    """Ridge least squares of z[t] on z[t - lag] (and a constant); None when too few rows."""
    top = max(lags)
    n = len(z)
    columns = [z[top - lag : n - lag] for lag in lags]
    if intercept:
        columns.append(np.ones(n - top))
    design = np.stack(columns, axis=1)
    rows = n - top
    if rows < ROWS_PER_COEFFICIENT * design.shape[1]:
        return None
    gram = design.T @ design + RIDGE * rows * np.eye(design.shape[1])
    coefficients: np.ndarray = np.linalg.solve(gram, design.T @ z[top:])
    return coefficients


def _autoregression(*, log: bool, differenced: bool) -> Candidate:
    """An autoregression forecast recursively, on the values or on their seasonal differences.

    On differences it is seasonal naive corrected by the model of its own recent errors (it keeps
    the last level); on the values it also learns the mean. The log makes a seasonal pattern that
    scales with the level additive; it is skipped for series that are not positive.
    """

    def candidate(x: np.ndarray, horizon: int, season: int) -> np.ndarray:
        use_log = log and bool(x.min() > 0)
        y = np.log(x) if use_log else x
        base = y[season:] - y[:-season] if differenced else y
        centre = 0.0 if differenced else float(base.mean())
        scale = float(base.std()) or 1.0
        z = (base - centre) / scale
        lags = _lags(season, len(z))
        coefficients = _regression(lags, z, intercept=not differenced) if lags else None
        if coefficients is None:
            return _seasonal_naive(x, horizon, season)
        weights, constant = (coefficients[:-1], coefficients[-1]) if not differenced else (coefficients, 0.0)
        # Keep a recursion that runs away inside the history's range widened by half of it.
        low, high = float(z.min()), float(z.max())
        low, high = low - (high - low) / 2, high + (high - low) / 2
        index = np.asarray(lags)
        buffer = np.concatenate([z, np.zeros(horizon)])
        for t in range(len(z), len(z) + horizon):
            buffer[t] = min(max(float(weights @ buffer[t - index]) + constant, low), high)
        steps = buffer[len(z) :] * scale + centre
        if differenced:
            levels = np.concatenate([y, np.zeros(horizon)])
            for i, t in enumerate(range(len(y), len(y) + horizon)):
                levels[t] = levels[t - season] + steps[i]
            steps = levels[len(y) :]
        return np.exp(steps) if use_log else steps

    return candidate


CANDIDATES: tuple[Candidate, ...] = (
    _seasonal_naive,
    _profile(np.median),
    _profile(np.mean),
    _autoregression(log=False, differenced=False),
    _autoregression(log=True, differenced=False),
    _autoregression(log=False, differenced=True),
    _autoregression(log=True, differenced=True),
)


def _run(candidate: Candidate, x: np.ndarray, horizon: int, season: int) -> np.ndarray | None:
    """A candidate's forecast, or None when it is not finite (e.g. exp of a huge log)."""
    with np.errstate(all="ignore"):
        result = np.asarray(candidate(x, horizon, season), dtype=float)
    return result if result.shape == (horizon,) and bool(np.isfinite(result).all()) else None


def _combined(x: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The candidates' forecasts weighted by the inverse of their holdout error."""
    holdout = min(horizon, len(x) // 4)
    train, test = x[:-holdout], x[-holdout:]
    fitted = len(train) >= 2 * season
    forecasts, weights = [], []
    for candidate in CANDIDATES:
        result = _run(candidate, x, horizon, season)
        if result is None:
            continue
        weight = 1.0
        if fitted:
            check = _run(candidate, train, holdout, season)
            if check is None:
                continue
            error = float(np.mean(np.abs(check - test)))
            # A perfect holdout dominates without dividing by zero.
            weight = 1.0 / max(error, 1e-12 * (float(np.abs(test).mean()) + 1e-300))
        forecasts.append(result)
        weights.append(weight)
    if not forecasts:
        return _seasonal_naive(x, horizon, season)
    w = np.asarray(weights)
    combined: np.ndarray = (w[:, None] * np.asarray(forecasts)).sum(axis=0) / w.sum()
    return combined


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
    if season is None or len(values) < 2 * season or season < 2:
        return [values[-1]] * horizon
    x = np.asarray(values, dtype=float)
    result = _combined(x, horizon, season)
    return [float(r) if math.isfinite(r) else values[-1] for r in result]
