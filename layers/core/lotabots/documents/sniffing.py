"""Magic-byte type detection on the first bytes of an upload.

Only the head of the object is needed: executables and well-known binary formats are
recognised by their signatures, a PDF by its `%PDF-` header. Whether a text file really is
UTF-8 text is decided while it streams (see `extraction.Utf8Decoder`).
"""

from __future__ import annotations

from dataclasses import dataclass

# How many leading bytes sniffing wants (PDF allows its header within the first 1024 bytes).
HEAD_BYTES = 4096

TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/csv", "application/json"})
PDF_TYPE = "application/pdf"


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "pdf", "text" (plausibly), "executable", "binary"
    label: str  # what a person would call it

    @property
    def is_executable(self) -> bool:
        return self.kind == "executable"


_EXECUTABLES: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "an ELF executable"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal binary or Java class file"),
    (b"\x00asm", "a WebAssembly module"),
    (b"dex\n", "an Android DEX executable"),
)

_BINARIES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 (old Microsoft Office) file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


def _is_pe(head: bytes) -> bool:
    """MZ header whose e_lfanew points at a `PE\\0\\0` signature (or a bare DOS binary)."""
    if not head.startswith(b"MZ") or len(head) < 64:
        return False
    offset = int.from_bytes(head[60:64], "little")
    if 64 <= offset <= len(head) - 4:
        return head[offset : offset + 4] == b"PE\x00\x00"
    return b"\x00" in head[:64]


def sniff(head: bytes) -> Sniffed:
    """Classify an upload by its first bytes (pass at least HEAD_BYTES when the file has them)."""
    if _is_pe(head):
        return Sniffed("executable", "a Windows executable (PE)")
    for magic, label in _EXECUTABLES:
        if head.startswith(magic):
            return Sniffed("executable", label)
    if b"%PDF-" in head[:1024]:
        return Sniffed("pdf", "a PDF")
    for magic, label in _BINARIES:
        if head.startswith(magic):
            return Sniffed("binary", label)
    if b"\x00" in head:
        return Sniffed("binary", "binary data")
    return Sniffed("text", "text")


def mismatch_reason(declared: str, found: Sniffed) -> str | None:
    """None when the sniffed kind fits the declared type, else why it does not (for a person)."""
    if found.is_executable:
        return f"the file is {found.label}, not {declared}; executables are not accepted"
    if declared == PDF_TYPE:
        if found.kind != "pdf":
            return f"the file was declared as a PDF but is {found.label} (no %PDF- header)"
        return None
    if declared in TEXT_TYPES:
        if found.kind != "text":
            return f"the file was declared as {declared} but is {found.label}, not text"
        return None
    return f"content type {declared} is not accepted"
