"""Streaming anomaly scores for one metric series (causal, constant work per point).

A contextual detector in the style of CAD-OSE (written from its published description), with a
learned daily profile beside it. Per point:

1. **Levels.** The value is normalised to [0, 1] by the series' running minimum and maximum
   (widened by `RANGE_MARGIN` of the span whenever a value falls outside, so the range settles)
   and quantised into `LEVELS` levels.
2. **Facts.** The current level paired with each of the last `LAGS` levels, `(lag, earlier level,
   level)`, is a fact. The detector remembers every fact with the time it was last seen; a fact
   not seen for the longest season in `season_s` (a week by default) is forgotten, so a pattern
   that still recurs weekly stays known and an old one fades. At most `LAGS * LEVELS**2` facts
   exist, so the state is bounded.
3. **Novelty.** The raw score is the share of the current facts never seen (or forgotten). A burst
   that recurs, an on/off pattern, a daily cron spike: their facts are known after a few
   occurrences and stop scoring, however large the jump is.
4. **Rarity.** The mean novelty of the last `SHORT_POINTS` points against the exponentially weighted
   mean and deviation of novelty over `TAU_LONG_S` (as HTM's anomaly likelihood judges its raw
   scores): a one-sided normal tail probability p, scored `-log10(p) / LOG10_FLOOR` clipped to
   [0, 1]. So a series whose values are always a little novel (noise) needs much more novelty to
   alarm than a regular one.
5. **Daily profile.** The shortest season (a day by default) is cut into `PHASE_BUCKETS` phases; a
   phase fact `(phase, level)` is known when the level (within one level) was seen at that phase
   on an earlier cycle (first seen at least half a season ago, last seen within the longest
   season). Its novelty has its own rarity. The profile is *trusted* when its novelty is under
   `PROFILE_TRUST_RATIO` of the novelty the same facts have half a season away (it predicts the
   series better than the wrong time of day does) and that shifted novelty is at least
   `PROFILE_SHAPE_FLOOR` (the series has a daily shape at all). Only a trusted profile counts: a
   level the profile has never seen at this time of day (a missing daily peak, whose levels and
   transitions are all familiar) scores by the profile's rarity, and a value whose very level
   recurs at this time of day (not beyond the range) scores only by it, so a familiar daily edge
   that jitters by a few minutes is not an anomaly. Bursty or flat series never trust their
   profile.
6. **One alert per incident.** After a score reaches `ANOMALY_THRESHOLD`, later scores within
   `SUPPRESS_S` seconds are capped just below it (as NAB's HTM and CAD-OSE detectors do).

Time constants are in seconds; lags and the short mean count points (the sequence is what is
learned). A score uses only points at or before its timestamp. NaN/inf values, timestamps that go
backwards and gaps never raise: such a point scores 0 and changes nothing; a gap decays the rarity
statistics and can expire facts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from lotabots.aiops.state import StateError, check_envelope, field, finite_number, require

__all__ = ["ANOMALY_THRESHOLD", "StateError", "StreamingDetector", "score_series"]

STATE_KIND = "lotabots.aiops.anomaly"
STATE_VERSION = 4
# Version 3 states (before the daily profile) are read and upgraded: the profile starts empty.
READABLE_VERSIONS = (3,)

# Scores at or above this are anomalies (the value NAB's optimiser picks across the corpus):
# novelty rarer than p = 10**(-0.3 * LOG10_FLOOR) = 1e-3.
ANOMALY_THRESHOLD = 0.3
# 16 levels (4 bits): a change of 1/16 of the range is a different value, finer steps are noise.
LEVELS = 16
# Facts pair the current level with each of the last 7 levels (CAD-OSE's left context length).
LAGS = 7
# A new extreme widens the range by a tenth of the span, so a slowly growing series does not
# requantise (and forget) everything at each new maximum.
RANGE_MARGIN = 0.1
# Rarity: the mean novelty of the last 3 points (one odd point is noise, three agree) against its
# one-day exponentially weighted mean and deviation.
SHORT_POINTS = 3
TAU_LONG_S = 86400.0
# A deviation of novelty under this (one fact in twenty) is never rare: keeps regular series from
# alarming on rounding of their deviation to zero.
NOVELTY_SD_FLOOR = 0.05
# p = 1e-10 scores 1.
LOG10_FLOOR = 10.0
SUPPRESS_S = 6 * 3600.0
# Warm-up: no score until this much time has been seen (novelty is high while facts are learned).
WARMUP_S = 6 * 3600.0
# The daily profile: hour-long phases of a day; trusted when its novelty is under a quarter of the
# novelty half a day away, and that is at least one point in twenty.
PHASE_BUCKETS = 24
PROFILE_LEVEL_TOLERANCE = 1
PROFILE_TRUST_RATIO = 0.25
PROFILE_SHAPE_FLOOR = 0.05
# Values are clipped to +-1e100 so the arithmetic never overflows to inf/NaN.
VALUE_LIMIT = 1e100


class _Rarity:
    """How rare the recent novelty is against its own exponentially weighted mean and deviation."""

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=SHORT_POINTS)
        self.mean = 0.0
        self.var = 0.0

    def score(self, novelty: float, dt: float) -> float:
        """The score of the short mean (judged before `novelty` joins the long-run statistics)."""
        self.recent.append(novelty)
        short = sum(self.recent) / len(self.recent)
        z = (short - self.mean) / max(math.sqrt(self.var), NOVELTY_SD_FLOOR)
        alpha = 1.0 - math.exp(-dt / TAU_LONG_S)
        deviation = novelty - self.mean
        self.mean += alpha * deviation
        self.var = (1 - alpha) * (self.var + alpha * deviation * deviation)
        return _calibrate(z)

    def to_state(self) -> dict[str, Any]:
        return {"recent": list(self.recent), "mean": self.mean, "var": self.var}

    def restore(self, body: dict[str, Any]) -> None:
        self.mean = finite_number(field(body, "mean"), "mean")
        self.var = finite_number(field(body, "var"), "var")
        require(self.var >= 0, "a novelty variance is negative")
        recent = field(body, "recent")
        require(isinstance(recent, list) and len(recent) <= SHORT_POINTS, "recent novelty is damaged")
        for value in recent:
            novelty = finite_number(value, "a novelty")
            require(0.0 <= novelty <= 1.0, "a novelty is out of range")
            self.recent.append(novelty)


class _DailyProfile:
    """Which levels recur at each phase of the shortest season (see step 5 of the module doc)."""

    def __init__(self, period_s: float, expiry_s: float) -> None:
        self.period_s = period_s
        self.expiry_s = expiry_s
        self.facts: dict[int, tuple[float, float]] = {}  # phase * LEVELS + level -> first, last seen
        self.rarity = _Rarity()
        self.shifted_mean = 0.0  # novelty of the facts half a season away

    def _phase(self, timestamp: float, shift: int = 0) -> int:
        return (int(timestamp % self.period_s / self.period_s * PHASE_BUCKETS) + shift) % PHASE_BUCKETS

    def _recurs(self, code: int, timestamp: float) -> bool:
        seen = self.facts.get(code)
        if seen is None:
            return False
        first, last = seen
        return timestamp - last <= self.expiry_s and timestamp - first >= self.period_s / 2

    def _known(self, phase: int, level: int, timestamp: float) -> bool:
        low = max(0, level - PROFILE_LEVEL_TOLERANCE)
        high = min(LEVELS - 1, level + PROFILE_LEVEL_TOLERANCE)
        return any(self._recurs(phase * LEVELS + q, timestamp) for q in range(low, high + 1))

    def update(self, timestamp: float, level: int, extreme: bool, dt: float) -> tuple[bool, bool, float]:
        """(trusted, usual, score) for this point, then learn it. Novel: no level within the
        tolerance recurs at this phase. Usual (so excused): this very level recurs here."""
        phase = self._phase(timestamp)
        code = phase * LEVELS + level
        usual = not extreme and self._recurs(code, timestamp)
        expected = usual or (not extreme and self._known(phase, level, timestamp))
        shifted = not extreme and self._known(self._phase(timestamp, PHASE_BUCKETS // 2), level, timestamp)
        alpha = 1.0 - math.exp(-dt / TAU_LONG_S)
        self.shifted_mean += alpha * ((0.0 if shifted else 1.0) - self.shifted_mean)
        seen = self.facts.get(code)
        first = seen[0] if seen is not None and timestamp - seen[1] <= self.expiry_s else timestamp
        self.facts[code] = (first, timestamp)
        trusted = (
            self.shifted_mean >= PROFILE_SHAPE_FLOOR
            and self.rarity.mean < PROFILE_TRUST_RATIO * self.shifted_mean
        )
        score = self.rarity.score(0.0 if expected else 1.0, dt)
        return trusted, usual, score

    def to_state(self, now: float | None) -> dict[str, Any]:
        facts = sorted(
            (code, first, last)
            for code, (first, last) in self.facts.items()
            if now is None or now - last <= self.expiry_s
        )
        return {
            "facts": [list(fact) for fact in facts],
            "shifted_mean": self.shifted_mean,
            **self.rarity.to_state(),
        }

    def restore(self, body: Any) -> None:
        require(isinstance(body, dict), "the daily profile is damaged")
        self.rarity.restore(body)
        self.shifted_mean = finite_number(field(body, "shifted_mean"), "shifted_mean")
        require(0.0 <= self.shifted_mean <= 1.0, "shifted_mean is out of range")
        facts = field(body, "facts")
        require(isinstance(facts, list) and len(facts) <= PHASE_BUCKETS * LEVELS, "profile facts are damaged")
        for fact in facts:
            require(isinstance(fact, list) and len(fact) == 3, "a profile fact is damaged")
            code, first, last = fact
            require(_is_int(code) and 0 <= code < PHASE_BUCKETS * LEVELS, "a profile fact code is damaged")
            self.facts[code] = (finite_number(first, "a fact time"), finite_number(last, "a fact time"))


class StreamingDetector:
    """One per series. `update` returns a score in [0, 1]; never raises on NaN/inf/gaps."""

    def __init__(
        self,
        *,
        season_s: Sequence[int] = (86400, 604800),
        warmup_s: float = WARMUP_S,
        daily_profile: bool = True,
    ) -> None:
        self.season_s = tuple(int(s) for s in season_s)
        # A deployment's detectors learn for WARMUP_S; the local stack, minutes old, shortens it.
        self.warmup_s = max(0.0, float(warmup_s))
        positive = [s for s in self.season_s if s > 0]
        # facts unseen for the longest season are forgotten (never, without a season)
        self._expiry: float | None = float(max(positive)) if positive else None
        # without a season there is no profile; `daily_profile=False` is the contextual detector alone
        self._profile = (
            _DailyProfile(float(min(positive)), float(max(positive))) if positive and daily_profile else None
        )
        self._first_t: float | None = None
        self._last_t: float | None = None
        self._low = 0.0
        self._high = 0.0
        self._levels: deque[int] = deque(maxlen=LAGS)
        self._facts: dict[int, float] = {}  # fact code -> last time seen
        self._rarity = _Rarity()
        self._last_alert: float | None = None

    def _level(self, value: float) -> int:
        if value < self._low or value > self._high:
            span = max(self._high, value) - min(self._low, value)
            if value < self._low:
                self._low = value - RANGE_MARGIN * span
            if value > self._high:
                self._high = value + RANGE_MARGIN * span
        span = self._high - self._low
        if span <= 0:
            return 0
        return min(LEVELS - 1, max(0, int((value - self._low) / span * LEVELS)))

    def _known(self, code: int, timestamp: float) -> bool:
        seen = self._facts.get(code)
        return seen is not None and (self._expiry is None or timestamp - seen <= self._expiry)

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
            self._low = self._high = value
            self._levels.append(0)
            return 0.0
        dt = timestamp - self._last_t
        self._last_t = timestamp
        extreme = value < self._low or value > self._high
        level = self._level(value)
        history = reversed(self._levels)
        codes = [(lag * LEVELS + earlier) * LEVELS + level for lag, earlier in enumerate(history)]
        if extreme:  # outside the range seen so far: new whatever its (requantised) level says
            novelty = 1.0
        else:
            novelty = sum(1 for code in codes if not self._known(code, timestamp)) / len(codes)
        for code in codes:
            self._facts[code] = timestamp
        self._levels.append(level)
        score = self._rarity.score(novelty, dt)
        if self._profile is not None:
            trusted, usual, profile_score = self._profile.update(timestamp, level, extreme, dt)
            if trusted:
                score = profile_score if usual else max(score, profile_score)
        if timestamp - self._first_t < self.warmup_s:
            return 0.0
        return self._suppress(timestamp, score)

    def _suppress(self, timestamp: float, score: float) -> float:
        if score < ANOMALY_THRESHOLD:
            return score
        if self._last_alert is not None and timestamp - self._last_alert < SUPPRESS_S:
            return min(score, ANOMALY_THRESHOLD * 0.99)
        self._last_alert = timestamp
        return score

    def to_state(self) -> dict[str, Any]:
        """JSON state; expired facts are dropped (at most LAGS * LEVELS**2 = 1,792 facts and
        PHASE_BUCKETS * LEVELS = 384 profile facts)."""
        facts = {
            code: seen
            for code, seen in self._facts.items()
            if self._last_t is None or self._known(code, self._last_t)
        }
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "season_s": list(self.season_s),
            "warmup_s": self.warmup_s,
            "first_t": self._first_t,
            "last_t": self._last_t,
            "low": self._low,
            "high": self._high,
            "levels": list(self._levels),
            "facts": [[code, seen] for code, seen in sorted(facts.items())],
            **self._rarity.to_state(),
            "last_alert": self._last_alert,
            "profile": None if self._profile is None else self._profile.to_state(self._last_t),
        }

    @classmethod
    def from_state(cls, state: Any) -> StreamingDetector:
        body = check_envelope(state, STATE_KIND, STATE_VERSION, readable=READABLE_VERSIONS)
        seasons = field(body, "season_s")
        require(
            isinstance(seasons, list)
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in seasons),
            "season_s is not a list of positive integers",
        )
        warmup = body.get("warmup_s", WARMUP_S)
        detector = cls(season_s=seasons, warmup_s=finite_number(warmup, "warmup_s"))
        for name in ("first_t", "last_t", "last_alert"):
            raw = field(body, name)
            setattr(detector, f"_{name}", None if raw is None else finite_number(raw, name))
        for name in ("low", "high"):
            setattr(detector, f"_{name}", finite_number(field(body, name), name))
        require(detector._low <= detector._high, "the range is damaged")
        detector._rarity.restore(body)
        levels = field(body, "levels")
        require(
            isinstance(levels, list)
            and len(levels) <= LAGS
            and all(_is_int(q) and 0 <= q < LEVELS for q in levels),
            "levels are damaged",
        )
        detector._levels.extend(levels)
        facts = field(body, "facts")
        require(isinstance(facts, list) and len(facts) <= LAGS * LEVELS * LEVELS, "facts are damaged")
        for fact in facts:
            require(isinstance(fact, list) and len(fact) == 2, "a fact is damaged")
            code, seen = fact
            require(_is_int(code) and 0 <= code < LAGS * LEVELS * LEVELS, "a fact code is damaged")
            detector._facts[code] = finite_number(seen, "a fact time")
        if body["version"] == STATE_VERSION:  # an older state's profile starts empty
            profile = field(body, "profile")
            if profile is None:
                detector._profile = None
            elif detector._profile is None:
                raise StateError("a daily profile without a season")
            else:
                detector._profile.restore(profile)
        return detector


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _calibrate(z: float) -> float:
    """One-sided normal tail probability of z, log-scaled to [0, 1]."""
    if not math.isfinite(z):
        return 1.0
    p = 0.5 * math.erfc(z / math.sqrt(2))
    if p <= 0:
        return 1.0
    return min(1.0, max(0.0, -math.log10(p) / LOG10_FLOOR))


def score_series(points: Iterable[tuple[float, float]]) -> list[float]:
    """Scores of a whole series in one causal pass with a fresh detector."""
    detector = StreamingDetector()
    return [detector.update(t, v) for t, v in points]
