"""Runs every benchmark module and writes docs/benchmarks.md.

Each module in SECTIONS exposes `run() -> str`, returning a Markdown section. A module
that fails is reported in the file rather than hiding the others' results.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

SECTIONS = ["bench.auth", "bench.documents", "bench.alerts", "bench.jobs", "bench.audit", "bench.attestation"]
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def main() -> int:
    only = set(sys.argv[1:])
    parts = [
        "# Benchmarks\n",
        "Written by `make bench` (`python -m bench`). Every figure is measured in the same run as its "
        "baseline, on the machine below; ratios, not absolute times, are what the budgets in "
        "[architecture.md](architecture.md#cross-cutting-rules) bound.\n",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}",
        f"- run at: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n",
    ]
    failed = 0
    for name in SECTIONS:
        if only and name.split(".")[-1] not in only:
            continue
        print(f"running {name} ...", flush=True)
        try:
            module = importlib.import_module(name)
            parts.append(module.run())
        except Exception:
            failed += 1
            parts.append(f"## {name}\n\nFAILED:\n\n```\n{traceback.format_exc()}\n```\n")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(parts) + "\n")
    print(f"wrote {OUTPUT}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
