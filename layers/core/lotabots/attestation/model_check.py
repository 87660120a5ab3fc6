"""Appraisal of model evidence: file digests against the signed baseline, the device-side
model-signing verification, and the golden outputs against those recorded at enrolment.

The first attestation of a model enrols it (trust on first use, said so in the claim): its
digests are signed with the platform's model-signing key and its outputs for the golden
inputs become the reference. Every later attestation must match both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy.orm import Session

from lotabots.attestation import service, signing, verifier
from lotabots.attestation.evidence import MODEL_SCHEMA, ModelEvidence
from lotabots.attestation.models import Attestation, AttestedModel
from lotabots.attestation.policies import Policy
from lotabots.attestation.verdicts import Verdict

# Largest |difference| of an output element allowed per precision pair (unit-length embeddings).
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 4e-2}


def combined_digest(files: Mapping[str, str]) -> str:
    """SHA-256 of the sorted "path sha256" lines: one value naming the whole model."""
    lines = "".join(f"{name} {sha}\n" for name, sha in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def tolerance_for(policy: Policy, reference: str | None, measured: str) -> float:
    if policy.output_tolerance > 0:
        return policy.output_tolerance
    return max(TOLERANCE.get(reference or "fp32", 4e-2), TOLERANCE.get(measured, 4e-2))


def appraise_model(
    evidence: ModelEvidence, ctx: verifier.Context, policy: Policy, model: AttestedModel
) -> Verdict:
    verdict = Verdict()
    if not verifier.check_binding(
        verdict, ctx, evidence.attestation_id, evidence.nonce, evidence.schema_, MODEL_SCHEMA
    ):
        return verdict
    if evidence.model_id != model.id:
        verdict.add("model_binding", "fail", f"evidence is about model {evidence.model_id}", "sourced-data")
        return verdict
    files = {path: f.sha256 for path, f in evidence.files.items()}
    if not files:
        verdict.add("files", "fail", "the job reported no model files", "executables")
        return verdict
    digest = combined_digest(files)
    verdict.facts = {"digest": digest, "files": len(files), "precision": evidence.precision, "_files": files}
    if len(evidence.outputs) != len(model.golden_inputs):
        verdict.add(
            "behaviour",
            "fail",
            f"{len(evidence.outputs)} outputs for {len(model.golden_inputs)} golden inputs",
            "runtime-opaque",
        )
        return verdict
    verdict.facts["_outputs"] = evidence.outputs
    if model.baseline_files is None or model.signature is None:
        verdict.add(
            "baseline",
            "pass",
            f"first attestation: {len(files)} files (digest {digest[:16]}...) and the golden outputs"
            " are recorded"
            " and signed as the baseline (trust on first use)",
            "executables",
        )
        verdict.facts["enrolled"] = True
        verdict.assurance = "self-reported"
        return verdict

    try:
        signed = signing.signed_files(model.signature)
    except ValueError as exc:
        verdict.add("signature", "fail", f"the stored model signature does not verify: {exc}", "executables")
        return verdict
    if signed != model.baseline_files:
        verdict.add(
            "signature", "fail", "the stored baseline differs from what its signature covers", "executables"
        )
        return verdict
    verdict.add(
        "signature", "pass", f"model-signing signature over {len(signed)} files verifies", "executables"
    )

    changed = sorted(p for p in set(signed) & set(files) if signed[p] != files[p])
    missing, extra = sorted(set(signed) - set(files)), sorted(set(files) - set(signed))
    if changed or missing or extra:
        parts = [
            f"changed: {', '.join(changed)}" if changed else "",
            f"missing: {', '.join(missing)}" if missing else "",
        ]
        parts.append(f"unsigned: {', '.join(extra)}" if extra else "")
        verdict.add("digests", "fail", "; ".join(p for p in parts if p), "executables")
    else:
        verdict.add("digests", "pass", f"all {len(files)} files match the signed baseline", "executables")

    device_check = evidence.signature_check or {}
    if device_check.get("valid") is True:
        verdict.add(
            "device_signature_check",
            "pass",
            "model-signing verified the files where they were loaded",
            "file-system",
        )
    else:
        verdict.add(
            "device_signature_check",
            "fail",
            f"model-signing on the device: {device_check.get('error') or 'not performed'}",
            "file-system",
        )

    allowed = tolerance_for(policy, model.reference_precision, evidence.precision)
    reference = model.reference_outputs or []
    worst = 0.0
    for got, want in zip(evidence.outputs, reference, strict=False):
        if len(got) != len(want):
            worst = float("inf")
            break
        worst = max([worst, *(abs(a - b) for a, b in zip(got, want, strict=True))])
    if worst <= allowed:
        verdict.add(
            "behaviour",
            "pass",
            f"golden outputs within {allowed:g} (max |diff| {worst:.2e})",
            "runtime-opaque",
        )
    else:
        verdict.add(
            "behaviour", "fail", f"golden outputs differ by {worst:.3g} > {allowed:g}", "runtime-opaque"
        )
    verdict.assurance = "consistent"
    return verdict


def update_model(session: Session, attestation: Attestation, verdict: Verdict) -> None:
    model = service.get_model(session, attestation.subject)
    model.last_attestation_id = attestation.id
    if not verdict.passed:
        model.status = "failed"
        return
    facts = verdict.facts or {}
    if facts.get("enrolled"):
        files = dict(facts["_files"])
        model.baseline_files = files
        model.baseline_digest = combined_digest(files)
        model.signature = signing.sign_files(model.name, files)
        model.signing_public_key = signing.public_key_pem()
        model.reference_outputs = facts["_outputs"]
        model.reference_precision = str(facts.get("precision") or "fp32")
    model.status = "attested"
    model.last_passed_attestation_id = attestation.id
