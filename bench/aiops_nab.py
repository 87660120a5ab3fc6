"""NAB scoring, reimplemented from NAB's sweeper/optimizer (v1.1 rules), and the corpus runner.

Rules: a probationary period of min(floor(0.15 n), 750) rows is not scored; inside a window the first
detection scores tpWeight * scaledSigmoid(position) / scaledSigmoid(-1); a detection outside every
window scores fpWeight * scaledSigmoid(distance past the previous window in its widths) (-fpWeight
before the first window); a window without a detection costs fnWeight. One threshold for the whole
corpus, chosen by sweeping every distinct score (as NAB's optimizer does); the result is normalised
100 * (raw - null) / (perfect - null), with the null and perfect detectors run through the same code.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class Point:
    score: float
    weighted: float
    window: int | None  # window index in its file; None outside; -1 in the probationary period
    file: int


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def scaled_sigmoid(position: float) -> float:
    return -1.0 if position > 3.0 else 2 * _sigmoid(-5 * position) - 1.0


def probation_length(rows: int) -> float:
    return min(math.floor(PROBATION_PERCENT * rows), PROBATION_PERCENT * 5000)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def file_points(
    file_index: int,
    timestamps: Sequence[datetime],
    scores: Sequence[float],
    windows: Sequence[tuple[datetime, datetime]],
    cost: dict[str, float],
) -> list[Point]:
    """NAB's calcSweepScore: each row's weighted score if it were a detection."""
    remaining = list(windows)
    index_of = {t: i for i, t in enumerate(timestamps)}
    max_tp = scaled_sigmoid(-1.0)
    probation = probation_length(len(timestamps))
    points: list[Point] = []
    current: tuple[datetime, datetime] | None = None
    current_number = -1
    right = width = 0.0
    previous_right: float | None = None
    previous_width = 0.0
    number = -1
    for i, (t, score) in enumerate(zip(timestamps, scores, strict=True)):
        if remaining and t == remaining[0][0]:
            current = remaining.pop(0)
            number += 1
            current_number = number
            right = index_of[current[1]]
            width = float(right - index_of[current[0]] + 1)
        if current is not None:
            weighted = scaled_sigmoid(-(right - i + 1) / width) * cost["tpWeight"] / max_tp
        else:
            if previous_right is None:
                unweighted = -1.0
            else:
                unweighted = scaled_sigmoid(abs(previous_right - i) / (previous_width - 1))
            weighted = unweighted * cost["fpWeight"]
        window = current_number if current is not None else None
        if i < probation:
            window = -1
        points.append(Point(score, weighted, window, file_index))
        if current is not None and t == current[1]:
            previous_right, previous_width = right, width
            current = None
    return points


def sweep(points: list[Point], windows_per_file: dict[int, int], fn_weight: float) -> tuple[float, float]:
    """(best threshold, its raw corpus score) over every distinct score, as NAB's optimizer."""
    total_windows = sum(windows_per_file.values())
    detected: dict[tuple[int, int], float] = {}
    fp = 0.0
    tp = 0.0
    best_score = -total_windows * fn_weight + 0.0  # threshold above every score: nothing detected
    best_threshold = 1.1
    ordered = sorted(points, key=lambda p: p.score, reverse=True)
    i = 0
    while i < len(ordered):
        threshold = ordered[i].score
        while i < len(ordered) and ordered[i].score == threshold:
            point = ordered[i]
            i += 1
            if point.window == -1:
                continue
            if point.window is None:
                fp += point.weighted
                continue
            key = (point.file, point.window)
            old = detected.get(key)
            if old is None:
                detected[key] = point.weighted
                tp += point.weighted
            elif point.weighted > old:
                detected[key] = point.weighted
                tp += point.weighted - old
        raw = tp + fp - (total_windows - len(detected)) * fn_weight
        if raw > best_score:
            best_score, best_threshold = raw, threshold
    return best_threshold, best_score


def raw_at(
    points: list[Point], windows_per_file: dict[int, int], fn_weight: float, threshold: float
) -> float:
    """The raw score at one threshold (the sweep's rule for a single step)."""
    detected: dict[tuple[int, int], float] = {}
    fp = 0.0
    for point in points:
        if point.score < threshold or point.window == -1:
            continue
        if point.window is None:
            fp += point.weighted
            continue
        key = (point.file, point.window)
        detected[key] = max(detected.get(key, point.weighted), point.weighted)
    missed = sum(windows_per_file.values()) - len(detected)
    return sum(detected.values()) + fp - missed * fn_weight


@dataclass
class Corpus:
    names: list[str]
    timestamps: list[list[datetime]]
    values: list[list[float]]
    windows: list[list[tuple[datetime, datetime]]]


def load_corpus(root: Path) -> Corpus:
    labels = json.loads((root / "combined_windows.json").read_text())
    corpus = Corpus([], [], [], [])
    for path in sorted((root / "data").rglob("*.csv")):
        name = str(path.relative_to(root / "data"))
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        corpus.names.append(name)
        corpus.timestamps.append([parse_time(r["timestamp"]) for r in rows])
        corpus.values.append([float(r["value"]) for r in rows])
        corpus.windows.append([(parse_time(a), parse_time(b)) for a, b in labels.get(name, [])])
    return corpus


def score_corpus(
    corpus: Corpus, all_scores: Sequence[Sequence[float]], cost: dict[str, float]
) -> tuple[float, float]:
    """(best threshold, raw score) of one detector's scores on the corpus."""
    points: list[Point] = []
    for index, (stamps, scores, windows) in enumerate(
        zip(corpus.timestamps, all_scores, corpus.windows, strict=True)
    ):
        points.extend(file_points(index, stamps, scores, windows, cost))
    windows_per_file = {i: len(w) for i, w in enumerate(corpus.windows)}
    return sweep(points, windows_per_file, cost["fnWeight"])


def null_scores(corpus: Corpus) -> list[list[float]]:
    return [[0.5] * len(t) for t in corpus.timestamps]


def perfect_scores(corpus: Corpus) -> list[list[float]]:
    """1.0 on the first row of each window, 0 elsewhere."""
    out = []
    for stamps, windows in zip(corpus.timestamps, corpus.windows, strict=True):
        starts = {a for a, _ in windows}
        out.append([1.0 if t in starts else 0.0 for t in stamps])
    return out


Detector = Callable[[list[float], list[float]], list[float]]


def normalised(
    corpus: Corpus, detector_scores: Sequence[Sequence[float]], cost: dict[str, float]
) -> tuple[float, float]:
    """(NAB normalised score, threshold)."""
    _, null = score_corpus(corpus, null_scores(corpus), cost)
    _, perfect = score_corpus(corpus, perfect_scores(corpus), cost)
    threshold, raw = score_corpus(corpus, detector_scores, cost)
    return 100 * (raw - null) / (perfect - null), threshold


def by_category(
    corpus: Corpus, detector_scores: Sequence[Sequence[float]], cost: dict[str, float], threshold: float
) -> list[tuple[str, int, int, float | None, float]]:
    """Per category (top folder): files, windows, normalised score at the corpus threshold (None
    where the category has no window, so perfect = null), and the raw score."""
    categories = sorted({name.split("/")[0] for name in corpus.names})
    out = []
    for category in categories:
        files = [i for i, name in enumerate(corpus.names) if name.split("/")[0] == category]

        def raw(scores: Sequence[Sequence[float]], at: float, files: list[int] = files) -> float:
            points: list[Point] = []
            for i in files:
                points.extend(file_points(i, corpus.timestamps[i], scores[i], corpus.windows[i], cost))
            return raw_at(points, {i: len(corpus.windows[i]) for i in files}, cost["fnWeight"], at)

        ours = raw(detector_scores, threshold)
        null, perfect = raw(null_scores(corpus), 1.1), raw(perfect_scores(corpus), 1.0)
        windows = sum(len(corpus.windows[i]) for i in files)
        normalised = 100 * (ours - null) / (perfect - null) if perfect != null else None
        out.append((category, len(files), windows, normalised, ours))
    return out


def run_detector(corpus: Corpus, detector: Detector) -> tuple[list[list[float]], float]:
    """Scores for every file and the seconds it took."""
    started = time.perf_counter()
    scores = []
    for stamps, values in zip(corpus.timestamps, corpus.values, strict=True):
        epoch = [t.timestamp() for t in stamps]
        scores.append(detector(epoch, values))
    return scores, time.perf_counter() - started


def _q(x: float, mean: float, std: float) -> float:
    """NAB's normalProbability: P(X > x) for X ~ N(mean, std)."""
    if x < mean:
        return 1.0 - _q(2 * mean - x, mean, std)
    return 0.5 * math.erfc((x - mean) / std / math.sqrt(2))


def windowed_gaussian(_timestamps: list[float], values: list[float]) -> list[float]:
    """NAB's windowedGaussian detector (window 6400, step 100), as its source does it.

    The window's mean and std come from running sums (recomputed when the window slides).
    """
    window_size, step_size = 6400, 100
    window: list[float] = []
    step: list[float] = []
    total = squares = 0.0
    mean, std = 0.0, 1.0
    scores = []
    for value in values:
        scores.append(1 - _q(value, mean, std) if window else 0.0)
        if len(window) < window_size:
            window.append(value)
            total += value
            squares += value * value
        else:
            step.append(value)
            if len(step) < step_size:
                continue
            window = window[step_size:] + step
            step = []
            total, squares = math.fsum(window), math.fsum(v * v for v in window)
        mean = total / len(window)
        std = math.sqrt(max(squares / len(window) - mean * mean, 0.0)) or 0.000001
    return scores
