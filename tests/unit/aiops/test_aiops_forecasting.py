"""Forecasts: accuracy on a clean seasonal series, fallbacks, and refused input."""

from __future__ import annotations

import math

import pytest

from lotabots.aiops.forecasting import detect_season, forecast


def _hourly(hours: int) -> list[float]:
    return [200 + 80 * math.sin(2 * math.pi * h / 24) + 0.5 * h for h in range(hours)]


def test_clean_seasonal_series_is_forecast_closely() -> None:
    """Two days ahead of a trending daily cycle, within 5% everywhere."""
    series = _hourly(24 * 30 + 48)
    predicted = forecast(series[:-48], 48, season=24)
    for actual, guess in zip(series[-48:], predicted, strict=True):
        assert abs(guess - actual) / actual < 0.05


def test_season_is_detected() -> None:
    """A daily cycle in hourly data is found as 24; noise-free ramps have none."""
    assert detect_season(_hourly(24 * 10)) == 24
    assert forecast(_hourly(24 * 30), 5) == pytest.approx(forecast(_hourly(24 * 30), 5, season=24))


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([3.0], [3.0, 3.0]),
        ([5.0, 5.0, 5.0], [5.0, 5.0]),
        ([math.nan, 4.0], [4.0, 4.0]),
        ([math.nan], [0.0, 0.0]),
    ],
)
def test_short_or_broken_history_falls_back(history: list[float], expected: list[float]) -> None:
    """Too short a history gives the last value; NaN is skipped; all-NaN gives zeros."""
    assert forecast(history, 2) == pytest.approx(expected)


def test_nan_in_history_is_tolerated() -> None:
    """NaNs inside a seasonal history still give finite forecasts."""
    series = _hourly(24 * 20)
    for i in range(0, len(series), 17):
        series[i] = math.nan
    predicted = forecast(series, 24, season=24)
    assert all(math.isfinite(p) for p in predicted)


@pytest.mark.parametrize(("history", "horizon"), [([], 3), ([1.0], 0), ([1.0], -2)])
def test_bad_arguments_raise_value_error(history: list[float], horizon: int) -> None:
    """An empty history or a horizon below 1 is a ValueError."""
    with pytest.raises(ValueError):
        forecast(history, horizon)
