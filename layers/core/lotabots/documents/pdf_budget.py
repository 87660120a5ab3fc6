"""What one PDF extraction may spend: the contract between ingest, `pdf_extraction` (the
parent, which enforces the deadline by killing) and `pdf_worker` (the child, which enforces
everything else). It travels to the worker as JSON on its command line."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the worker imports this module: it must not pay for pydantic-settings
    from lotabots.config import DocumentSettings

MIB = 1024 * 1024


@dataclass(frozen=True)
class PdfBudget:
    """Everything one extraction may spend; `deadline` is a `time.monotonic()` value (the clock
    is system-wide on Linux and macOS, so parent and child agree on it)."""

    deadline: float
    seconds: float
    page_seconds: float
    max_pages: int
    max_stream_bytes: int
    max_decoded_bytes: int
    max_text_chars: int
    memory_mb: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PdfBudget:
        return cls(**json.loads(text))

    @classmethod
    def starting_now(cls, settings: DocumentSettings) -> PdfBudget:
        """The budget of an extraction that starts now, from DOCUMENT_* settings."""
        return cls(
            deadline=time.monotonic() + settings.extract_seconds,
            seconds=settings.extract_seconds,
            page_seconds=settings.pdf_page_seconds,
            max_pages=settings.pdf_max_pages,
            max_stream_bytes=settings.pdf_max_stream_bytes,
            max_decoded_bytes=settings.pdf_max_decoded_bytes,
            max_text_chars=settings.max_text_chars,
            memory_mb=settings.pdf_memory_mb,
        )

    @property
    def max_tree_nodes(self) -> int:
        """Page-tree nodes visited at most: room for intermediate nodes next to the pages."""
        return 4 * self.max_pages + 100

    def pypdf_limits(self) -> dict[str, Any]:
        """Overrides of `pypdf.Configuration` (per-stream limits, derived from the budget)."""
        per_stream = self.max_stream_bytes
        return {
            "maximum_declared_stream_length": per_stream,
            "array_based_stream_maximum_output_length": per_stream,
            "zlib_maximum_output_length": per_stream,
            "lzw_maximum_output_length": per_stream,
            "run_length_maximum_output_length": per_stream,
            "brotli_maximum_output_length": per_stream,
            "jbig2_maximum_output_length": per_stream,
            "image_maximum_buffer_size": per_stream,
            # Total work of one stream's filter chain (each stage's input and output counted).
            "stream_decoding_work_maximum_length": 4 * per_stream,
            # The byte-by-byte recovery of damaged Flate data is slow pure Python.
            "zlib_maximum_recovery_input_length": min(per_stream, MIB),
            "xform_maximum_invocations_per_extraction": 500,
            # Never start an external decoder on untrusted data (text needs no JBIG2 images).
            "jbig2dec_binary": None,
            "disable_legacy_handling": True,
        }
