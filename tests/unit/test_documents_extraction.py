"""Streaming text extraction: word counts across chunk borders, bounded text, excerpts,
UTF-8 checking and PDF reading (valid, corrupt, encrypted; hostile PDFs and budgets are in
test_documents_pdf_budgets.py)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from lotabots.documents.extraction import (
    EXCERPT_CHARS,
    TextCollector,
    UnacceptableContent,
    Utf8Decoder,
    clean_text,
    make_excerpt,
)
from tests.support.documents import extract_pdf_bytes, make_pdf


def _feed_in_chunks(data: bytes, size: int, max_chars: int = 1000) -> TextCollector:
    collector = TextCollector(max_chars)
    decoder = Utf8Decoder(collector)
    for i in range(0, len(data), size):
        decoder.feed(data[i : i + size])
    decoder.feed(b"", final=True)
    return collector


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_word_count_does_not_depend_on_where_chunks_split(chunk: int) -> None:
    data = "Zwölf Boxkämpfer jagen  Viktor\nquer über den großen Sylter Deich. ".encode() * 3
    collector = _feed_in_chunks(data, chunk)
    assert collector.word_count == 30
    assert collector.finish().text == data.decode()


def test_multibyte_characters_split_across_chunks_decode_intact() -> None:
    text = "日本語のテキスト 😀 ok"
    collector = _feed_in_chunks(text.encode(), 1)
    assert collector.finish().text == text


def test_kept_text_is_bounded_but_words_are_counted_to_the_end() -> None:
    data = b"word " * 10_000
    result = _feed_in_chunks(data, 4096, max_chars=100).finish()
    assert len(result.text) == 100
    assert result.truncated is True
    assert result.word_count == 10_000


def test_utf8_bom_is_not_part_of_the_text() -> None:
    assert _feed_in_chunks("\ufeffhello".encode(), 2).finish().text == "hello"


def test_invalid_utf8_is_rejected_with_its_offset() -> None:
    with pytest.raises(UnacceptableContent, match=r"not UTF-8 text .*offset 6"):
        _feed_in_chunks(b"hello \xff world", 4)


def test_nul_byte_means_binary_not_text() -> None:
    with pytest.raises(UnacceptableContent, match="NUL byte at offset 3"):
        _feed_in_chunks(b"abc\x00def", 2)


def test_truncated_multibyte_sequence_at_end_is_rejected() -> None:
    with pytest.raises(UnacceptableContent, match="not UTF-8"):
        _feed_in_chunks("é".encode()[:1], 1)


def test_excerpt_is_whitespace_collapsed_and_at_most_280_chars() -> None:
    text = "Lorem   ipsum\n\ndolor " + "sit amet " * 100
    excerpt = make_excerpt(text)
    assert excerpt.startswith("Lorem ipsum dolor sit")
    assert len(excerpt) <= EXCERPT_CHARS
    assert excerpt.endswith("…")
    assert make_excerpt("short") == "short"


def test_pdf_text_and_page_count_are_extracted() -> None:
    pdf = make_pdf(["Invoice number 42 for widgets", "Total due in thirty days"])
    _, result = extract_pdf_bytes(pdf)
    assert result.page_count == 2 and result.note is None
    assert "Invoice number 42" in result.text and "thirty days" in result.text
    assert result.word_count == 10


def test_corrupt_pdf_is_rejected_with_a_readable_reason() -> None:
    broken = b"%PDF-1.7\n" + b"\x00garbage that is not a pdf body\n" * 20
    with pytest.raises(UnacceptableContent, match="not a readable PDF"):
        extract_pdf_bytes(broken)


def test_truncated_pdf_is_rejected() -> None:
    pdf = make_pdf(["Some text"])
    with pytest.raises(UnacceptableContent, match="PDF"):
        extract_pdf_bytes(pdf[: len(pdf) // 3])


def test_password_protected_pdf_is_rejected() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["secret"]))))
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(UnacceptableContent, match="password-protected"):
        extract_pdf_bytes(out.getvalue())


def test_words_longer_than_the_counting_slice_count_once() -> None:
    collector = TextCollector(10)
    collector.feed("a" * 100_000 + " b " + "c" * 70_000)
    collector.feed("c tail")
    assert collector.word_count == 4


def test_words_counted_elsewhere_add_up_and_a_cut_piece_marks_the_text_truncated() -> None:
    collector = TextCollector(8)
    collector.feed("one two ")
    collector.add_counted("three", 5, cut=False)
    assert collector.word_count == 7
    assert collector.finish().text == "one two " and collector.finish().truncated is True
    other = TextCollector(100)
    other.add_counted("kept part", 9, cut=True)
    assert other.finish().truncated is True and other.finish().word_count == 9


def test_a_note_marks_the_text_partial() -> None:
    collector = TextCollector(100)
    collector.feed("all there is")
    result = collector.finish(page_count=3, note="partial text: page 2 could not be read")
    assert result.truncated is True and result.note is not None and result.page_count == 3


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain", "plain"),
        ("a\x00b", "ab"),
        ("x\ud800y", "x\ufffdy"),
        ("\udfff\x00", "\ufffd"),
        ("é😀", "é😀"),
    ],
)
def test_clean_text_leaves_only_storable_characters(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    clean_text(raw).encode("utf-8")
