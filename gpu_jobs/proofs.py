"""TOPLOC inference proofs for embed jobs, and their re-check (`attest_inference`).

An embed job commits, per chunk, to the top-k activations of the model's last hidden state
(`toploc.build_proofs_base64`: a polynomial through the k largest |values| in bf16). Anyone
who later runs the same model at a compatible precision on the same tokens gets activations
whose top-k agree with the proof; another model (or a much lower precision) does not. The
re-check samples chunks with the attestation's nonce, so the job could not know in advance
which chunks would be checked.

Thresholds (`ACCEPT`) follow the TOPLOC authors' approach of bounding exponent mismatches and
mantissa error among the top-k; the values here were measured on CPU fp32 vs CPU fp32 and
against other models (docs/attestation.md); GPU fp16 vs CPU fp32 is still to be calibrated.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from typing import Any

from gpu_jobs import artifacts
from gpu_jobs.artifacts import ArtifactStore
from gpu_jobs.attest_hardware import write_evidence
from lotabots.attestation.evidence import INFERENCE_SCHEMA
from lotabots.jobs.spec import JobSpec

TOPK = 128
ACCEPT = {"exp_mismatches": 16, "mant_err_mean": 10.0, "mant_err_median": 8.0}


def available() -> bool:
    try:
        import toploc  # noqa: F401
    except ImportError:
        return False
    return True


def build(hidden: Any) -> str | None:
    """The TOPLOC proof (base64) of one sequence's activations; None without toploc."""
    if not available():
        return None
    import toploc
    import torch

    activations = hidden.detach().to(torch.bfloat16).cpu()
    topk = min(TOPK, activations.numel())
    return str(toploc.build_proofs_base64([activations], 1, topk)[0])


def check(hidden: Any, proof: str) -> dict[str, Any]:
    """Compare recomputed activations with a proof: the TOPLOC statistics and a verdict."""
    import toploc
    import torch

    activations = hidden.detach().to(torch.bfloat16).cpu()
    topk = min(TOPK, activations.numel())
    result = toploc.verify_proofs_base64([activations], [proof], 1, topk)[0]
    stats = {
        "exp_mismatches": int(result.exp_mismatches),
        "mant_err_mean": float(result.mant_err_mean),
        "mant_err_median": float(result.mant_err_median),
    }
    valid = all(stats[key] <= limit for key, limit in ACCEPT.items())
    detail = ", ".join(f"{k}={v:.3g}" for k, v in stats.items())
    return {**stats, "valid": valid, "detail": detail}


def sample(nonce: str, count: int, size: int) -> list[int]:
    """`size` distinct chunk indexes drawn from SHA-256(nonce): unknown to the embed job."""
    chosen: list[int] = []
    counter = 0
    while len(chosen) < min(size, count):
        digest = hashlib.sha256(f"lotabots-toploc-sample\x00{nonce}\x00{counter}".encode()).digest()
        counter += 1
        index = struct.unpack(">Q", digest[:8])[0] % count
        if index not in chosen:
            chosen.append(index)
    return sorted(chosen)


def write_proofs(
    store: ArtifactStore, proofs: list[str | None], model: dict[str, Any], precision: str
) -> dict[str, Any]:
    """`proofs.json` next to the vectors; the embed result names it."""
    document = {"topk": TOPK, "model": model, "precision": precision, "proofs": proofs}
    stored = store.store(
        "proofs.json", json.dumps(document, separators=(",", ":")).encode(), "application/json"
    )
    return {"proofs_uri": stored.uri, "proofs_sha256": stored.sha256}


def collect(spec_input: dict[str, Any], embedder: Any) -> dict[str, Any]:
    """Re-run the sampled chunks of an embed job on this machine and check their proofs."""
    base = {
        "schema": INFERENCE_SCHEMA,
        "attestation_id": spec_input["attestation_id"],
        "nonce": spec_input["nonce"],
        "target_job_id": spec_input["target_job_id"],
        "model_digest": embedder.model_info.digest,
    }
    document = json.loads(artifacts.read_text(str(spec_input["proofs_uri"])))
    proofs: list[str | None] = document.get("proofs") or []
    chunks = embedder.chunk(artifacts.read_text(str(spec_input["text_uri"])))
    if len(chunks) != len(proofs):
        return {**base, "error": f"{len(proofs)} proofs for {len(chunks)} chunks of the job's text"}
    sequences = embedder.sequences(chunks)
    checked = []
    for index in sample(str(spec_input["nonce"]), len(chunks), int(spec_input.get("sample", 4))):
        proof = proofs[index]
        if not proof:
            checked.append(
                {"chunk": index, "valid": False, "detail": "the job wrote no proof for this chunk"}
            )
            continue
        result = check(embedder.hidden_states(sequences[index]), proof)
        checked.append({"chunk": index, **result})
    return {
        **base,
        "checked": checked,
        "claimed_model": document.get("model"),
        "precision": document.get("precision"),
    }


_cpu_embedders: dict[str, Any] = {}


def cpu_embedder(baseline: dict[str, Any] | None = None) -> Any:
    """The embed model on the CPU, whatever device the embed job used: an independent recomputation.
    One per process and baseline (a warm container reuses it); its files are checked against the
    model's attested digests (or, never attested, the packaged registry) before it loads."""
    from gpu_jobs.embed import Embedder

    key = json.dumps(baseline, sort_keys=True) if baseline else ""
    if key not in _cpu_embedders:
        _cpu_embedders.clear()
        _cpu_embedders[key] = Embedder(device="cpu", baseline=baseline)
    return _cpu_embedders[key]


def run(spec: JobSpec, store: ArtifactStore, timings: dict[str, float]) -> dict[str, Any]:
    started = time.perf_counter()
    baseline = spec.input.get("model_baseline")
    evidence = collect(spec.input, cpu_embedder(baseline if isinstance(baseline, dict) else None))
    timings["proof_check_s"] = round(time.perf_counter() - started, 4)
    return write_evidence(spec, store, evidence)
