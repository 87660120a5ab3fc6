"""Runs every benchmark module and writes docs/benchmarks.md.

Each module in SECTIONS exposes `run() -> str`, returning a Markdown section. A module
that fails is reported in the file rather than hiding the others' results. `python -m bench aiops`
runs only the named sections and replaces just those in the existing file (each section sits
between `<!-- section: NAME -->` markers), keeping the others' last figures.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

SECTIONS = [
    "bench.auth",
    "bench.documents",
    "bench.alerts",
    "bench.jobs",
    "bench.audit",
    "bench.attestation",
    "bench.aiops",
]
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def main() -> int:
    only = set(sys.argv[1:])
    parts = [
        "# Benchmarks\n",
        "Written by `make bench` (`python -m bench`). Every figure is measured in the same run as its "
        "baseline, on the machine below; ratios, not absolute times, are what the budgets in "
        "ARCHITECTURE.md bound.\n",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}",
        f"- run at: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n",
    ]
    failed = 0
    sections: dict[str, str] = {}
    for name in SECTIONS:
        if only and name.split(".")[-1] not in only:
            continue
        print(f"running {name} ...", flush=True)
        try:
            module = importlib.import_module(name)
            body = module.run()
        except Exception:
            failed += 1
            body = f"## {name}\n\nFAILED:\n\n```\n{traceback.format_exc()}\n```\n"
        sections[name] = f"<!-- section: {name} -->\n{body}\n<!-- end: {name} -->"
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    if only and OUTPUT.exists():
        OUTPUT.write_text(_replace_sections(OUTPUT.read_text(), sections))
    else:
        OUTPUT.write_text("\n".join(parts + list(sections.values())) + "\n")
    print(f"wrote {OUTPUT}")
    return 1 if failed else 0


def _replace_sections(text: str, sections: dict[str, str]) -> str:
    """`text` with each named section replaced in place (appended when it is not there yet)."""
    for name, block in sections.items():
        start, end = f"<!-- section: {name} -->", f"<!-- end: {name} -->"
        if start in text and end in text:
            before, rest = text.split(start, 1)
            text = before + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
