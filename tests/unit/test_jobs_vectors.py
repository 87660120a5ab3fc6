"""Vector helpers for the portable (no pgvector) similarity path, with and without numpy."""

from __future__ import annotations

import builtins
import math
from typing import Any

import pytest

from lotabots.embeddings import vectors
from tests.support.jobs import unit_vectors


def test_pack_round_trips_little_endian_float32() -> None:
    row = [0.5, -1.25, 3.0]
    blob = vectors.pack(row)
    assert blob == b"\x00\x00\x00?\x00\x00\xa0\xbf\x00\x00@@"
    assert vectors.unpack(blob) == row
    with pytest.raises(ValueError, match="divisible by 4"):
        vectors.unpack(b"\x00\x01\x02")


def test_normalise_and_mean() -> None:
    assert vectors.normalise([3.0, 4.0]) == pytest.approx([0.6, 0.8])
    assert vectors.mean([[1.0, 2.0], [3.0, 6.0]]) == [2.0, 4.0]
    with pytest.raises(ValueError):
        vectors.normalise([0.0, 0.0])
    with pytest.raises(ValueError):
        vectors.mean([])


def test_pgvector_text_format() -> None:
    assert vectors.to_pgvector([1.0, -0.5]) == "[1.0,-0.5]"


def _rank_without_numpy(monkeypatch: pytest.MonkeyPatch, query: bytes, candidates: Any) -> Any:
    real_import = builtins.__import__

    def no_numpy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "numpy":
            raise ImportError("numpy is not in the Lambda layer")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    return vectors.rank(query, candidates)


def test_rank_orders_by_cosine_and_both_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = unit_vectors(20, seed=11)
    query = vectors.pack(rows[0])
    candidates = [(f"d{i}", vectors.pack(r)) for i, r in enumerate(rows[1:], start=1)]
    with_numpy = vectors.rank(query, candidates)
    expected = sorted(
        (
            (cid, math.fsum(a * b for a, b in zip(rows[0], rows[int(cid[1:])], strict=True)))
            for cid, _ in candidates
        ),
        key=lambda item: item[1],
        reverse=True,
    )
    assert [cid for cid, _ in with_numpy] == [cid for cid, _ in expected]
    assert [s for _, s in with_numpy] == pytest.approx([s for _, s in expected], abs=1e-5)
    without = _rank_without_numpy(monkeypatch, query, candidates)
    assert [cid for cid, _ in without] == [cid for cid, _ in with_numpy]
    assert vectors.rank(query, []) == []
