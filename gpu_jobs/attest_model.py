"""The `attest_model` job: the model's files, checked where they are loaded.

1. The model directory (`s3://bucket/prefix/` downloaded, or `package://module/dir` shipped in
   a Python package) is hashed file by file (SHA-256), as OpenSSF model signing does.
2. When the platform has signed a baseline, `model_signing` verifies the directory against that
   signature with the platform's public key, here on the device: any changed, missing or
   added file fails it.
3. The golden inputs run through the model (mean pooling, unit length: a sentence-embedding
   model), fp16 on CUDA, fp32 on CPU; the outputs go into the evidence for the verifier to
   compare with the reference recorded at enrolment.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gpu_jobs.artifacts import ArtifactStore
from gpu_jobs.attest_hardware import write_evidence
from lotabots import aws
from lotabots.attestation.evidence import MODEL_SCHEMA
from lotabots.attestation.signing import IGNORE_PATHS
from lotabots.jobs.spec import JobSpec, parse_s3_uri

MAX_MODEL_BYTES = 20 * 1024**3
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _ignored(relative: str) -> bool:
    parts = relative.split("/")
    return parts[0] in IGNORE_PATHS or "__pycache__" in parts


def file_digests(directory: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {sha256, bytes}} for every file model-signing would hash."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(directory).as_posix()
            if not _ignored(relative):
                found[relative] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return found


@contextlib.contextmanager
def model_directory(uri: str) -> Iterator[Path]:
    """The model's files on local disk (a temporary copy for S3)."""
    if uri.startswith("package://"):
        module_name, _, inner = uri[len("package://") :].partition("/")
        # Locate the package without importing (running) it; the directory must stay inside it.
        spec = importlib.util.find_spec(module_name) if module_name.isidentifier() else None
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"{uri}: no installed package {module_name!r}")
        root = Path(next(iter(spec.submodule_search_locations))).resolve()
        directory = (root / inner).resolve()
        if directory != root and root not in directory.parents:
            raise ValueError(f"{uri} points outside the package")
        yield directory
        return
    bucket, prefix = parse_s3_uri(uri)
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    s3 = aws.client("s3")
    total = 0
    with tempfile.TemporaryDirectory(prefix="lotabots-model-") as tmp:
        root = Path(tmp)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if not relative or relative.endswith("/") or ".." in relative.split("/"):
                    continue
                total += int(item["Size"])
                if total > MAX_MODEL_BYTES:
                    raise ValueError(f"model under {uri} is larger than {MAX_MODEL_BYTES} bytes")
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
        yield root


def verify_signature(directory: Path, signature: str | None, public_key_pem: str | None) -> dict[str, Any]:
    """model-signing's own verification of the directory against the platform's signature."""
    if not signature or not public_key_pem:
        return {"present": False, "valid": None, "error": "no signed baseline yet (first attestation)"}
    from model_signing import verifying

    with tempfile.TemporaryDirectory(prefix="lotabots-sig-") as tmp:
        sig_path, key_path = Path(tmp) / "model.sig", Path(tmp) / "public.pem"
        sig_path.write_text(signature, encoding="utf-8")
        key_path.write_text(public_key_pem, encoding="utf-8")
        os.chmod(key_path, 0o600)
        try:
            verifying.Config().use_elliptic_key_verifier(public_key=key_path).verify(directory, sig_path)
        except Exception as exc:  # ValueError("Signature mismatch: ...") and parse errors alike
            return {"present": True, "valid": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    return {"present": True, "valid": True, "error": None}


def golden_outputs(directory: Path, inputs: list[str]) -> tuple[list[list[float]], str, str]:
    """Unit-length mean-pooled embeddings of the golden inputs: (outputs, precision, device)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    model = AutoModel.from_pretrained(str(directory), local_files_only=True, dtype=dtype).to(device).eval()
    encoded = tokenizer(inputs, padding=True, truncation=True, max_length=256, return_tensors="pt").to(device)
    with torch.inference_mode():
        hidden = model(**encoded).last_hidden_state.to(torch.float32)
        mask = encoded["attention_mask"].unsqueeze(-1).to(torch.float32)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        unit = torch.nn.functional.normalize(pooled, p=2, dim=1)
    outputs = [[round(float(v), 7) for v in row] for row in unit.cpu().tolist()]
    return outputs, "fp16" if dtype == torch.float16 else "fp32", device.type


def collect(spec_input: dict[str, Any]) -> dict[str, Any]:
    with model_directory(str(spec_input["artifact_uri"])) as directory:
        if not directory.is_dir():
            raise ValueError(f"model directory {directory} does not exist")
        files = file_digests(directory)
        signature_check = verify_signature(
            directory, spec_input.get("signature"), spec_input.get("public_key_pem")
        )
        outputs, precision, device = golden_outputs(directory, list(spec_input["golden_inputs"]))
    return {
        "schema": MODEL_SCHEMA,
        "attestation_id": spec_input["attestation_id"],
        "nonce": spec_input["nonce"],
        "model_id": spec_input["model_id"],
        "files": files,
        "signature_check": signature_check,
        "outputs": outputs,
        "precision": precision,
        "device": {"type": device},
    }


def run(spec: JobSpec, store: ArtifactStore, timings: dict[str, float]) -> dict[str, Any]:
    evidence = collect(spec.input)
    return write_evidence(spec, store, evidence)
