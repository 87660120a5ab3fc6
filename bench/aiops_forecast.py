"""Forecast benchmark: sMAPE and MASE beside seasonal naive on M4 hourly and the NAB ELB series."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from lotabots.aiops.forecasting import forecast

Forecaster = Callable[[list[float], int, int], list[float]]


def smape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """M4's sMAPE in percent."""
    total = 0.0
    for a, p in zip(actual, predicted, strict=True):
        scale = abs(a) + abs(p)
        total += 0.0 if scale == 0 else 2 * abs(a - p) / scale
    return 100 * total / len(actual)


def mase(history: Sequence[float], actual: Sequence[float], predicted: Sequence[float], season: int) -> float:
    """M4's MASE: error scaled by the in-sample seasonal naive error."""
    scale = sum(abs(history[i] - history[i - season]) for i in range(season, len(history)))
    scale /= len(history) - season
    error = sum(abs(a - p) for a, p in zip(actual, predicted, strict=True)) / len(actual)
    return error / scale if scale else math.nan


def seasonal_naive(history: list[float], horizon: int, season: int) -> list[float]:
    last = history[-season:]
    return [last[i % season] for i in range(horizon)]


def ours(history: list[float], horizon: int, season: int) -> list[float]:
    return forecast(history, horizon, season=season)


def load_m4(root: Path) -> list[tuple[str, list[float], list[float]]]:
    def read(path: Path) -> dict[str, list[float]]:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        return {row[0]: [float(v) for v in row[1:] if v.strip()] for row in rows}

    train, test = read(root / "m4-hourly-train.csv"), read(root / "m4-hourly-test.csv")
    return [(name, train[name], test[name]) for name in train if name in test]


def load_elb(root: Path, horizon: int) -> tuple[list[float], list[float]]:
    with (root / "elb_request_count_8c0756.csv").open(newline="") as handle:
        values = [float(row["value"]) for row in csv.DictReader(handle)]
    return values[:-horizon], values[-horizon:]


def evaluate(
    series: Sequence[tuple[list[float], list[float]]], season: int, method: Forecaster
) -> tuple[float, float]:
    """Mean sMAPE and mean MASE of `method` over the series."""
    smapes, mases = [], []
    for history, actual in series:
        predicted = method(history, len(actual), season)
        smapes.append(smape(actual, predicted))
        mases.append(mase(history, actual, predicted, season))
    return sum(smapes) / len(smapes), sum(mases) / len(mases)
