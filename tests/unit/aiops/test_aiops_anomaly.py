"""The streaming detector: behaviour on seasonal data, hostile series, state."""

from __future__ import annotations

import json
import math

import pytest

from lotabots.aiops.anomaly import ANOMALY_THRESHOLD, StateError, StreamingDetector, score_series

STEP = 300.0  # five-minute points
DAY = 288


def _seasonal(days: int) -> list[tuple[float, float]]:
    return [
        (i * STEP, 100 + 40 * math.sin(2 * math.pi * i / DAY) + 3 * math.sin(i * 1.7))
        for i in range(days * DAY)
    ]


def test_spike_in_seasonal_series_scores_above_normal_points() -> None:
    """A spike scores above the threshold and above every normal point after warm-up."""
    points = _seasonal(8)
    spike_at = 7 * DAY + 100
    t, v = points[spike_at]
    points[spike_at] = (t, v + 150)
    scores = score_series(points)
    assert scores[spike_at] >= ANOMALY_THRESHOLD
    normal = scores[2 * DAY : spike_at]
    assert scores[spike_at] > max(normal)


def test_scores_are_causal() -> None:
    """A score never depends on later points."""
    points = _seasonal(3)
    full = score_series(points)
    assert score_series(points[:500]) == full[:500]


@pytest.mark.parametrize(
    "values",
    [
        [5.0] * 2000,
        [0.0] * 2000,
        [1.0],
        [math.nan] * 50,
        [math.nan, math.inf, -math.inf, 1.0, math.nan, 2.0] * 100,
        [float(i % 7) * (1 if i < 1000 else 1e9) for i in range(2000)],
        [1e308, -1e308, 1e-308, 0.0] * 100,
    ],
)
def test_hostile_series_give_sane_scores(values: list[float]) -> None:
    """Constant, single point, NaN/inf, scale change, extreme values: scores finite in [0, 1]."""
    scores = score_series((i * STEP, v) for i, v in enumerate(values))
    assert len(scores) == len(values)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_constant_series_is_not_anomalous() -> None:
    """A flat line never crosses the threshold."""
    assert max(score_series((i * STEP, 7.0) for i in range(3000))) < ANOMALY_THRESHOLD


def test_scale_change_alerts_once_then_settles() -> None:
    """After a series changes scale for good, it stops alerting within a day of points."""
    values = [10 + (i % 5) for i in range(3000)] + [1000 + 100 * (i % 5) for i in range(3000)]
    scores = score_series((i * STEP, v) for i, v in enumerate(values))
    assert max(scores[3000:3010]) >= ANOMALY_THRESHOLD
    assert max(scores[3000 + DAY :]) < ANOMALY_THRESHOLD


def test_gaps_and_out_of_order_points_do_not_raise() -> None:
    """A day-long gap and a point older than the last one are scored, not raised."""
    detector = StreamingDetector()
    for i in range(500):
        detector.update(i * STEP, 10.0 + i % 3)
    assert 0.0 <= detector.update(500 * STEP + 86400, 11.0) <= 1.0
    assert 0.0 <= detector.update(10.0, 11.0) <= 1.0
    assert 0.0 <= detector.update(math.nan, 11.0) <= 1.0


def test_state_round_trip_continues_identically() -> None:
    """A detector restored from JSON gives the same scores as one that never stopped."""
    points = _seasonal(3)
    whole = StreamingDetector()
    expected = [whole.update(t, v) for t, v in points]
    first = StreamingDetector()
    got = [first.update(t, v) for t, v in points[:400]]
    second = StreamingDetector.from_state(json.loads(json.dumps(first.to_state())))
    got += [second.update(t, v) for t, v in points[400:]]
    assert got == pytest.approx(expected)


def test_recurrent_bursts_stop_alarming_once_known() -> None:
    """An on/off series (a burst about every 6 h, its minute jittering, as a cron job writes) alarms
    at first, then its bursts are known contexts and never cross the threshold again; a burst of a
    new height still does."""
    values = [0.0] * (12 * DAY)
    for k, start in enumerate(range(36, len(values) - 12, 72)):
        jittered = start + (k * 5) % 9 - 4
        values[jittered : jittered + 4] = [5e7, 2e8, 4e8, 1e8]
    novel_at = 11 * DAY + 36
    values[novel_at : novel_at + 4] = [5e7, 2e8, 9e8, 1e8]
    scores = score_series((i * STEP, v) for i, v in enumerate(values))
    assert max(scores) >= ANOMALY_THRESHOLD
    assert max(scores[3 * DAY : novel_at]) < ANOMALY_THRESHOLD
    assert max(scores[novel_at : novel_at + 4]) >= ANOMALY_THRESHOLD


def test_state_is_bounded() -> None:
    """Two weeks of noise keep the JSON state well under the ~200 KB stored per series."""
    detector = StreamingDetector()
    for i in range(14 * DAY):
        detector.update(i * STEP, math.sin(i * 1.7) * 100 + (i * 7919 % 101))
    assert len(json.dumps(detector.to_state())) < 100_000


@pytest.mark.parametrize(
    "state",
    [
        None,
        {},
        {"kind": "lotabots.aiops.anomaly", "version": 0},
        {"kind": "lotabots.aiops.anomaly", "version": 2},
        {"kind": "lotabots.aiops.logmining", "version": 1},
    ],
)
def test_corrupt_state_raises_state_error(state: object) -> None:
    """Anything that is not a detector state of this version is a StateError."""
    with pytest.raises(StateError):
        StreamingDetector.from_state(state)


def test_damaged_fields_raise_state_error() -> None:
    """A real state with a damaged field is a StateError, not a later crash."""
    state = StreamingDetector().to_state()
    for key in list(state):
        if key in ("kind", "version"):
            continue
        broken = dict(state)
        broken[key] = "garbage"
        with pytest.raises(StateError):
            StreamingDetector.from_state(broken)


def test_the_warm_up_is_a_setting_kept_in_the_state() -> None:
    """A detector scores nothing during its warm-up; a shorter one (the local stack's) scores a
    spike sooner, and the state carries the warm-up it was created with."""
    quiet = [(60.0 * i, 10.0 + (i % 3)) for i in range(90)]
    spike = (60.0 * 90, 5000.0)
    default, short = StreamingDetector(), StreamingDetector(warmup_s=1800)
    for t, v in quiet:
        default.update(t, v)
        short.update(t, v)
    assert default.update(*spike) == 0.0
    assert short.update(*spike) >= ANOMALY_THRESHOLD
    assert StreamingDetector.from_state(short.to_state()).warmup_s == 1800


def _office_hours(days: int) -> list[tuple[float, float]]:
    """Low at night, high from 09:00 to 18:00 UTC (its start jittering by up to 10 minutes), noise."""
    points = []
    for i in range(days * DAY):
        day, minute = divmod(i * 5, 1440)
        start = 540 + (day * 7) % 3 * 5
        busy = start <= minute < 1080
        points.append((i * STEP, (80.0 if busy else 20.0) + 1.5 * math.sin(i * 1.7)))
    return points


def test_a_missing_daily_peak_is_an_anomaly() -> None:
    """A day whose busy hours never come (every level and transition familiar) alarms once the
    peak is overdue; the jittering daily edges before it never alarm after the first days."""
    points = _office_hours(10)
    quiet_day = 8 * DAY
    for i in range(quiet_day, quiet_day + DAY):
        points[i] = (points[i][0], 20.0 + 1.5 * math.sin(i * 1.7))
    scores = score_series(points)
    assert max(scores[3 * DAY : quiet_day + 9 * 12]) < ANOMALY_THRESHOLD
    assert max(scores[quiet_day + 9 * 12 : quiet_day + 18 * 12]) >= ANOMALY_THRESHOLD


def test_bursts_at_any_time_of_day_do_not_trust_a_daily_profile() -> None:
    """Bursts of familiar heights at irregular times of day: the profile would find each new hour
    novel, but it is never trusted (it predicts no better than the wrong time of day), so no
    alarm after the first days."""
    values = [0.0] * (10 * DAY)
    position = 40
    while position < len(values) - 4:
        values[position : position + 3] = [3e7, 9e7, 5e7]
        position += 37 + (position * 7919) % 61
    scores = score_series((i * STEP, v) for i, v in enumerate(values))
    assert max(scores[3 * DAY :]) < ANOMALY_THRESHOLD


def test_a_version_3_state_is_read_and_gains_an_empty_daily_profile() -> None:
    """States written before the daily profile keep their learned facts after an upgrade."""
    points = _seasonal(2)
    detector = StreamingDetector()
    for t, v in points:
        detector.update(t, v)
    old = detector.to_state()
    old["version"] = 3
    del old["profile"]
    upgraded = StreamingDetector.from_state(json.loads(json.dumps(old)))
    assert upgraded.to_state()["facts"] == detector.to_state()["facts"]
    assert upgraded.to_state()["profile"]["facts"] == []
    assert 0.0 <= upgraded.update(points[-1][0] + STEP, points[-1][1]) <= 1.0


def test_a_profile_without_a_season_is_a_state_error() -> None:
    """A state whose profile contradicts its seasons is damaged, not silently repaired."""
    state = StreamingDetector(season_s=()).to_state()
    assert state["profile"] is None
    state["profile"] = StreamingDetector().to_state()["profile"]
    with pytest.raises(StateError):
        StreamingDetector.from_state(state)


def test_a_detector_without_its_daily_profile_keeps_that_in_its_state() -> None:
    """The contextual detector alone (the benchmarks' ablation) round-trips as itself."""
    points = _office_hours(3)
    alone = StreamingDetector(daily_profile=False)
    for t, v in points[:400]:
        alone.update(t, v)
    state = alone.to_state()
    assert state["profile"] is None
    restored = StreamingDetector.from_state(json.loads(json.dumps(state)))
    assert [restored.update(t, v) for t, v in points[400:]] == [alone.update(t, v) for t, v in points[400:]]
