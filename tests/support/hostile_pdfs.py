"""Hostile PDFs (and text) built in memory for the ingest-budget tests and the benchmark.

Every file here is generated, never committed: a few hundred kilobytes on disk that decompress
or expand into far more work than their size suggests. `PdfBuilder` writes objects, streams
and a classic cross-reference table byte by byte, so a test can also write what no PDF writer
would (cycles, self-references, a `/Prev` loop, a truncated tail).
"""

from __future__ import annotations

import base64
import functools
import io
import re
import zlib
from collections.abc import Callable, Iterable, Sequence

MIB = 1024 * 1024
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def deflate_repeated(pattern: bytes, total: int, *, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """Deflate `prefix`, `total` bytes of `pattern` repeated, then `suffix`, without ever
    holding the inflated bytes."""
    compressor = zlib.compressobj(9)
    chunk = pattern * max(1, MIB // len(pattern))
    out = io.BytesIO()
    out.write(compressor.compress(prefix))
    left = total
    while left > 0:
        piece = chunk[:left]
        out.write(compressor.compress(piece))
        left -= len(piece)
    out.write(compressor.compress(suffix))
    out.write(compressor.flush())
    return out.getvalue()


_RUN = re.compile(rb"(.)\1{0,127}", re.DOTALL)


def run_length(data: bytes) -> bytes:
    """RunLengthDecode encoding (a run of up to 128 equal bytes becomes two bytes)."""
    out = bytearray()
    for match in _RUN.finditer(data):
        run = match.end() - match.start()
        out += bytes((257 - run if run > 1 else 0, data[match.start()]))
    return bytes(out) + b"\x80"


@functools.lru_cache(maxsize=8)
def lzw(data: bytes) -> bytes:
    """LZWDecode encoding (pypdf's own encoder: slow, so results are cached)."""
    from pypdf._codecs._codecs import LzwCodec

    return LzwCodec().encode(data)


def ascii_hex(data: bytes) -> bytes:
    return data.hex().encode() + b">"


def ascii85(data: bytes) -> bytes:
    return base64.a85encode(data) + b"~>"


def pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1", "replace") + b")"


def text_ops(text: str) -> bytes:
    """A content stream that shows `text` in Helvetica (font resource /F1)."""
    return b"BT /F1 11 Tf 50 750 Td " + pdf_string(text) + b" Tj ET"


class PdfBuilder:
    """Objects by number, then `build()` writes header, objects, xref table and trailer."""

    def __init__(self) -> None:
        self.objects: dict[int, bytes] = {}
        self._last = 0

    def reserve(self) -> int:
        self._last += 1
        self.objects[self._last] = b"null"
        return self._last

    def add(self, body: bytes, number: int | None = None) -> int:
        if number is None:
            number = self.reserve()
        self._last = max(self._last, number)
        self.objects[number] = body
        return number

    def stream(
        self,
        encoded: bytes,
        *,
        filters: Sequence[str] = (),
        extra: bytes = b"",
        number: int | None = None,
    ) -> int:
        """A stream object whose data is already encoded with `filters` (first applied first)."""
        names = b" ".join(b"/" + name.encode() for name in filters)
        filter_entry = b""
        if len(filters) == 1:
            filter_entry = b" /Filter " + names
        elif filters:
            filter_entry = b" /Filter [" + names + b"]"
        head = b"<< /Length %d" % len(encoded) + filter_entry + extra + b" >>\nstream\n"
        return self.add(head + encoded + b"\nendstream", number)

    def text_document(self, contents: Iterable[int], *, page_extra: bytes = b"") -> int:
        """Catalog + one page per content stream number (font /F1); returns the catalog number."""
        catalog, pages, font = self.reserve(), self.reserve(), self.add(FONT)
        kids = []
        for content in contents:
            kids.append(
                self.add(
                    b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                    b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R%s >>"
                    % (pages, font, content, page_extra)
                )
            )
        refs = b" ".join(b"%d 0 R" % kid for kid in kids)
        self.add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids)), pages)
        self.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages, catalog)
        return catalog

    def build(self, *, root: int, trailer_extra: bytes = b"", prev: int | None = None) -> bytes:
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets: dict[int, int] = {}
        for number in sorted(self.objects):
            offsets[number] = len(out)
            out += b"%d 0 obj\n" % number + self.objects[number] + b"\nendobj\n"
        xref_at = len(out)
        size = max(self.objects) + 1
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        for number in range(1, size):
            if number in offsets:
                out += b"%010d 00000 n \n" % offsets[number]
            else:
                out += b"0000000000 65535 f \n"
        prev_entry = b"" if prev is None else b" /Prev %d" % (xref_at if prev < 0 else prev)
        out += b"trailer\n<< /Size %d /Root %d 0 R%s%s >>\nstartxref\n%d\n%%%%EOF\n" % (
            size,
            root,
            prev_entry,
            trailer_extra,
            xref_at,
        )
        return bytes(out)


def plain(pages: Sequence[str]) -> bytes:
    """A well-formed text PDF (the control case)."""
    builder = PdfBuilder()
    contents = [builder.stream(text_ops(text)) for text in pages]
    return builder.build(root=builder.text_document(contents))


def content_stream_bomb(*, streams: int = 5, inflated: int = 60 * MIB, op: bytes = b"(A) Tj\n") -> bytes:
    """The finding: pages whose Flate content streams inflate to `inflated` bytes each.

    Every page starts with a short readable stream, so partial text is possible; each bomb is
    its own object (pypdf caches a decoded stream, so a shared one would be decoded once)."""
    builder = PdfBuilder()
    bomb = deflate_repeated(op, inflated, prefix=b"BT /F1 11 Tf 50 700 Td ", suffix=b" ET")
    contents = []
    for index in range(streams):
        opening = builder.stream(text_ops(f"page {index + 1} opening words"))
        payload = builder.stream(bomb, filters=("FlateDecode",))
        contents.append(builder.add(b"[%d 0 R %d 0 R]" % (opening, payload)))
    return builder.build(root=builder.text_document(contents))


def bomb_between_pages(*, inflated: int = 60 * MIB) -> bytes:
    """Three pages; the middle one's content stream inflates to `inflated` bytes."""
    builder = PdfBuilder()
    bomb = deflate_repeated(b"(A) Tj\n", inflated, prefix=b"BT /F1 11 Tf 50 700 Td ", suffix=b" ET")
    contents = [
        builder.stream(text_ops("first page survives")),
        builder.stream(bomb, filters=("FlateDecode",)),
        builder.stream(text_ops("third page survives")),
    ]
    return builder.build(root=builder.text_document(contents))


def many_streams(*, pages: int, inflated: int) -> bytes:
    """`pages` pages, each with its own content stream inflating to `inflated` bytes (text then
    whitespace): each stream alone is small, together they are not."""
    builder = PdfBuilder()
    contents = [
        builder.stream(
            deflate_repeated(b" ", inflated, prefix=text_ops(f"page {n} of many streams")),
            filters=("FlateDecode",),
        )
        for n in range(1, pages + 1)
    ]
    return builder.build(root=builder.text_document(contents))


def memory_hog(*, streams: int = 8, inflated: int = 12 * MIB) -> bytes:
    """One page whose /Contents array holds `streams` streams of `inflated` bytes each: pypdf
    joins them into one buffer, so memory grows by their sum at once."""
    builder = PdfBuilder()
    parts = [
        builder.stream(deflate_repeated(b" ", inflated), filters=("FlateDecode",)) for _ in range(streams)
    ]
    refs = b" ".join(b"%d 0 R" % part for part in parts)
    return builder.build(root=builder.text_document([builder.add(b"[" + refs + b"]")]))


def unstorable_text() -> bytes:
    """A page whose font maps glyphs to NUL and to a lone UTF-16 surrogate (pypdf returns both)."""
    builder = PdfBuilder()
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Hostile def "
        b"1 begincodespacerange <00> <FF> endcodespacerange "
        b"3 beginbfchar <01> <D800> <02> <0000> <03> <0041> endbfchar "
        b"endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    to_unicode = builder.stream(cmap)
    font = builder.add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode %d 0 R >>" % to_unicode
    )
    content = builder.stream(b"BT /F1 11 Tf 50 700 Td <03010302> Tj ET")
    catalog, pages = builder.reserve(), builder.reserve()
    page = builder.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (pages, font, content)
    )
    builder.add(b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page, pages)
    builder.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages, catalog)
    return builder.build(root=catalog)


def many_pages(count: int) -> bytes:
    """`count` pages sharing one small content stream."""
    builder = PdfBuilder()
    content = builder.stream(text_ops("one of many pages"))
    return builder.build(root=builder.text_document([content] * count))


def deep_page_tree(depth: int) -> bytes:
    """A chain of `depth` nested /Pages nodes above a single page."""
    builder = PdfBuilder()
    catalog, font = builder.reserve(), builder.add(FONT)
    content = builder.stream(text_ops("the only page, deep down"))
    nodes = [builder.reserve() for _ in range(depth)]
    page = builder.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (nodes[-1], font, content)
    )
    for level, node in enumerate(nodes):
        kid = nodes[level + 1] if level + 1 < depth else page
        parent = b" /Parent %d 0 R" % nodes[level - 1] if level else b""
        builder.add(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (kid, parent), node)
    builder.add(b"<< /Type /Catalog /Pages %d 0 R >>" % nodes[0], catalog)
    return builder.build(root=catalog)


def cyclic_page_tree() -> bytes:
    """/Pages → /Pages → back to the root, next to one real page."""
    builder = PdfBuilder()
    catalog, root, inner, font = builder.reserve(), builder.reserve(), builder.reserve(), builder.add(FONT)
    content = builder.stream(text_ops("a page next to a cycle"))
    page = builder.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (root, font, content)
    )
    builder.add(b"<< /Type /Pages /Kids [%d 0 R %d 0 R] /Count 2 >>" % (page, inner), root)
    builder.add(b"<< /Type /Pages /Parent %d 0 R /Kids [%d 0 R] /Count 1 >>" % (root, root), inner)
    builder.add(b"<< /Type /Catalog /Pages %d 0 R >>" % root, catalog)
    return builder.build(root=catalog)


def xobject_fanout(*, levels: int = 8, fanout: int = 10, leaf_bytes: int = 64 * 1024) -> bytes:
    """Form XObjects that each draw the next level `fanout` times ("billion laughs"): the page
    asks for fanout**levels draws of a leaf whose content is `leaf_bytes` of text operators."""
    builder = PdfBuilder()
    font = builder.add(FONT)
    leaf_ops = b"BT /F1 11 Tf 50 700 Td " + b"(x) Tj " * (leaf_bytes // 7) + b"ET"
    below = builder.stream(
        zlib.compress(leaf_ops),
        filters=("FlateDecode",),
        extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >>"
        % font,
    )
    for _ in range(levels):
        ops = b" ".join([b"/X Do"] * fanout)
        below = builder.stream(
            ops,
            extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] "
            b"/Resources << /XObject << /X %d 0 R >> >>" % below,
        )
    return _page_drawing(builder, font, below, b"/X Do")


def xobject_self_reference() -> bytes:
    """A form XObject that draws itself."""
    builder = PdfBuilder()
    font = builder.add(FONT)
    form = builder.reserve()
    builder.stream(
        b"BT /F1 11 Tf 50 700 Td (inside the form) Tj ET /X Do /X Do",
        extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] "
        b"/Resources << /Font << /F1 %d 0 R >> /XObject << /X %d 0 R >> >>" % (font, form),
        number=form,
    )
    return _page_drawing(builder, font, form, b"/X Do")


def _page_drawing(builder: PdfBuilder, font: int, xobject: int, ops: bytes) -> bytes:
    catalog, pages = builder.reserve(), builder.reserve()
    content = builder.stream(text_ops("page text before the form") + b" " + ops)
    page = builder.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> "
        b"/XObject << /X %d 0 R /Im %d 0 R >> >> /Contents %d 0 R >>"
        % (pages, font, xobject, xobject, content)
    )
    builder.add(b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page, pages)
    builder.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages, catalog)
    return builder.build(root=catalog)


def image_bomb(*, inflated: int = 60 * MIB) -> bytes:
    """A page that draws an image XObject whose Flate data inflates to `inflated` bytes."""
    builder = PdfBuilder()
    font = builder.add(FONT)
    side = int((inflated // 3) ** 0.5)
    image = builder.stream(
        deflate_repeated(b"\x00", side * side * 3),
        filters=("FlateDecode",),
        extra=b" /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8" % (side, side),
    )
    return _page_drawing(builder, font, image, b"q 612 0 0 792 0 0 cm /Im Do Q")


def inline_image(*, data_bytes: int = 8 * MIB) -> bytes:
    """A content stream holding one inline image with `data_bytes` of data (no `EI` inside)."""
    builder = PdfBuilder()
    side = int((data_bytes // 3) ** 0.5)
    ops = (
        text_ops("text before an inline image")
        + b"\nq 100 0 0 100 0 0 cm BI /W %d /H %d /CS /RGB /BPC 8 ID\n" % (side, side),
        b"\nEI Q\n" + text_ops("text after an inline image"),
    )
    content = builder.stream(
        deflate_repeated(b"\x10\x20\x30", side * side * 3, prefix=ops[0], suffix=ops[1]),
        filters=("FlateDecode",),
    )
    return builder.build(root=builder.text_document([content]))


def huge_text_operator(*, chars: int = 32 * MIB) -> bytes:
    """A single `Tj` showing a string of `chars` characters."""
    builder = PdfBuilder()
    content = builder.stream(
        deflate_repeated(b"A", chars, prefix=b"BT /F1 11 Tf 50 700 Td (", suffix=b") Tj ET"),
        filters=("FlateDecode",),
    )
    return builder.build(root=builder.text_document([content]))


def filter_chain_bomb(filters: Sequence[str], *, inflated: int = 8 * MIB) -> bytes:
    """One page whose content stream is encoded through `filters` (the first listed is the
    first decoder applied) and decodes to text operators plus `inflated` bytes of whitespace."""
    builder = PdfBuilder()
    raw = text_ops("filtered text") + b"\n" + b" " * inflated
    encoded = raw
    for name in reversed(filters):
        encoded = _ENCODERS[name](encoded)
    opening = builder.stream(text_ops("opening words"))
    content = builder.stream(encoded, filters=filters)
    return builder.build(root=builder.text_document([builder.add(b"[%d 0 R %d 0 R]" % (opening, content))]))


_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "FlateDecode": lambda data: zlib.compress(data, 9),
    "LZWDecode": lzw,
    "RunLengthDecode": run_length,
    "ASCIIHexDecode": ascii_hex,
    "ASCII85Decode": ascii85,
}


def object_stream_bomb(*, inflated: int = 60 * MIB) -> bytes:
    """PDF 1.5 with an xref stream; the catalog lives in an object stream that inflates to
    `inflated` bytes (the catalog, then padding)."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    header = b"1 0 "
    objstm_prefix = header + catalog + b"\n"
    compressed = deflate_repeated(b" ", inflated, prefix=objstm_prefix)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    body = {
        2: b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        3: b"<< /Type /ObjStm /N 1 /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
        % (len(header), len(compressed))
        + compressed
        + b"\nendstream",
        4: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 6 0 R >> >> >>",
        6: FONT,
    }
    content = text_ops("inside an object-stream PDF")
    body[5] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    for number in sorted(body):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + body[number] + b"\nendobj\n"
    xref_number = 7
    offsets[xref_number] = len(out)
    rows = bytearray(b"\x00" + (0).to_bytes(4, "big") + (65535).to_bytes(2, "big"))
    rows += b"\x02" + (3).to_bytes(4, "big") + (0).to_bytes(2, "big")  # object 1: in stream 3
    for number in range(2, xref_number + 1):
        rows += b"\x01" + offsets[number].to_bytes(4, "big") + (0).to_bytes(2, "big")
    out += (
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
        % (xref_number, xref_number + 1, len(rows))
        + bytes(rows)
        + b"\nendstream\nendobj\n"
    )
    out += b"startxref\n%d\n%%%%EOF\n" % offsets[xref_number]
    return bytes(out)


def embedded_file_bomb(*, inflated: int = 60 * MIB) -> bytes:
    """A one-page text PDF carrying an embedded file that inflates to `inflated` bytes."""
    builder = PdfBuilder()
    content = builder.stream(text_ops("the visible page of a PDF with an attachment"))
    catalog = builder.text_document([content])
    embedded = builder.stream(
        deflate_repeated(b"0", inflated), filters=("FlateDecode",), extra=b" /Type /EmbeddedFile"
    )
    spec = builder.add(b"<< /Type /Filespec /F (bomb.txt) /EF << /F %d 0 R >> >>" % embedded)
    names = builder.add(b"<< /EmbeddedFiles << /Names [(bomb.txt) %d 0 R] >> >>" % spec)
    builder.objects[catalog] = builder.objects[catalog][:-2] + b" /Names %d 0 R >>" % names
    return builder.build(root=catalog)


def xref_loop() -> bytes:
    """A trailer whose /Prev points back at its own cross-reference table."""
    builder = PdfBuilder()
    content = builder.stream(text_ops("a page behind an xref loop"))
    return builder.build(root=builder.text_document([content]), prev=-1)


def truncated() -> bytes:
    """The first half of a normal three-page PDF."""
    whole = plain(["first page text", "second page text", "third page text"])
    return whole[: len(whole) // 2]


def corrupt() -> bytes:
    """A PDF header followed by bytes that are no PDF syntax at all."""
    noise = bytes((i * 151 + 7) % 251 for i in range(64 * 1024))
    return b"%PDF-1.7\n" + noise


def labelled_pdf_but_zip() -> bytes:
    """A ZIP-like blob with `%PDF-` within its first kilobyte (sniffing calls it a PDF)."""
    return b"PK\x03\x04" + b"\x00" * 26 + b"%PDF-1.4 not really" + bytes(range(256)) * 64


def encrypted(user_password: str) -> bytes:
    """A normal page encrypted with AES-256 (`user_password` may be empty)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain(["secret page text"]))))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- text bombs ---------------------------------------------------------------------------


def one_giant_line(size: int) -> bytes:
    """`size` bytes of text without a single newline or space."""
    return b"a" * size


def deeply_nested_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth
