"""PDF extraction under budgets: every hostile variant settles in bounded time with the right
outcome — `ready` with the text that could be read (and a note when it is partial), or
`rejected` with a reason — and the worker process cannot outlive its deadline.

The PDFs are generated here (tests/support/hostile_pdfs.py); the size budgets are small
(tests/support/documents.SMALL_PDF_BUDGET: 20 pages, 512 KiB a stream, 2 MiB in all), so every
bomb is far over them. Each variant's work is asserted bounded in the worker's CPU time (a
busy machine stretches wall-clock time, not CPU time) and by the hard wall-clock bound; the
variants that test the time budget itself run with 1.5 s (0.75 s a page) and are asserted to
end within 3 s of wall-clock time, whatever the file does.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lotabots import topology
from lotabots.config import DocumentSettings
from lotabots.documents import ingest, pdf_extraction
from lotabots.documents.extraction import UnacceptableContent
from lotabots.documents.pdf_budget import PdfBudget
from tests.support import hostile_pdfs as hp
from tests.support.documents import (
    SMALL_PDF_BUDGET,
    TIME_PDF_BUDGET,
    children_cpu_seconds,
    extract_pdf_bytes,
    pdf_budget,
)

MIB = hp.MIB
# A worker's CPU seconds for any variant under the size budgets (start-up included).
CPU_BOUND_S = 2.5


def _hard_bound(overrides: dict[str, object]) -> float:
    seconds = float(overrides.get("seconds", SMALL_PDF_BUDGET["seconds"]))  # type: ignore[arg-type]
    return seconds + pdf_extraction.KILL_GRACE_S + 0.5


def _assert_bounded(name: str, overrides: dict[str, object], wall: float, cpu: float) -> None:
    assert wall < _hard_bound(overrides), f"{name}: {wall:.1f} s of wall-clock time"
    assert cpu < max(CPU_BOUND_S, _hard_bound(overrides)), f"{name}: {cpu:.1f} s of worker CPU"
    if "seconds" not in overrides:
        assert cpu < CPU_BOUND_S, f"{name}: {cpu:.1f} s of worker CPU"


def _cached(build: Callable[[], bytes]) -> Callable[[], bytes]:
    return functools.lru_cache(maxsize=1)(build)


# (builder, budget overrides, pages, text that must be there, note fragment or None)
READY = {
    "control": (lambda: hp.plain(["alpha beta", "gamma delta"]), {}, 2, ["alpha beta", "gamma delta"], None),
    "bomb between two good pages": (
        lambda: hp.bomb_between_pages(inflated=8 * MIB),
        {},
        3,
        ["first page survives", "third page survives"],
        "page 2 could not be read (a size limit was reached",
    ),
    "more pages than the page budget": (
        lambda: hp.many_pages(2_000),
        {},
        20,
        ["one of many pages"],
        "more than 20 pages (the page limit)",
    ),
    "streams small alone, large together": (
        lambda: hp.many_streams(pages=10, inflated=400 * 1024),
        {},
        5,
        ["page 1 of many streams", "page 5 of many streams"],
        "decompress to more than 2 MiB in total",
    ),
    "cyclic page tree": (hp.cyclic_page_tree, {}, 1, ["a page next to a cycle"], None),
    "form XObject that draws itself": (hp.xobject_self_reference, {}, 1, ["inside the form"], None),
    "image bomb (images are never decoded for text)": (
        lambda: hp.image_bomb(inflated=60 * MIB),
        {},
        1,
        ["page text before the form"],
        None,
    ),
    "inline image": (
        lambda: hp.inline_image(data_bytes=256 * 1024),
        {},
        1,
        ["text before an inline image", "text after an inline image"],
        None,
    ),
    "bomb in an embedded file (never read)": (
        lambda: hp.embedded_file_bomb(inflated=60 * MIB),
        {},
        1,
        ["the visible page of a PDF with an attachment"],
        None,
    ),
    "cross-reference /Prev loop": (hp.xref_loop, {}, 1, ["a page behind an xref loop"], None),
    "chained filters within the limits": (
        lambda: hp.filter_chain_bomb(["ASCIIHexDecode", "FlateDecode"], inflated=64 * 1024),
        {},
        1,
        ["filtered text"],
        None,
    ),
    "encrypted with an empty user password": (lambda: hp.encrypted(""), {}, 1, ["secret page text"], None),
}

# (builder, budget overrides, reason pattern)
REJECTED = {
    "Flate content-stream bombs on every page": (
        lambda: hp.content_stream_bomb(streams=5, inflated=8 * MIB),
        {},
        r"no page could be read; page 1: a size limit was reached",
    ),
    "slow content streams (under the size limit) on every page": (
        lambda: hp.content_stream_bomb(streams=5, inflated=8 * MIB),
        {**TIME_PDF_BUDGET, "max_stream_bytes": 16 * MIB, "max_decoded_bytes": 128 * MIB},
        r"time budget of 1.5 s ran out|took longer than 0.75 s",
    ),
    "single huge text-showing operator": (
        lambda: hp.huge_text_operator(chars=8 * MIB),
        {},
        r"size limit was reached",
    ),
    "LZW bomb": (lambda: hp.filter_chain_bomb(["LZWDecode"], inflated=MIB), {}, r"size limit was reached"),
    "RunLength bomb": (
        lambda: hp.filter_chain_bomb(["RunLengthDecode"], inflated=2 * MIB),
        {},
        r"size limit was reached",
    ),
    "ASCIIHex stream over the limit": (
        lambda: hp.filter_chain_bomb(["ASCIIHexDecode"], inflated=MIB),
        {},
        r"size limit was reached",
    ),
    "ASCII85 stream over the limit": (
        lambda: hp.filter_chain_bomb(["ASCII85Decode"], inflated=MIB),
        {},
        r"size limit was reached",
    ),
    "Flate inside Flate": (
        lambda: hp.filter_chain_bomb(["FlateDecode", "FlateDecode"], inflated=8 * MIB),
        {},
        r"size limit was reached",
    ),
    "object stream bomb": (
        lambda: hp.object_stream_bomb(inflated=8 * MIB),
        {},
        r"Limit reached while decompressing",
    ),
    "page tree nested 150 deep": (lambda: hp.deep_page_tree(150), {}, r"nested more than 100 levels"),
    "form XObject fan-out (billion laughs)": (
        lambda: hp.xobject_fanout(levels=6, fanout=10, leaf_bytes=16 * 1024),
        TIME_PDF_BUDGET,
        # The page's own slice or, on a busy machine, the document's whole budget runs out first.
        r"page 1: reading it took longer than 0\.75 s|time budget of 1\.5 s ran out",
    ),
    "memory": (
        lambda: hp.memory_hog(streams=1, inflated=100 * MIB),
        {"memory_mb": 128, "max_stream_bytes": 96 * MIB, "max_decoded_bytes": 128 * MIB},
        r"memory budget of 128 MiB ran out",
    ),
    "truncated": (hp.truncated, {}, r"not a readable PDF"),
    "corrupt body": (hp.corrupt, {}, r"not a readable PDF"),
    "non-PDF bytes with a %PDF- marker": (hp.labelled_pdf_but_zip, {}, r"not a readable PDF"),
    "password-protected": (lambda: hp.encrypted("hunter2"), {}, r"password-protected"),
}

_BUILT = {name: _cached(case[0]) for name, case in {**READY, **REJECTED}.items()}


@pytest.mark.parametrize("name", list(READY))
def test_readable_variants_are_ready_in_bounded_time(name: str) -> None:
    _, overrides, pages, fragments, note = READY[name]
    data = _BUILT[name]()
    started, cpu = time.monotonic(), children_cpu_seconds()
    result, extracted = extract_pdf_bytes(data, **overrides)
    _assert_bounded(name, overrides, time.monotonic() - started, children_cpu_seconds() - cpu)
    assert result.page_count == pages
    for fragment in fragments:
        assert fragment in extracted.text
    if note is None:
        assert result.note is None and extracted.truncated is False
    else:
        assert result.note is not None and note in result.note, result.note
        assert result.note.startswith("partial text: ")
        assert extracted.truncated is True and extracted.note == result.note


@pytest.mark.parametrize("name", list(REJECTED))
def test_hostile_variants_are_rejected_in_bounded_time(name: str) -> None:
    _, overrides, reason = REJECTED[name]
    data = _BUILT[name]()
    started, cpu = time.monotonic(), children_cpu_seconds()
    with pytest.raises(UnacceptableContent) as rejected:
        extract_pdf_bytes(data, **overrides)
    _assert_bounded(name, overrides, time.monotonic() - started, children_cpu_seconds() - cpu)
    assert re.search(reason, rejected.value.reason), rejected.value.reason
    assert len(rejected.value.reason) <= 500


def test_the_reported_bomb_settles_quickly_under_the_default_budgets() -> None:
    """The finding as reported: five 60 MiB Flate content streams (45 s of ingest before)."""
    data = hp.content_stream_bomb(streams=5, inflated=60 * MIB)
    assert len(data) < MIB
    budget = PdfBudget.starting_now(DocumentSettings())
    defaults = {k: getattr(budget, k) for k in SMALL_PDF_BUDGET}
    started, cpu = time.monotonic(), children_cpu_seconds()
    with pytest.raises(UnacceptableContent, match="size limit was reached"):
        extract_pdf_bytes(data, **defaults)
    assert time.monotonic() - started < _hard_bound(defaults)
    assert children_cpu_seconds() - cpu < CPU_BOUND_S


def test_characters_no_database_can_store_are_cleaned() -> None:
    result, extracted = extract_pdf_bytes(hp.unstorable_text())
    assert result.page_count == 1
    assert "\x00" not in extracted.text
    assert not re.search("[\ud800-\udfff]", extracted.text)
    assert "A\ufffdA" in extracted.text
    extracted.text.encode("utf-8")


def test_kept_text_is_bounded_while_words_are_counted_on_every_page() -> None:
    pages = [" ".join(["word"] * 50)] * 10
    result, extracted = extract_pdf_bytes(hp.plain(pages), max_text_chars=300)
    assert result.page_count == 10 and result.note is None
    assert len(extracted.text) == 300 and extracted.truncated is True
    assert extracted.word_count == 500


# --- the parent's backstop: a worker that ignores its deadline, crashes or looks around ------


def _fake_worker(monkeypatch: pytest.MonkeyPatch, script: str, *extra_args: str) -> None:
    def command(budget: object, path: str) -> list[str]:
        return [sys.executable, "-c", script, path, *extra_args]

    monkeypatch.setattr(pdf_extraction, "_worker_command", command)


# The fake workers sleep; 4 s leaves a busy machine time to start them and write a page.
KILL_BUDGET = {"seconds": 4.0, "page_seconds": 2.0}

_ONE_PAGE = (
    "import json, signal, sys, time, os\n"
    "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    "print(json.dumps({'page': 1, 'words': 2, 'text': 'first page\\n', 'cut': False}), flush=True)\n"
)


def test_a_worker_that_ignores_its_deadline_is_killed_and_its_pages_still_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_worker(
        monkeypatch, _ONE_PAGE + 'sys.stdout.write(\'{"page": 2, "te\'); sys.stdout.flush()\ntime.sleep(60)\n'
    )
    started = time.monotonic()
    result, extracted = extract_pdf_bytes(hp.plain(["unused"]), **KILL_BUDGET)
    assert time.monotonic() - started < _hard_bound(KILL_BUDGET)
    assert extracted.text == "first page\n" and extracted.word_count == 2
    assert result.note == "partial text: reading stopped because the time budget of 4 s ran out"
    assert result.peak_rss is None


def test_a_worker_killed_before_any_page_means_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(monkeypatch, "import time\ntime.sleep(60)\n")
    started = time.monotonic()
    with pytest.raises(UnacceptableContent, match=r"could not be read: the time budget of 4 s ran out"):
        extract_pdf_bytes(hp.plain(["unused"]), **KILL_BUDGET)
    assert time.monotonic() - started < _hard_bound(KILL_BUDGET)


def test_a_worker_that_dies_after_a_page_leaves_partial_text(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(monkeypatch, _ONE_PAGE + "os._exit(3)\n")
    result, extracted = extract_pdf_bytes(hp.plain(["unused"]))
    assert extracted.text == "first page\n"
    assert result.note is not None and "stopped unexpectedly (exit status 3)" in result.note


def test_the_worker_gets_no_credentials_and_cannot_write_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@db/lotabots")
    _fake_worker(
        monkeypatch,
        "import json, os, sys\n"
        "from lotabots.documents import pdf_budget, pdf_worker\n"
        f"budget = pdf_budget.PdfBudget.from_json({pdf_budget().to_json()!r})\n"
        "pdf_worker._limit_self(budget)\n"
        "try:\n"
        "    with open(sys.argv[2], 'wb') as out:\n"
        "        out.write(b'x' * 10)\n"
        "    wrote = 'yes'\n"
        "except OSError:\n"
        "    wrote = 'no'\n"
        "text = ' '.join(sorted(os.environ)) + ' wrote=' + wrote\n"
        "print(json.dumps({'page': 1, 'words': 1, 'text': text, 'cut': False}), flush=True)\n"
        "print(json.dumps({'done': {'stop': None}}), flush=True)\n",
        str(tmp_path / "written"),
    )
    _, extracted = extract_pdf_bytes(hp.plain(["unused"]))
    names = set(extracted.text.split())
    assert "wrote=no" in names
    assert not names & {"AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "AWS_ACCESS_KEY_ID"}
    assert "PYTHONPATH" in names
    assert (tmp_path / "written").stat().st_size == 0  # created, but not one byte written
    assert PdfBudget.from_json(pdf_budget().to_json()).max_pages == 20


# --- budgets against the function's own timeout -----------------------------------------------


def test_a_full_batch_of_budget_hitting_pdfs_fits_in_the_ingest_timeout() -> None:
    """Each record gets DOCUMENT_EXTRACT_SECONDS (+ the kill grace) and a document only starts
    with that much plus FINISH_MARGIN_S left, so a batch of bombs never outruns the timeout."""
    function = topology.function("document_ingest")
    settings = DocumentSettings()
    batch = function.queues[0].batch_size
    per_document = settings.extract_seconds + pdf_extraction.KILL_GRACE_S
    assert batch * per_document + ingest.FINISH_MARGIN_S <= function.timeout_s
    assert ingest.FINISH_MARGIN_S > pdf_extraction.KILL_GRACE_S
    assert settings.pdf_page_seconds < settings.extract_seconds
