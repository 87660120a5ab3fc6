"""Text extraction that never holds a whole upload in memory.

`TextCollector` counts words over any amount of text and keeps only the first
`max_chars` characters (for search, embeddings and the excerpt). `Utf8Decoder` turns a byte
stream into text chunk by chunk and rejects anything that is not UTF-8 text. PDFs are read in
a budgeted child process (`pdf_extraction`, `pdf_worker`), which reports per page.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

EXCERPT_CHARS = 280
_WHITESPACE = re.compile(r"\s+")
_COUNT_SLICE = 64 * 1024
# What no database text column takes: NUL (PostgreSQL refuses it) and lone UTF-16 surrogates
# (not encodable as UTF-8). A PDF's fonts can map glyphs to either.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


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
    # Set when the text is partial because a budget stopped extraction (shown to the owner).
    note: str | None = None


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


def clean_text(text: str) -> str:
    """`text` without characters a database cannot store (NUL dropped, lone surrogates → U+FFFD)."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", text)


class WordCounter:
    """Whitespace-separated words over text fed in pieces (a word may span two pieces)."""

    def __init__(self) -> None:
        self._in_word = False
        self.count = 0

    def feed(self, text: str) -> None:
        # Counted in slices so that the word list of a large piece never exists all at once.
        for start in range(0, len(text), _COUNT_SLICE):
            self._count(text[start : start + _COUNT_SLICE])

    def _count(self, text: str) -> None:
        words = len(text.split())
        if words and self._in_word and not text[0].isspace():
            words -= 1  # the previous piece ended inside this word
        self.count += words
        self._in_word = not text[-1].isspace()


class TextCollector:
    """Word count over everything fed; keeps at most `max_chars` characters of it."""

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._kept = 0
        self._truncated = False
        self._words = WordCounter()
        self._counted_elsewhere = 0

    @property
    def word_count(self) -> int:
        return self._words.count + self._counted_elsewhere

    def feed(self, text: str) -> None:
        if not text:
            return
        self._words.feed(text)
        self._keep(text)

    def add_counted(self, text: str, words: int, *, cut: bool) -> None:
        """A piece whose words were counted by whoever extracted it (`cut`: it was shortened)."""
        self._counted_elsewhere += words
        self._truncated = self._truncated or cut
        self._keep(text)

    def _keep(self, text: str) -> None:
        room = self._max_chars - self._kept
        if room <= 0:
            self._truncated = True
            return
        if len(text) > room:
            text = text[:room]
            self._truncated = True
        self._parts.append(text)
        self._kept += len(text)

    def finish(self, page_count: int | None = None, note: str | None = None) -> ExtractedText:
        text = "".join(self._parts)
        return ExtractedText(
            text=text,
            word_count=self.word_count,
            truncated=self._truncated or note is not None,
            excerpt=make_excerpt(text),
            page_count=page_count,
            note=note,
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
