"""`python -m bench NAME` rewrites only NAME's section of docs/benchmarks.md: `make load` must not
erase the other figures, and `make bench` must not erase the Load section it does not run."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import bench.__main__ as bench_main

LEGACY = """# Benchmarks

Written by `make bench`.

## Auth

auth figures

## Documents: ingest throughput

docs figures

### Hostile PDFs

hostile figures

## GPU jobs

jobs figures

## Something new

kept as it is
"""


@pytest.fixture
def fake_sections(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, int]]:
    """bench.auth and bench.load replaced by modules that count their runs."""
    runs = {"auth": 0, "load": 0}
    for key in runs:
        module = types.ModuleType(f"bench.{key}")

        def run(key: str = key) -> str:
            runs[key] += 1
            return f"## {key.title()}\n\nnew {key} figures #{runs[key]}\n"

        module.run = run  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"bench.{key}", module)
    monkeypatch.setattr(bench_main, "SECTIONS", ["bench.auth", "bench.documents", "bench.jobs", "bench.load"])
    monkeypatch.setattr(bench_main, "OUTPUT", tmp_path / "benchmarks.md")
    yield runs


def _run(monkeypatch: pytest.MonkeyPatch, *names: str) -> int:
    monkeypatch.setattr(sys, "argv", ["bench", *names])
    return bench_main.main()


def test_a_file_without_markers_is_split_at_its_headings() -> None:
    sections = bench_main.existing_sections(LEGACY)
    assert list(sections) == ["auth", "documents", "jobs", "unmatched-3"]
    assert "hostile figures" in sections["documents"]
    assert sections["unmatched-3"].startswith("## Something new")


def test_running_one_section_keeps_every_other_one(
    monkeypatch: pytest.MonkeyPatch, fake_sections: dict[str, int]
) -> None:
    bench_main.OUTPUT.write_text(LEGACY)
    assert _run(monkeypatch, "load") == 0
    text = bench_main.OUTPUT.read_text()
    assert fake_sections == {"auth": 0, "load": 1}
    for kept in ("auth figures", "docs figures", "hostile figures", "jobs figures", "kept as it is"):
        assert kept in text
    assert "new load figures #1" in text

    assert _run(monkeypatch, "auth") == 0
    text = bench_main.OUTPUT.read_text()
    assert "new auth figures #1" in text and "auth figures\n" not in text.replace("new auth figures", "")
    assert "new load figures #1" in text and "docs figures" in text
    assert text.index("new auth figures") < text.index("docs figures") < text.index("new load figures")


def test_a_full_run_skips_the_load_section_but_keeps_its_text(
    monkeypatch: pytest.MonkeyPatch, fake_sections: dict[str, int]
) -> None:
    bench_main.OUTPUT.write_text("# Benchmarks\n\n<!-- bench:load -->\n## Load\n\nload figures\n")
    monkeypatch.setattr(bench_main, "SECTIONS", ["bench.auth", "bench.load"])
    assert _run(monkeypatch) == 0
    assert fake_sections == {"auth": 1, "load": 0}
    text = bench_main.OUTPUT.read_text()
    assert "new auth figures #1" in text and "load figures" in text


def test_an_unknown_section_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, fake_sections: dict[str, int]
) -> None:
    assert _run(monkeypatch, "nonsense") == 2
    assert not bench_main.OUTPUT.exists()
