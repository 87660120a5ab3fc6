"""Embedding inference (`gpu_jobs.embed`): same vectors as sentence-transformers, token chunking
on word boundaries with overlap, and no loading of a model that fails its digest check."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gpu_jobs import model_registry
from gpu_jobs.embed import Embedder
from gpu_jobs.model_registry import ModelIntegrityError

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "GPU jobs are dispatched to Modal, AWS Batch or a local worker.",
    "Ünïcödé, émojis 🚀 and punctuation!!! — all tokenised.",
    "a",
    "embedding " * 400,  # longer than the model's 256 tokens: truncated like sentence-transformers
]


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    yield Embedder(device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def reference() -> object:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_registry.model_dir("all-MiniLM-L6-v2")), device="cpu")


def test_vectors_match_sentence_transformers_encode(embedder: Embedder, reference: object) -> None:
    """Mean pooling + L2 normalisation reproduce SentenceTransformer.encode (fp32, CPU)."""
    ours = embedder.encode(SENTENCES)
    theirs = reference.encode(SENTENCES, convert_to_numpy=True)  # type: ignore[attr-defined]
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_length_sorting_keeps_the_input_order(embedder: Embedder) -> None:
    """Batches are sorted by length internally; rows still come back in input order."""
    forward = embedder.encode(SENTENCES)
    backward = embedder.encode(list(reversed(SENTENCES)))
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)


def test_document_chunks_fit_the_model_overlap_and_cover_the_text(embedder: Embedder) -> None:
    text = " ".join(f"Paragraph {i}: GPU scheduling, memory management and embeddings." for i in range(120))
    chunks = embedder.chunk(text, overlap=32)
    assert len(chunks) > 3
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "consecutive chunks overlap"
        assert after.start > before.start
    for chunk in chunks:
        assert 0 < chunk.tokens <= embedder.max_seq_length - 2
        # Cut on word boundaries: the chunk's tokens are what its own text tokenises to.
        again = embedder.tokenizer(text[chunk.start : chunk.end], add_special_tokens=False)["input_ids"]
        assert list(again) == chunk.token_ids


def test_document_vectors_equal_encoding_each_chunk_text(embedder: Embedder, reference: object) -> None:
    text = "Serverless GPU inference with batching and length sorting. " * 80
    chunks, vectors = embedder.embed_document(text)
    theirs = reference.encode([text[c.start : c.end] for c in chunks], convert_to_numpy=True)  # type: ignore[attr-defined]
    np.testing.assert_allclose(vectors, theirs, atol=1e-5)


def test_short_and_empty_documents(embedder: Embedder) -> None:
    assert len(embedder.chunk("one short sentence")) == 1
    assert embedder.chunk("") == []
    assert embedder.chunk("   \n\t ") == []
    with pytest.raises(ValueError, match="overlap"):
        embedder.chunk("text", overlap=10_000)


def test_a_model_that_fails_its_digest_is_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification happens before transformers touches the files."""
    import transformers

    source = model_registry.model_dir("all-MiniLM-L6-v2")
    target = tmp_path / "model"
    for path in source.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(path)
    (target / "tokenizer_config.json").unlink()
    (target / "tokenizer_config.json").write_text("{}")

    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("loaded an unverified model")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", must_not_load)
    with pytest.raises(ModelIntegrityError, match=r"tokenizer_config\.json"):
        Embedder(device="cpu", directory=target)
