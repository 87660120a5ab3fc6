"""Text extraction that never holds a whole upload in memory.

`TextCollector` counts words over any amount of text and keeps only the first
`max_chars` characters (for search, embeddings and the excerpt). `Utf8Decoder` turns a byte
stream into text chunk by chunk and rejects anything that is not UTF-8 text. `extract_pdf`
reads a PDF from a (spooled, seekable) file object with pypdf, page by page.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass
from typing import IO

EXCERPT_CHARS = 280
_WHITESPACE = re.compile(r"\s+")
_COUNT_SLICE = 64 * 1024


class UnacceptableContent(Exception):
    """The upload cannot be accepted; `reason` is shown to the person who uploaded it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ExtractedText:
    text: str
    word_count: int
    truncated: bool
    excerpt: str
    page_count: int | None = None


def make_excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Whitespace-collapsed start of the text, at most `limit` characters, cut at a word."""
    collapsed = _WHITESPACE.sub(" ", text[: limit * 8]).strip()
    if len(collapsed) <= limit:
        return collapsed
    cut = collapsed[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


class TextCollector:
    """Word count over everything fed; keeps at most `max_chars` characters of it."""

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._kept = 0
        self._truncated = False
        self._in_word = False
        self.word_count = 0

    def feed(self, text: str) -> None:
        if not text:
            return
        # Counted in slices so that the word list of a large chunk never exists all at once.
        for start in range(0, len(text), _COUNT_SLICE):
            self._count(text[start : start + _COUNT_SLICE])
        room = self._max_chars - self._kept
        if room <= 0:
            self._truncated = True
            return
        if len(text) > room:
            text = text[:room]
            self._truncated = True
        self._parts.append(text)
        self._kept += len(text)

    def _count(self, text: str) -> None:
        words = len(text.split())
        if words and self._in_word and not text[0].isspace():
            words -= 1  # the previous piece ended inside this word
        self.word_count += words
        self._in_word = not text[-1].isspace()

    def finish(self, page_count: int | None = None) -> ExtractedText:
        text = "".join(self._parts)
        return ExtractedText(
            text=text,
            word_count=self.word_count,
            truncated=self._truncated,
            excerpt=make_excerpt(text),
            page_count=page_count,
        )


class Utf8Decoder:
    """Incremental UTF-8 (optionally BOM-prefixed) decoding that rejects binary data."""

    def __init__(self, collector: TextCollector) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self._collector = collector
        self._offset = 0

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise UnacceptableContent(
                f"the file is not text: it contains a NUL byte at offset {self._offset + nul}"
            )
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise UnacceptableContent(
                f"the file is not UTF-8 text (invalid byte at offset {self._offset + exc.start})"
            ) from None
        self._offset += len(chunk)
        self._collector.feed(text)


def extract_pdf(fileobj: IO[bytes], collector: TextCollector) -> int:
    """Feed every page's text to `collector`; returns the page count.

    Takes an open file object (pypdf reads a *path* fully into memory, a file object lazily).
    """
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(fileobj, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnacceptableContent("the PDF is password-protected, so its text cannot be read")
        page_count = len(reader.pages)
    except UnacceptableContent:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # pypdf raises many exception types on damaged files
        raise UnacceptableContent(f"the file is not a readable PDF ({_short(exc)})") from None
    if page_count == 0:
        raise UnacceptableContent("the PDF has no pages")
    failed = 0
    for index in range(page_count):
        try:
            text = reader.pages[index].extract_text() or ""
        except MemoryError:
            raise
        except Exception:
            failed += 1
            continue
        collector.feed(text)
        collector.feed("\n")
    if failed == page_count:
        raise UnacceptableContent("the file is not a readable PDF (no page could be read)")
    return page_count


def _short(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message[:160]
