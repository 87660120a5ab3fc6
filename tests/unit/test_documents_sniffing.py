"""Magic-byte sniffing: executables and binaries are never taken for the declared type."""

from __future__ import annotations

import pytest

from lotabots.documents.sniffing import mismatch_reason, sniff
from tests.support.documents import ELF_BINARY, PE_BINARY, make_pdf


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (ELF_BINARY, "executable"),
        (PE_BINARY, "executable"),
        (b"\xcf\xfa\xed\xfe" + b"\x00" * 60, "executable"),
        (make_pdf(["x"]), "pdf"),
        (b"PK\x03\x04rest-of-zip", "binary"),
        (b"\x89PNG\r\n\x1a\n....", "binary"),
        (b"plain words\x00with a nul", "binary"),
        ("héllo, wörld".encode(), "text"),
        (b"MZ is the start of this sentence, and it is only text.", "text"),
    ],
)
def test_sniff_recognises_the_format_from_its_first_bytes(head: bytes, kind: str) -> None:
    assert sniff(head).kind == kind


def test_pdf_header_may_follow_a_little_leading_junk() -> None:
    assert sniff(b"\n\n  " + make_pdf(["x"])).kind == "pdf"


def test_executable_declared_as_pdf_is_refused_with_a_reason_naming_it() -> None:
    reason = mismatch_reason("application/pdf", sniff(ELF_BINARY))
    assert reason is not None and "ELF executable" in reason


def test_windows_executable_declared_as_text_is_refused() -> None:
    reason = mismatch_reason("text/plain", sniff(PE_BINARY))
    assert reason is not None and "Windows executable" in reason


def test_text_declared_as_pdf_is_a_mismatch() -> None:
    reason = mismatch_reason("application/pdf", sniff(b"just some words"))
    assert reason is not None and "%PDF-" in reason


def test_pdf_declared_as_markdown_is_a_mismatch() -> None:
    assert mismatch_reason("text/markdown", sniff(make_pdf(["x"]))) is not None


@pytest.mark.parametrize("declared", ["text/plain", "text/markdown", "text/csv", "application/json"])
def test_text_fits_every_text_type(declared: str) -> None:
    assert mismatch_reason(declared, sniff(b'{"a": 1}')) is None


def test_pdf_fits_pdf() -> None:
    assert mismatch_reason("application/pdf", sniff(make_pdf(["x"]))) is None
