"""`python -m gpu_jobs capture-attestation-fixture OUT`: record real evidence on a GPU machine.

Writes, under OUT:
- `evidence.json`: a complete `attest_hardware` evidence document for a fixed, recorded nonce
  (`capture.json` names it), usable as a test fixture and replayable through the verifier;
- `capture.json`: the nonce, the matmul TFLOP/s at several sizes, the copy bandwidth, the
  device's NVML identity and posture, and the fraction of the band's spec peak each reached,
  which is what docs/attestation.md says to use to calibrate `bands.json`;
- `toploc.json` (when toploc and the embed model are installed): TOPLOC statistics of GPU
  fp16 proofs re-checked on CPU fp32, to calibrate the acceptance thresholds.
"""

from __future__ import annotations

import json
import platform
import secrets
import statistics
from pathlib import Path
from typing import Any

from gpu_jobs import attest_hardware
from lotabots.attestation import bands


def _sizes(torch: Any, device: Any) -> dict[str, float]:
    figures: dict[str, float] = {}
    sizes = (2048, 4096, 8192, 16384) if device.type == "cuda" else (256, 512)
    for n in sizes:
        a = attest_hardware.generate(torch, 1, 2, n, torch.bfloat16, device)
        b = attest_hardware.generate(torch, 3, 4, n, torch.bfloat16, device)
        _, seconds = attest_hardware._timed_matmul(torch, a, b, 5 if device.type == "cuda" else 1)
        figures[str(n)] = round(2 * n**3 / statistics.median(seconds) / 1e12, 2)
        del a, b
    return figures


def _toploc(torch: Any) -> dict[str, Any]:
    from gpu_jobs import proofs
    from gpu_jobs.embed import Embedder

    if not proofs.available() or not torch.cuda.is_available():
        return {"skipped": "needs toploc and a GPU"}
    text = " ".join(f"Sentence {i} about attestation, GPUs and proofs of inference." for i in range(400))
    gpu, cpu = Embedder(device="cuda"), Embedder(device="cpu")
    chunks = gpu.chunk(text)
    sequences = gpu.sequences(chunks)
    built: list[str | None] = [None] * len(sequences)
    gpu.encode_ids(sequences, built)
    stats = [
        proofs.check(cpu.hidden_states(seq), proof)
        for seq, proof in zip(sequences, built, strict=True)
        if proof
    ]
    return {"chunks": len(stats), "results": stats, "accept": proofs.ACCEPT}


def capture(out: Path) -> dict[str, Any]:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    nonce = secrets.token_urlsafe(32)
    evidence = attest_hardware.collect(
        {"attestation_id": "capture", "nonce": nonce, "dtype": "bf16", "cells": 24, "min_n_cpu": 256},
        job_id="capture",
    )
    (out / "evidence.json").write_text(json.dumps(evidence, separators=(",", ":"), sort_keys=True))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = evidence["device"].get("name") or "cpu"
    band = bands.for_name(name)
    spec = bands.load()
    summary: dict[str, Any] = {
        "_provenance": f"captured by `python -m gpu_jobs capture-attestation-fixture` on {name}",
        "nonce": nonce,
        "attestation_id": "capture",
        "device": evidence["device"],
        "challenge_tflops": evidence["challenge"]["tflops"],
        "challenge_n": evidence["challenge"]["n"],
        "bandwidth_gbps": evidence["bandwidth"]["gbps"],
        "tflops_by_size": _sizes(torch, device),
        "band": band.model if band else None,
        "software": {
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
        },
    }
    if band is not None:
        raw = json.loads(bands.BANDS_PATH.read_text())["models"][band.model]
        summary["fraction_of_spec_tflops"] = round(
            evidence["challenge"]["tflops"] / raw["bf16_dense_tflops"], 3
        )
        summary["fraction_of_spec_bandwidth"] = round(
            evidence["bandwidth"]["gbps"] / raw["memory_bandwidth_gbps"], 3
        )
        summary["band_tflops"], summary["band_bandwidth_gbps"] = (
            spec[band.model].tflops,
            spec[band.model].bandwidth_gbps,
        )
    (out / "capture.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    try:
        (out / "toploc.json").write_text(json.dumps(_toploc(torch), indent=1))
    except Exception as exc:  # the capture of the hardware evidence must not be lost to this
        (out / "toploc.json").write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    return summary
