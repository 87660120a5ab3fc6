"""Streaming anomaly scores for one metric series (causal, constant work per point).

Per point, in order:

1. **Seasonal baseline.** For each season in `season_s` that the series has covered at least
   once, an exponentially weighted profile per phase bin (`SEASON_BINS` bins per season). The
   residual is the value minus the profile of its bin (minus the running mean before any season
   is learned).
2. **Robust scale.** Exponentially weighted mean and mean absolute deviation of the residuals
   (time constant `TAU_LONG_S`), so a score is "how unusual for this series", whatever its units.
3. **Two detectors, combined with max.** A spike z-score (this residual) and a level-shift
   z-score (the mean of the residuals over `TAU_SHORT_S`, with its smaller standard error).
4. **Calibration.** z becomes a two-sided normal tail probability p, and the score is
   `-log10(p) / LOG10_FLOOR` clipped to [0, 1], as NAB's detectors log-scale their likelihoods.
   So one threshold means the same rarity on every series.
5. **One alert per incident.** After a score reaches `ANOMALY_THRESHOLD`, later scores within
   `SUPPRESS_S` seconds are capped just below it (as NAB's HTM and CAD-OSE detectors do).

Time constants are in seconds, so per-minute and five-minute series behave alike. A score uses
only points at or before its timestamp. NaN/inf values, timestamps that go backwards and gaps
never raise: a non-finite value scores 0 and changes nothing; a gap just decays the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from lotabots.aiops.state import StateError, check_envelope, field, finite_number, require

__all__ = ["ANOMALY_THRESHOLD", "StateError", "StreamingDetector", "score_series"]

STATE_KIND = "lotabots.aiops.anomaly"
STATE_VERSION = 2

# Scores at or above this are anomalies (the value NAB's optimiser picks across the corpus).
ANOMALY_THRESHOLD = 0.3
# Long memory of the scale: one day (a residual is judged against the last day or so).
TAU_LONG_S = 86400.0
# Level-shift detector: mean of the residuals over the last half hour.
TAU_SHORT_S = 1800.0
# Phase bins of BIN_S seconds (at most MAX_BINS per season), and how fast a bin follows a changed
# pattern: each visit moves the bin a tenth of the way, so a changed pattern is learned in a few seasons.
BIN_S = 300
MAX_BINS = 2016
SEASON_RATE = 0.1
# A deviation under this fraction of the series' own spread (MAD of its values) is never unusual:
# it keeps noise-free series from scoring rounding errors.
SCALE_FLOOR = 0.05
# Warm-up: no score until this much time has been seen (the scale is not known before).
WARMUP_S = 6 * 3600.0
# p = 1e-40 (about 13 sigma) scores 1: room above the threshold to rank big deviations.
LOG10_FLOOR = 40.0
SUPPRESS_S = 6 * 3600.0
# Values are clipped to +-1e100 so the arithmetic never overflows to inf/NaN.
VALUE_LIMIT = 1e100
# Mean absolute deviation of a normal is sigma * sqrt(2/pi).
_MAD_TO_SIGMA = math.sqrt(math.pi / 2)


class _Season:
    __slots__ = ("bins", "count", "length_s", "start")

    def __init__(self, length_s: int) -> None:
        self.length_s = length_s
        self.count = max(1, min(MAX_BINS, length_s // BIN_S))
        self.start: float | None = None
        self.bins: list[float | None] = [None] * self.count

    def index(self, timestamp: float) -> int:
        return int((timestamp % self.length_s) / self.length_s * self.count) % self.count

    def ready(self, timestamp: float) -> bool:
        return self.start is not None and timestamp - self.start >= self.length_s


class StreamingDetector:
    """One per series. `update` returns a score in [0, 1]; never raises on NaN/inf/gaps."""

    def __init__(self, *, season_s: Sequence[int] = (86400, 604800)) -> None:
        self.season_s = tuple(int(s) for s in season_s)
        self._seasons = [_Season(s) for s in self.season_s if s > 0]
        self._first_t: float | None = None
        self._last_t: float | None = None
        self._mean = 0.0  # of the values (baseline before a season is learned)
        self._mad = 0.0  # of the values: the series' own spread
        self._res_mean = 0.0
        self._res_mad = 0.0
        self._short = 0.0  # short mean of the residuals
        self._last_alert: float | None = None

    def _alpha(self, dt: float, tau: float) -> float:
        return 1.0 - math.exp(-dt / tau)

    def update(self, timestamp: float, value: float) -> float:
        if not (isinstance(value, int | float) and math.isfinite(value)):
            return 0.0
        if not (isinstance(timestamp, int | float) and math.isfinite(timestamp)):
            return 0.0
        if self._last_t is not None and timestamp <= self._last_t:
            return 0.0
        value = min(max(float(value), -VALUE_LIMIT), VALUE_LIMIT)
        if self._first_t is None or self._last_t is None:
            self._first_t = self._last_t = timestamp
            self._mean = value
            for season in self._seasons:
                season.start = timestamp
                season.bins[season.index(timestamp)] = value
            return 0.0
        dt = timestamp - self._last_t
        self._last_t = timestamp
        baseline = self._mean
        for season in self._seasons:
            # the longest learned season wins: a weekly profile includes the daily one
            learned = season.bins[season.index(timestamp)]
            if learned is not None and season.ready(timestamp):
                baseline = learned
        residual = value - baseline
        a_long = self._alpha(dt, TAU_LONG_S)
        a_short = self._alpha(dt, TAU_SHORT_S)
        sigma = self._res_mad * _MAD_TO_SIGMA
        tiny = max(1e-9 * max(1.0, abs(self._mean)), SCALE_FLOOR * self._mad * _MAD_TO_SIGMA)
        scale = max(sigma, tiny)
        z_spike = abs(residual - self._res_mean) / scale
        short = self._short + a_short * (residual - self._short)
        # standard error of an exponentially weighted mean: sigma * sqrt(a / (2 - a))
        z_level = abs(short - self._res_mean) / max(sigma * math.sqrt(a_short / (2 - a_short)), tiny)
        z = max(z_spike, z_level)
        warm = timestamp - self._first_t >= WARMUP_S
        # update the statistics
        self._short = short
        deviation = residual - self._res_mean
        self._res_mean += a_long * deviation
        self._res_mad += a_long * (abs(deviation) - self._res_mad)
        self._mad += a_long * (abs(value - self._mean) - self._mad)
        self._mean += a_long * (value - self._mean)
        for season in self._seasons:
            index = season.index(timestamp)
            learned = season.bins[index]
            season.bins[index] = value if learned is None else learned + SEASON_RATE * (value - learned)
        if not warm:
            return 0.0
        return self._suppress(timestamp, _calibrate(z))

    def _suppress(self, timestamp: float, score: float) -> float:
        if score < ANOMALY_THRESHOLD:
            return score
        if self._last_alert is not None and timestamp - self._last_alert < SUPPRESS_S:
            return min(score, ANOMALY_THRESHOLD * 0.99)
        self._last_alert = timestamp
        return score

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "season_s": list(self.season_s),
            "seasons": [{"start": s.start, "bins": list(s.bins)} for s in self._seasons],
            "first_t": self._first_t,
            "last_t": self._last_t,
            "mean": self._mean,
            "mad": self._mad,
            "res_mean": self._res_mean,
            "res_mad": self._res_mad,
            "short": self._short,
            "last_alert": self._last_alert,
        }

    @classmethod
    def from_state(cls, state: Any) -> StreamingDetector:
        body = check_envelope(state, STATE_KIND, STATE_VERSION)
        seasons = field(body, "season_s")
        require(
            isinstance(seasons, list)
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in seasons),
            "season_s is not a list of positive integers",
        )
        detector = cls(season_s=seasons)
        learned = field(body, "seasons")
        require(isinstance(learned, list) and len(learned) == len(detector._seasons), "seasons do not match")
        for season, saved in zip(detector._seasons, learned, strict=True):
            require(isinstance(saved, dict), "a season is not an object")
            bins = saved.get("bins")
            require(isinstance(bins, list) and len(bins) == season.count, "season bins are damaged")
            season.bins = [None if b is None else finite_number(b, "a season bin") for b in bins]
            start = saved.get("start")
            season.start = None if start is None else finite_number(start, "season start")
        for name in ("first_t", "last_t", "last_alert"):
            raw = field(body, name)
            setattr(detector, f"_{name}", None if raw is None else finite_number(raw, name))
        for name in ("mean", "mad", "res_mean", "res_mad", "short"):
            setattr(detector, f"_{name}", finite_number(field(body, name), name))
        require(detector._res_mad >= 0 and detector._mad >= 0, "a deviation is negative")
        return detector


def _calibrate(z: float) -> float:
    """Two-sided normal tail probability of z, log-scaled to [0, 1]."""
    if not math.isfinite(z):
        return 1.0
    p = math.erfc(z / math.sqrt(2))
    if p <= 0:
        return 1.0
    return min(1.0, max(0.0, -math.log10(p) / LOG10_FLOOR))


def score_series(points: Iterable[tuple[float, float]]) -> list[float]:
    """Scores of a whole series in one causal pass with a fresh detector."""
    detector = StreamingDetector()
    return [detector.update(t, v) for t, v in points]
