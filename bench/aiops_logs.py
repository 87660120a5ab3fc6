"""Log parsing benchmark: GA/PA on Loghub-2k beside Drain3 (default configuration), lines/s."""

from __future__ import annotations

import csv
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from lotabots.aiops.logmining import parse_lines

REPEATS = 5


def load(dataset_dir: Path) -> tuple[list[str], list[str]]:
    """The `Content` lines and ground-truth templates of one Loghub-2k set."""
    path = next(dataset_dir.glob("*_structured_corrected.csv"))
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["Content"] for row in rows], [row["EventTemplate"] for row in rows]


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Loghub GA: share of lines whose predicted group is exactly their ground-truth group."""
    truth_groups: dict[str, set[int]] = defaultdict(set)
    predicted_groups: dict[str, set[int]] = defaultdict(set)
    for index, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        truth_groups[t].add(index)
        predicted_groups[p].add(index)
    correct = 0
    for members in predicted_groups.values():
        first = next(iter(members))
        if truth_groups[truth[first]] == members:
            correct += len(members)
    return correct / len(truth)


def parsing_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Loghub PA: share of lines whose template equals the ground truth (whitespace normalised)."""
    same = sum(" ".join(t.split()) == " ".join(p.split()) for t, p in zip(truth, predicted, strict=True))
    return same / len(truth)


def drain3_parse(lines: Sequence[str]) -> list[str]:
    """Drain3 with its default configuration, the final template of each line's cluster."""
    from drain3 import TemplateMiner as Drain3Miner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()  # the defaults, without looking for a drain3.ini
    miner = Drain3Miner(config=config)
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    final = {cluster.cluster_id: cluster.get_template() for cluster in miner.drain.clusters}
    return [final[i] for i in ids]


def _rate(parse: Callable[[Sequence[str]], list[str]], lines: Sequence[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    result = parse(lines)
    return result, len(lines) / (time.perf_counter() - started)


def timed_pair(lines: Sequence[str]) -> tuple[list[str], float, list[str], float]:
    """Both parsers' results and median lines/s over REPEATS fresh runs, interleaved run by run
    so that a shared machine's load changes hit both alike."""
    ours: list[float] = []
    theirs: list[float] = []
    our_result: list[str] = []
    their_result: list[str] = []
    for _ in range(REPEATS):
        our_result, rate = _rate(parse_lines, lines)
        ours.append(rate)
        their_result, rate = _rate(drain3_parse, lines)
        theirs.append(rate)
    return our_result, statistics.median(ours), their_result, statistics.median(theirs)


def evaluate(root: Path) -> list[dict[str, float | str]]:
    rows: list[dict[str, float | str]] = []
    for dataset_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        lines, truth = load(dataset_dir)
        ours, our_rate, theirs, their_rate = timed_pair(lines)
        rows.append(
            {
                "dataset": dataset_dir.name,
                "ga": grouping_accuracy(truth, ours),
                "pa": parsing_accuracy(truth, ours),
                "rate": our_rate,
                "drain3_ga": grouping_accuracy(truth, theirs),
                "drain3_pa": parsing_accuracy(truth, theirs),
                "drain3_rate": their_rate,
            }
        )
    return rows
