"""Reference performance bands per GPU model, kept as data (`bands.json`, sources inside).

A band is the range a correct device of that model measures: matmul TFLOP/s within
`fractions.tflops` of its dense bf16 spec peak and copy bandwidth within `fractions.bandwidth`
of its memory spec. Lookalikes (H100 PCIe vs SXM, H100 vs H200) differ in bandwidth far more
than in compute, so both numbers are checked, and a device whose numbers fit another model's
band but not the claimed one's is named in the verdict.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

BANDS_PATH = Path(__file__).with_name("bands.json")


@dataclass(frozen=True)
class Band:
    model: str
    nvml_names: tuple[str, ...]
    tflops: tuple[float, float]
    bandwidth_gbps: tuple[float, float]
    memory_gib: float
    compute_capability: str
    power_limit_w: tuple[float, float]
    source: str

    def matches_name(self, name: str) -> bool:
        return any(re.search(pattern, name) for pattern in self.nvml_names)

    def fits(self, tflops: float | None, bandwidth_gbps: float | None) -> bool:
        if tflops is None or bandwidth_gbps is None:
            return False
        low_t, high_t = self.tflops
        low_b, high_b = self.bandwidth_gbps
        return low_t <= tflops <= high_t and low_b <= bandwidth_gbps <= high_b


def _band(model: str, data: dict[str, Any], fractions: dict[str, Any]) -> Band:
    tf, bw = float(data["bf16_dense_tflops"]), float(data["memory_bandwidth_gbps"])
    ft, fb = fractions["tflops"], fractions["bandwidth"]
    return Band(
        model=model,
        nvml_names=tuple(data["nvml_names"]),
        tflops=(round(tf * ft[0], 1), round(tf * ft[1], 1)),
        bandwidth_gbps=(round(bw * fb[0], 1), round(bw * fb[1], 1)),
        memory_gib=float(data["memory_gib"]),
        compute_capability=str(data["compute_capability"]),
        power_limit_w=(float(data["power_limit_w"][0]), float(data["power_limit_w"][1])),
        source=str(data["source"]),
    )


@cache
def load(path: Path = BANDS_PATH) -> dict[str, Band]:
    document = json.loads(path.read_text(encoding="utf-8"))
    return {model: _band(model, data, document["fractions"]) for model, data in document["models"].items()}


def status(path: Path = BANDS_PATH) -> str:
    return str(json.loads(path.read_text(encoding="utf-8"))["status"])


def for_name(name: str) -> Band | None:
    """The band of the model an NVML device name claims to be."""
    for band in load().values():
        if band.matches_name(name):
            return band
    return None


def fitting(tflops: float | None, bandwidth_gbps: float | None) -> list[str]:
    """Every model whose band the measurements fit."""
    return [band.model for band in load().values() if band.fits(tflops, bandwidth_gbps)]
