"""Runs the benchmark modules and writes docs/benchmarks.md.

Each module in SECTIONS exposes `run() -> str`, returning a Markdown section. A module
that fails is reported in the file rather than hiding the others' results; one whose figures
miss a requirement sets its module-level `FAILED = True` (its section is kept, the command
exits 1).

`python -m bench NAME...` runs only those sections and keeps every other section's text as
the file has it: each section is stored between `<!-- bench:NAME -->` markers. A file written
before the markers existed is split at its `## ` headings, each matched to the section whose
name its heading contains (what matches nothing is kept at the end).
"""

from __future__ import annotations

import importlib
import os
import platform
import re
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
    "bench.load",
]
# Run by `make bench` unless named: `load` starts a whole local stack for minutes (`make load`).
ON_REQUEST = {"load"}
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
MARKER = re.compile(r"^<!-- bench:([\w-]+) -->\n", re.MULTILINE)
# What an older file's headings call a section, where the module name is not in the heading.
HEADING_ALIASES = {"gpu jobs": "jobs"}


def short(name: str) -> str:
    return name.split(".")[-1]


def existing_sections(text: str) -> dict[str, str]:
    """The sections of a file this module wrote, by short name, without their markers."""
    found = list(MARKER.finditer(text))
    if found:
        return {
            match.group(1): text[match.end() : found[i + 1].start() if i + 1 < len(found) else len(text)]
            for i, match in enumerate(found)
        }
    sections: dict[str, str] = {}
    chunks = re.split(r"^(?=## )", text, flags=re.MULTILINE)[1:]  # [0] is the file's header
    names = [short(name) for name in SECTIONS]
    for index, chunk in enumerate(chunks):
        heading = chunk.splitlines()[0].lower()
        alias = next((key for alias, key in HEADING_ALIASES.items() if alias in heading), None)
        match = alias or next((name for name in names if re.search(rf"\b{name}\b", heading)), None)
        key = match if match and match not in sections else f"unmatched-{index}"
        sections[key] = chunk
    return sections


def header() -> str:
    return "\n".join(
        [
            "# Benchmarks\n",
            "Written by `make bench` (`python -m bench`; `python -m bench NAME` rewrites only that "
            "section, `make load` the Load section). Every figure is measured in the same run as its "
            "baseline, on the machine below; ratios, not absolute times, are what the budgets in "
            "[architecture.md](architecture.md#cross-cutting-rules) bound.\n",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}",
            f"- last written: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n",
        ]
    )


def main() -> int:
    only = set(sys.argv[1:])
    unknown = only - {short(name) for name in SECTIONS}
    if unknown:
        print(f"unknown section(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    previous = existing_sections(OUTPUT.read_text()) if OUTPUT.exists() else {}
    sections: dict[str, str] = {}
    failed = 0
    for name in SECTIONS:
        key = short(name)
        if (only and key not in only) or (not only and key in ON_REQUEST):
            if key in previous:
                sections[key] = previous[key]
            continue
        print(f"running {name} ...", flush=True)
        try:
            module = importlib.import_module(name)
            sections[key] = module.run()
            if getattr(module, "FAILED", False):  # its figures say it failed: keep them, fail the run
                failed += 1
        except Exception:
            failed += 1
            sections[key] = f"## {name}\n\nFAILED:\n\n```\n{traceback.format_exc()}\n```\n"
    sections.update({key: text for key, text in previous.items() if key not in sections})
    body = "".join(f"<!-- bench:{key} -->\n{text.strip()}\n\n" for key, text in sections.items())
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(header() + "\n" + body.rstrip("\n") + "\n")
    print(f"wrote {OUTPUT}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
