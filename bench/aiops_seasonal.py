"""The daily profile on synthetic daily-shaped series: data the detector was not built on.

Four shapes (a sine, office hours, office hours with quiet weekends, two daily traffic peaks),
each at 2% and 10% multiplicative Gaussian noise, 28 days of five-minute points, three seeds.
False alarms: points scoring at or above `ANOMALY_THRESHOLD` after the third day of the clean
series (it has no anomaly). Detections: the same series with three injected anomalies, each
counted when a score reaches the threshold inside its window: a spike (x2.5 for 15 minutes on day
20 at 10:00 UTC, window 3 h), a missing day (day 24 held at the night level all day) and a level
shift (x1.5 from day 26 on, window 6 h). The detector with its daily profile and without it
(`daily_profile=False`, the contextual detector alone) see the same points.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from lotabots.aiops import anomaly

STEP_S = 300
DAY_POINTS = 288
DAYS = 28
SEEDS = (1, 2, 3)
NOISES = (0.02, 0.10)


def _sine(hour: float, _weekday: int) -> float:
    return 100 + 50 * math.sin(2 * math.pi * hour / 24)


def _office(hour: float, _weekday: int) -> float:
    return 80.0 if 9 <= hour < 18 else 20.0


def _office_weekends(hour: float, weekday: int) -> float:
    return _office(hour, weekday) if weekday < 5 else 25.0


def _traffic(hour: float, _weekday: int) -> float:
    return 50 + 40 * math.exp(-(((hour - 20) % 24) ** 2) / 8) + 30 * math.exp(-((hour - 12) ** 2) / 4)


SHAPES: dict[str, Callable[[float, int], float]] = {
    "sine": _sine,
    "office hours": _office,
    "office hours, quiet weekends": _office_weekends,
    "two traffic peaks": _traffic,
}


def _series(shape: Callable[[float, int], float], noise: float, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    out = []
    for i in range(DAYS * DAY_POINTS):
        t = float(i * STEP_S)
        base = shape(t % 86400 / 3600, int(t // 86400) % 7)
        out.append((t, base * (1 + noise * rng.gauss(0, 1))))
    return out


def _injected(
    points: list[tuple[float, float]], shape: Callable[[float, int], float], noise: float, seed: int
) -> tuple[list[tuple[float, float]], list[tuple[int, int]]]:
    rng = random.Random(seed + 1000)
    values = [v for _, v in points]
    spike = 20 * DAY_POINTS + 10 * 12
    for i in range(spike, spike + 3):
        values[i] *= 2.5
    night = min(shape(h / 4, 0) for h in range(96))
    quiet = 24 * DAY_POINTS
    for i in range(quiet, quiet + DAY_POINTS):
        values[i] = night * (1 + noise * rng.gauss(0, 1))
    shift = 26 * DAY_POINTS
    for i in range(shift, len(values)):
        values[i] *= 1.5
    windows = [(spike, spike + 36), (quiet, quiet + DAY_POINTS), (shift, shift + 72)]
    return [(t, v) for (t, _), v in zip(points, values, strict=True)], windows


def _scores(points: list[tuple[float, float]], profile: bool) -> list[float]:
    detector = anomaly.StreamingDetector(daily_profile=profile)
    return [detector.update(t, v) for t, v in points]


def rows() -> list[str]:
    threshold = anomaly.ANOMALY_THRESHOLD
    out = [
        "### The daily profile on synthetic daily-shaped series\n",
        f"{len(SHAPES)} shapes x {len(NOISES)} noise levels x {len(SEEDS)} seeds, {DAYS} days of "
        "five-minute points each, generated in the run (bench/aiops_seasonal.py: shapes, noise and "
        "injected anomalies). False alarms: scores >= ANOMALY_THRESHOLD after day 3 of the clean "
        "series, per series. Detections (of 3 seeds): a spike, a missing day, a level shift. "
        "With the daily profile / the contextual detector alone, same points.\n",
        "| series | noise | false alarms per series | spike | missing day | level shift |",
        "|---|---|---|---|---|---|",
    ]
    totals = {True: [0.0, 0, 0, 0], False: [0.0, 0, 0, 0]}
    for name, shape in SHAPES.items():
        for noise in NOISES:
            cells: dict[bool, list[float]] = {}
            for profile in (True, False):
                alarms = 0
                found = [0, 0, 0]
                for seed in SEEDS:
                    clean = _series(shape, noise, seed)
                    alarms += sum(1 for s in _scores(clean, profile)[3 * DAY_POINTS :] if s >= threshold)
                    points, windows = _injected(clean, shape, noise, seed)
                    scores = _scores(points, profile)
                    for k, (start, end) in enumerate(windows):
                        found[k] += max(scores[start:end]) >= threshold
                cells[profile] = [alarms / len(SEEDS), *found]
                for k in range(4):
                    totals[profile][k] += cells[profile][k]
            on, off = cells[True], cells[False]
            out.append(
                f"| {name} | {noise:.0%} | {on[0]:.1f} / {off[0]:.1f} | "
                + " | ".join(f"{int(on[k])} / {int(off[k])}" for k in (1, 2, 3))
                + " |"
            )
    on, off = totals[True], totals[False]
    count = len(SHAPES) * len(NOISES)
    runs = count * len(SEEDS)
    out.append(
        f"| **all** | | **{on[0] / count:.1f} / {off[0] / count:.1f}** | "
        + " | ".join(f"{int(on[k])}/{runs} / {int(off[k])}/{runs}" for k in (1, 2, 3))
        + " |"
    )
    out.append("")
    return out
