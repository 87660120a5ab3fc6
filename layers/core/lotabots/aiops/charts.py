"""PNG charts of forecasts, drawn with Pillow (ImageDraw): history solid, forecast dashed.

Why not matplotlib: it brings 76 MB (matplotlib, fontTools, contourpy, kiwisolver, Pillow) on
top of a core layer of 173 MB, and a zip function's code plus layers must stay under 250 MB
unzipped (measured: 250.7 MB with matplotlib). Pillow alone adds 21 MB. Only the planner
function imports this module: Pillow ships in its layer variant (`aiops` extra), never in the
core layer the API functions load (docs/aiops.md, Packaging).
"""

from __future__ import annotations

import io
import itertools
import math
from datetime import UTC, datetime
from typing import Any

MAX_SERIES = 6
WIDTH, HEIGHT = 1000, 450
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60
COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
GRID = (225, 225, 225)
INK = (40, 40, 40)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def forecast_png(series: list[dict[str, Any]], title: str) -> bytes:
    """History (solid) and forecast (dashed) of up to MAX_SERIES series, the busiest first."""
    from PIL import Image, ImageDraw, ImageFont

    chosen = sorted(series, key=lambda s: -sum(v for _, v in s.get("forecast", [])))[:MAX_SERIES]
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((LEFT, 12), title, fill=INK, font=font)
    points = [p for s in chosen for key in ("history", "forecast") for p in s.get(key, [])]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    draw.rectangle((LEFT, TOP, LEFT + plot_w, TOP + plot_h), outline=INK)
    if not points:
        draw.text((LEFT + plot_w // 2 - 30, TOP + plot_h // 2), "no data yet", fill=INK, font=font)
        return _png(image)
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    t1 = t1 if t1 > t0 else t0 + 3600
    top = _nice_max(max(v for _, v in points))

    def xy(t: float, v: float) -> tuple[float, float]:
        return LEFT + (t - t0) / (t1 - t0) * plot_w, TOP + plot_h - min(max(v, 0.0), top) / top * plot_h

    for i in range(1, 5):  # horizontal grid and value labels
        y = TOP + plot_h - i * plot_h / 4
        draw.line((LEFT + 1, y, LEFT + plot_w - 1, y), fill=GRID)
        draw.text((4, y - 6), f"{top * i / 4:g}", fill=INK, font=font)
    draw.text((4, TOP + plot_h - 6), "0", fill=INK, font=font)
    for i in range(6):  # time labels
        t = t0 + (t1 - t0) * i / 5
        x = LEFT + plot_w * i / 5
        draw.line((x, TOP + plot_h, x, TOP + plot_h + 4), fill=INK)
        label = datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")
        draw.text((x - 30, TOP + plot_h + 8), label, fill=INK, font=font)
    draw.text((LEFT, HEIGHT - 22), "per hour (UTC); forecast dashed", fill=INK, font=font)
    for index, item in enumerate(chosen):
        color = COLORS[index % len(COLORS)]
        history = [xy(t, v) for t, v in item.get("history", [])]
        forecast = [xy(t, v) for t, v in item.get("forecast", [])]
        if len(history) > 1:
            draw.line(history, fill=color, width=2)
        if forecast:
            _dashed(draw, ([history[-1]] if history else []) + forecast, color)
        legend_y = TOP + 6 + index * 14
        draw.line((LEFT + plot_w - 200, legend_y + 6, LEFT + plot_w - 180, legend_y + 6), fill=color, width=3)
        draw.text((LEFT + plot_w - 175, legend_y), str(item.get("name", ""))[:28], fill=INK, font=font)
    return _png(image)


def _dashed(draw: Any, line: list[tuple[float, float]], color: tuple[int, int, int], dash: float = 6) -> None:
    if len(line) == 1:
        draw.point(line[0], fill=color)
    for (x0, y0), (x1, y1) in itertools.pairwise(line):
        length = math.hypot(x1 - x0, y1 - y0)
        steps = max(1, int(length // dash))
        for k in range(0, steps, 2):
            a, b = k / steps, min(1.0, (k + 1) / steps)
            draw.line(
                (x0 + (x1 - x0) * a, y0 + (y1 - y0) * a, x0 + (x1 - x0) * b, y0 + (y1 - y0) * b),
                fill=color,
                width=2,
            )


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
