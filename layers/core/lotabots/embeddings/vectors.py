"""Float32 vector packing and cosine similarity without requiring numpy (used when present)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

EMBEDDING_DIM = 384


def pack(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def unpack(blob: bytes) -> list[float]:
    if len(blob) % 4:
        raise ValueError(f"a float32 vector blob has a length divisible by 4, not {len(blob)}")
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0 or not math.isfinite(norm):
        raise ValueError("cannot normalise a zero or non-finite vector")
    return [x / norm for x in vector]


def mean(vectors: Sequence[Sequence[float]]) -> list[float]:
    if not vectors:
        raise ValueError("no vectors to average")
    dim = len(vectors[0])
    return [math.fsum(v[i] for v in vectors) / len(vectors) for i in range(dim)]


def to_pgvector(vector: Sequence[float]) -> str:
    """pgvector's text input format."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def rank(query: bytes, candidates: Sequence[tuple[str, bytes]]) -> list[tuple[str, float]]:
    """Candidates by cosine similarity to `query`, best first (vectors are unit length)."""
    if not candidates:
        return []
    try:
        import numpy as np
    except ImportError:  # the Lambda layer has no numpy; SQLite fallback only
        q = unpack(query)
        scored = [
            (cid, math.fsum(a * b for a, b in zip(q, unpack(blob), strict=True))) for cid, blob in candidates
        ]
    else:
        q_arr = np.frombuffer(query, dtype="<f4")
        matrix = np.frombuffer(b"".join(blob for _, blob in candidates), dtype="<f4").reshape(
            len(candidates), -1
        )
        scores = matrix @ q_arr
        scored = [(cid, float(s)) for (cid, _), s in zip(candidates, scores, strict=True)]
    scored.sort(key=lambda item: item[1], reverse=True)
    return scored
