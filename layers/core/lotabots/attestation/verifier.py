"""Appraisal of hardware evidence: pure functions of the evidence, the attestation's own
record (nonce, expiry) and the policy. No database, no AWS, no torch.

Order matters only for cost: cheap binding checks first; the opened cells (regenerating one
row of A and one column of B each, in numpy) only when the evidence is bound to this
attestation. Every check becomes a claim; nothing short-circuits the verdict silently.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from datetime import datetime

from lotabots.attestation import bands, challenge, merkle
from lotabots.attestation.evidence import HARDWARE_SCHEMA, DeviceEvidence, HardwareEvidence
from lotabots.attestation.policies import Policy
from lotabots.attestation.verdicts import Outcome, Verdict


@dataclass(frozen=True)
class Context:
    """What the verifier knows independently of the evidence."""

    attestation_id: str
    nonce: str
    nonce_expires_at: datetime
    received_at: datetime
    pinned_uuids: tuple[str, ...] = ()


def check_binding(
    verdict: Verdict, ctx: Context, attestation_id: str, nonce: str, schema: str, want: str
) -> bool:
    """Schema, attestation id, nonce and freshness; False when the evidence is not this attestation's."""
    bound = True
    if schema != want:
        verdict.add("evidence_schema", "fail", f"schema {schema!r}, expected {want!r}", "sourced-data")
        bound = False
    if attestation_id != ctx.attestation_id:
        verdict.add(
            "attestation_binding",
            "fail",
            f"evidence answers attestation {attestation_id}, not {ctx.attestation_id}",
            "sourced-data",
        )
        bound = False
    else:
        verdict.add("attestation_binding", "pass", "evidence names this attestation", "sourced-data")
    if not hmac.compare_digest(nonce.encode(), ctx.nonce.encode()):
        verdict.add(
            "nonce", "fail", "evidence carries another nonce (replayed or stale evidence)", "sourced-data"
        )
        bound = False
    else:
        verdict.add("nonce", "pass", "evidence carries this attestation's nonce", "sourced-data")
    if ctx.received_at > ctx.nonce_expires_at:
        late = (ctx.received_at - ctx.nonce_expires_at).total_seconds()
        verdict.add(
            "freshness", "fail", f"evidence arrived {late:.0f} s after the nonce expired", "sourced-data"
        )
        bound = False
    else:
        verdict.add("freshness", "pass", "evidence arrived before the nonce expired", "sourced-data")
    return bound


def appraise_hardware(evidence: HardwareEvidence, ctx: Context, policy: Policy) -> Verdict:
    verdict = Verdict()
    bound = check_binding(
        verdict, ctx, evidence.attestation_id, evidence.nonce, evidence.schema_, HARDWARE_SCHEMA
    )
    device = evidence.device
    gpu = device.available and device.device == "cuda"
    verdict.facts = {
        "gpu": gpu,
        "name": device.name,
        "uuid": device.uuid,
        "tflops": evidence.challenge.tflops if evidence.challenge else None,
        "bandwidth_gbps": evidence.bandwidth.gbps if evidence.bandwidth else None,
    }
    if gpu:
        verdict.add("gpu_present", "pass", f"{device.name} ({device.uuid})", "hardware")
    else:
        outcome: Outcome = "fail" if policy.require_gpu else "warn"
        verdict.add("gpu_present", outcome, "the job ran without a GPU (CPU challenge)", "hardware")

    work_proven = bound and _check_challenge(verdict, evidence, ctx, policy, gpu)
    band_ok = gpu and _check_model_and_band(verdict, evidence, policy)
    if gpu:
        _check_posture(verdict, device, policy)
        _check_identity(verdict, device, ctx, policy)
    vendor = _check_vendor(verdict, evidence, ctx, policy)

    level = "self-reported"
    if work_proven:
        level = "consistent"
        if band_ok:
            level = "performance-proven"
            if vendor:
                level = "vendor-verified"
    verdict.assurance = level
    verdict.require_assurance(policy.min_assurance)
    return verdict


def _check_challenge(
    verdict: Verdict, evidence: HardwareEvidence, ctx: Context, policy: Policy, gpu: bool
) -> bool:
    ch = evidence.challenge
    if ch is None:
        verdict.add("challenge", "fail", "no compute challenge in the evidence", "hardware")
        return False
    problems = []
    minimum = policy.min_challenge_n_gpu if gpu else policy.min_challenge_n_cpu
    if ch.generator != challenge.GENERATOR:
        problems.append(f"generator {ch.generator!r} is not {challenge.GENERATOR}")
    if ch.dtype != policy.challenge_dtype:
        problems.append(f"computed in {ch.dtype}, the policy asks {policy.challenge_dtype}")
    if not minimum <= ch.n <= challenge.MAX_N:
        problems.append(f"matrix size {ch.n} outside [{minimum}, {challenge.MAX_N}]")
    if ch.leaf_elems != challenge.leaf_elems_for(ch.n) or ch.n % ch.leaf_elems:
        problems.append(f"leaf size {ch.leaf_elems} is not {challenge.leaf_elems_for(ch.n)} for n={ch.n}")
    if problems:
        verdict.add("challenge_parameters", "fail", "; ".join(problems), "hardware")
        return False
    verdict.add("challenge_parameters", "pass", f"n={ch.n} {ch.dtype}, {len(ch.cells)} cells", "hardware")

    wanted = challenge.open_cells(ctx.nonce, ch.root, ch.n, policy.challenge_cells)
    opened = [(cell.i, cell.j) for cell in ch.cells]
    if opened != wanted:
        verdict.add(
            "challenge_cells",
            "fail",
            "the opened cells are not the ones the nonce and the committed root select",
            "hardware",
        )
        return False
    seeds = challenge.seeds(ctx.nonce)
    leaf_count = ch.n * ch.n // ch.leaf_elems
    bad_paths, bad_values = [], []
    for cell in ch.cells:
        flat = cell.i * ch.n + cell.j
        try:
            segment = base64.b64decode(cell.segment, validate=True)
        except (binascii.Error, ValueError):
            bad_paths.append(f"({cell.i},{cell.j}) segment is not base64")
            continue
        if cell.leaf != flat // ch.leaf_elems or len(segment) != ch.leaf_elems * challenge.ELEMENT_BYTES:
            bad_paths.append(f"({cell.i},{cell.j}) leaf {cell.leaf} does not hold the cell")
            continue
        if not merkle.verify_path(
            merkle.leaf_hash(cell.leaf, segment), cell.leaf, leaf_count, cell.path, ch.root
        ):
            bad_paths.append(f"({cell.i},{cell.j}) Merkle path does not reach the root")
            continue
        offset = (flat % ch.leaf_elems) * challenge.ELEMENT_BYTES
        value = challenge.decode(ch.dtype, segment[offset : offset + challenge.ELEMENT_BYTES])[0]
        exact, abs_sum = challenge.exact_cell(seeds, cell.i, cell.j, ch.n)
        allowed = challenge.tolerance(ch.dtype, ch.n, exact, abs_sum)
        if not abs(value - exact) <= allowed:
            bad_values.append(f"({cell.i},{cell.j}) = {value!r}, expected {exact!r} ± {allowed:.3g}")
    if bad_paths:
        verdict.add("merkle", "fail", "; ".join(bad_paths[:5]), "hardware")
    else:
        verdict.add("merkle", "pass", f"{len(ch.cells)} paths reach root {ch.root[:16]}...", "hardware")
    if bad_values:
        verdict.add(
            "challenge_values",
            "fail",
            f"{len(bad_values)} of {len(ch.cells)} opened cells are wrong: " + "; ".join(bad_values[:3]),
            "hardware",
        )
    elif not bad_paths:
        verdict.add(
            "challenge_values",
            "pass",
            f"{len(ch.cells)} cells recomputed within {ch.dtype} tolerance",
            "hardware",
        )
    return not bad_paths and not bad_values


def _check_model_and_band(verdict: Verdict, evidence: HardwareEvidence, policy: Policy) -> bool:
    device = evidence.device
    band = bands.for_name(device.name or "")
    if band is None:
        outcome: Outcome = "fail" if policy.require_performance_band else "warn"
        verdict.add("gpu_model", outcome, f"no reference band for {device.name!r}", "hardware")
        return False
    problems = []
    if policy.allowed_gpu_models and band.model not in policy.allowed_gpu_models:
        problems.append(f"{band.model} is not among {', '.join(policy.allowed_gpu_models)}")
    if device.compute_capability and device.compute_capability != band.compute_capability:
        problems.append(
            f"compute capability {device.compute_capability}, {band.model} has {band.compute_capability}"
        )
    if device.memory_total_mib is not None:
        gib = device.memory_total_mib / 1024
        if not 0.85 * band.memory_gib <= gib <= 1.05 * band.memory_gib:
            problems.append(f"{gib:.0f} GiB of memory, {band.model} has {band.memory_gib:.0f}")
    if problems:
        verdict.add("gpu_model", "fail", "; ".join(problems), "hardware")
        return False
    verdict.add("gpu_model", "pass", f"{device.name} is {band.model}", "hardware")

    tflops = evidence.challenge.tflops if evidence.challenge else None
    gbps = evidence.bandwidth.gbps if evidence.bandwidth else None
    if band.fits(tflops, gbps):
        verdict.add(
            "performance_band",
            "pass",
            f"{tflops:.0f} TFLOP/s and {gbps:.0f} GB/s fit {band.model} "
            f"({band.tflops[0]:.0f}-{band.tflops[1]:.0f} TFLOP/s, "
            f"{band.bandwidth_gbps[0]:.0f}-{band.bandwidth_gbps[1]:.0f} GB/s)",
            "hardware",
        )
        if device.power_limit_w is not None and not (
            band.power_limit_w[0] * 0.9 <= device.power_limit_w <= band.power_limit_w[1] * 1.05
        ):
            verdict.add(
                "power_limit",
                "warn",
                f"power limit {device.power_limit_w:.0f} W is unusual for {band.model}",
                "configuration",
            )
        return True
    others = [m for m in bands.fitting(tflops, gbps) if m != band.model]
    fits = f"; the measurements fit {', '.join(others)}" if others else ""
    band_outcome: Outcome = "fail" if policy.require_performance_band else "warn"
    verdict.add(
        "performance_band",
        band_outcome,
        f"{tflops or 0:.1f} TFLOP/s and {gbps or 0:.0f} GB/s are outside the {band.model} band "
        f"({band.tflops[0]:.0f}-{band.tflops[1]:.0f} TFLOP/s, "
        f"{band.bandwidth_gbps[0]:.0f}-{band.bandwidth_gbps[1]:.0f} GB/s){fits}",
        "hardware",
    )
    return False


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _check_posture(verdict: Verdict, device: DeviceEvidence, policy: Policy) -> None:
    if policy.require_ecc:
        if device.ecc_mode_current == "enabled":
            verdict.add("ecc", "pass", "ECC enabled", "configuration")
        else:
            verdict.add(
                "ecc",
                "fail",
                f"ECC is {device.ecc_mode_current or 'not reported'}; the policy requires it",
                "configuration",
            )
    errors = device.ecc_uncorrected_volatile
    if errors is not None and errors > policy.max_uncorrected_ecc_errors:
        verdict.add("ecc_errors", "fail", f"{errors} uncorrected ECC errors since boot", "hardware")
    failed_remaps = (device.remapped_rows or {}).get("failure", 0)
    if failed_remaps > policy.max_remapped_rows_failed:
        verdict.add("remapped_rows", "fail", f"{failed_remaps} row remappings failed", "hardware")
    if policy.require_mig_disabled and device.mig_mode == "enabled":
        verdict.add("mig", "fail", "MIG mode is on; the policy requires whole GPUs", "configuration")
    if policy.require_persistence_mode and device.persistence_mode != "enabled":
        verdict.add("persistence_mode", "fail", "persistence mode is off", "configuration")
    if policy.min_driver_version:
        if device.driver and _version(device.driver) >= _version(policy.min_driver_version):
            verdict.add("driver", "pass", f"driver {device.driver}", "configuration")
        else:
            verdict.add(
                "driver",
                "fail",
                f"driver {device.driver} is older than {policy.min_driver_version}",
                "configuration",
            )
    if policy.require_confidential_computing and device.cc_mode != "on":
        verdict.add(
            "confidential_computing",
            "fail",
            f"CC mode is {device.cc_mode or 'not reported'}",
            "configuration",
        )


def _check_identity(verdict: Verdict, device: DeviceEvidence, ctx: Context, policy: Policy) -> None:
    if not ctx.pinned_uuids:
        verdict.add("identity", "pass", f"first identity of this pool: {device.uuid}", "instance-identity")
        return
    if device.uuid in ctx.pinned_uuids:
        verdict.add("identity", "pass", f"{device.uuid} is a known GPU of this pool", "instance-identity")
        return
    outcome: Outcome = "fail" if policy.pin_identity else "warn"
    verdict.add(
        "identity",
        outcome,
        f"GPU UUID changed: {device.uuid} is not among {', '.join(ctx.pinned_uuids)}",
        "instance-identity",
    )


def _check_vendor(verdict: Verdict, evidence: HardwareEvidence, ctx: Context, policy: Policy) -> bool:
    if evidence.nvidia_cc is None:
        if policy.require_confidential_computing:
            verdict.add("vendor_evidence", "fail", "no NVIDIA attestation evidence", "hardware")
        return False
    from lotabots.attestation import nvidia

    ok, detail = nvidia.verify(evidence.nvidia_cc, ctx.nonce, evidence.device.uuid)
    verdict.add("vendor_evidence", "pass" if ok else "fail", detail, "hardware")
    return ok
