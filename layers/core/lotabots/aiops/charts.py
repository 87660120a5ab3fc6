"""PNG charts of forecasts (matplotlib, Agg backend: no display, no fonts beyond the bundled one).

Only the forecast and report functions import this module: matplotlib ships in their own layer
variant (`aiops` extra), never in the core layer the API functions load (docs/aiops.md, Packaging).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

MAX_SERIES = 6


def forecast_png(series: list[dict[str, Any]], title: str) -> bytes:
    """History (solid) and forecast (dashed) of up to MAX_SERIES series, the busiest first."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.dates import DateFormatter

    chosen = sorted(series, key=lambda s: -sum(v for _, v in s.get("forecast", [])))[:MAX_SERIES]
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        for index, item in enumerate(chosen):
            color = f"C{index}"
            history = item.get("history", [])
            forecast = item.get("forecast", [])
            if history:
                axes.plot(_times(history), [v for _, v in history], color=color, label=item["name"])
            if forecast:
                axes.plot(_times(forecast), [v for _, v in forecast], color=color, linestyle="--")
        axes.set_title(title)
        axes.set_ylabel("per hour")
        axes.xaxis.set_major_formatter(DateFormatter("%m-%d %H:%M"))
        axes.grid(alpha=0.3)
        if chosen:
            axes.legend(loc="upper left", fontsize="small")
        else:
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
        figure.autofmt_xdate()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _times(points: list[list[float]] | list[tuple[float, float]]) -> list[float]:
    """Matplotlib date numbers (days since the epoch) of the points' epoch seconds."""
    from matplotlib.dates import date2num

    return [float(date2num(datetime.fromtimestamp(t, UTC))) for t, _ in points]
