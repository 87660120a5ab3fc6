"""Hardware appraisal on evidence: genuine CPU challenges and CONSTRUCTED GPU evidence around them
(see tests/support/attestation.py; no GPU ran these). Each attack the issue lists that the verifier
itself must catch fails the verdict with the claim that names it."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from lotabots.attestation import bands, nvidia
from tests.support.attestation import (
    H100_UUID,
    NONCE,
    appraise,
    as_gpu,
    claim,
    context,
    cpu_evidence,
    cpu_policy,
    gpu_policy,
    lower_precision_evidence,
    set_cell_value,
)


def test_genuine_cpu_challenge_is_consistent_and_fails_a_gpu_policy() -> None:
    laptop = appraise(cpu_evidence(), cpu_policy())
    assert laptop.passed and laptop.assurance == "consistent" and laptop.ear_status == "warning"
    assert claim(laptop, "challenge_values").outcome == "pass" and claim(laptop, "merkle").outcome == "pass"
    strict = appraise(cpu_evidence(), gpu_policy())
    assert not strict.passed and strict.ear_status == "contraindicated"
    assert "without a GPU" in claim(strict, "gpu_present").detail


def test_constructed_h100_evidence_is_performance_proven() -> None:
    verdict = appraise(as_gpu(cpu_evidence()), gpu_policy())
    assert verdict.passed, verdict.reasons()
    assert verdict.assurance == "performance-proven" and verdict.ear_status == "affirming"
    assert claim(verdict, "performance_band").outcome == "pass"
    vector = verdict.trustworthiness_vector()
    assert vector["hardware"] == 2 and vector["configuration"] == 2 and vector["instance-identity"] == 2


def test_replayed_evidence_for_another_nonce_fails_binding() -> None:
    verdict = appraise(cpu_evidence(), cpu_policy(), context(nonce="another-nonce-issued-later-000000000000"))
    assert not verdict.passed and claim(verdict, "nonce").outcome == "fail"


def test_evidence_for_another_attestation_fails() -> None:
    verdict = appraise(cpu_evidence(), cpu_policy(), context(attestation_id="b" * 32))
    assert claim(verdict, "attestation_binding").outcome == "fail" and not verdict.passed


def test_expired_challenge_fails_freshness() -> None:
    verdict = appraise(cpu_evidence(), cpu_policy(), context(late_s=30))
    assert "after the nonce expired" in claim(verdict, "freshness").detail and not verdict.passed


def test_wrong_merkle_path_fails() -> None:
    evidence = cpu_evidence()
    evidence["challenge"]["cells"][3]["path"][0] = "ab" * 32
    verdict = appraise(evidence, cpu_policy())
    assert claim(verdict, "merkle").outcome == "fail" and not verdict.passed


def test_wrong_opened_cell_fails_even_with_a_consistent_tree() -> None:
    evidence = cpu_evidence()
    set_cell_value(evidence, 0, 12345.0)
    verdict = appraise(evidence, cpu_policy())
    assert claim(verdict, "merkle").outcome == "fail"  # the segment no longer hashes to the root
    assert not verdict.passed


def test_opening_other_cells_than_the_nonce_selects_fails() -> None:
    evidence = cpu_evidence()
    evidence["challenge"]["cells"] = evidence["challenge"]["cells"][1:] + evidence["challenge"]["cells"][:1]
    assert claim(appraise(evidence, cpu_policy()), "challenge_cells").outcome == "fail"


def test_product_in_lower_precision_than_claimed_fails_the_values() -> None:
    verdict = appraise(lower_precision_evidence(), cpu_policy())
    assert claim(verdict, "merkle").outcome == "pass"  # honestly committed...
    assert claim(verdict, "challenge_values").outcome == "fail"  # ...but not a bf16 product
    assert not verdict.passed


def test_claimed_dtype_must_be_the_policys() -> None:
    verdict = appraise(cpu_evidence(), cpu_policy(challenge_dtype="fp16"))
    assert "policy asks fp16" in claim(verdict, "challenge_parameters").detail


def test_h100_name_with_a10_class_throughput_fails_the_band() -> None:
    verdict = appraise(as_gpu(cpu_evidence(), tflops=95.0, gbps=520.0), gpu_policy())
    band = claim(verdict, "performance_band")
    assert band.outcome == "fail" and "H100-SXM" in band.detail and "A10" in band.detail
    assert not verdict.passed and verdict.assurance == "none"


def test_h100_pcie_numbers_under_an_sxm_name_are_told_apart() -> None:
    verdict = appraise(as_gpu(cpu_evidence(), tflops=560.0, gbps=1850.0), gpu_policy())
    band = claim(verdict, "performance_band")
    assert band.outcome == "fail" and "H100-PCIe" in band.detail


def test_band_data_separates_pcie_from_sxm_on_bandwidth() -> None:
    sxm, pcie = bands.load()["H100-SXM"], bands.load()["H100-PCIe"]
    assert pcie.bandwidth_gbps[1] < sxm.bandwidth_gbps[0]
    assert bands.for_name("NVIDIA H100 PCIe") == pcie and bands.for_name("NVIDIA H100 80GB HBM3") == sxm
    assert {"A10", "L4", "A100-SXM-80GB", "H100-SXM", "H200"} <= set(bands.load())


def test_ecc_off_under_a_policy_requiring_it_fails() -> None:
    verdict = appraise(as_gpu(cpu_evidence(), ecc_mode_current="disabled"), gpu_policy())
    assert claim(verdict, "ecc").outcome == "fail" and not verdict.passed
    relaxed = appraise(as_gpu(cpu_evidence(), ecc_mode_current="disabled"), gpu_policy(require_ecc=False))
    assert relaxed.passed


def test_posture_checks() -> None:
    broken = as_gpu(
        cpu_evidence(),
        ecc_uncorrected_volatile=2,
        remapped_rows={"correctable": 0, "uncorrectable": 1, "pending": 0, "failure": 1},
        mig_mode="enabled",
        driver="470.1",
    )
    verdict = appraise(broken, gpu_policy(require_mig_disabled=True, min_driver_version="535.0"))
    for name in ("ecc_errors", "remapped_rows", "mig", "driver"):
        assert claim(verdict, name).outcome == "fail"


def test_changed_gpu_uuid_in_a_pinned_pool_fails_and_only_warns_when_not_pinned() -> None:
    other = "GPU-00000000-1111-2222-3333-444444444444"
    evidence = as_gpu(cpu_evidence(), uuid=other)
    pinned = appraise(evidence, gpu_policy(), context(pinned=(H100_UUID,)))
    assert claim(pinned, "identity").outcome == "fail" and "UUID changed" in claim(pinned, "identity").detail
    loose = appraise(evidence, gpu_policy(pin_identity=False), context(pinned=(H100_UUID,)))
    assert claim(loose, "identity").outcome == "warn" and loose.passed


def test_unknown_gpu_model_fails_when_a_band_is_required() -> None:
    verdict = appraise(as_gpu(cpu_evidence(), name="NVIDIA Imaginary 9000"), gpu_policy())
    assert claim(verdict, "gpu_model").outcome == "fail"


def test_assurance_below_the_policy_minimum_fails() -> None:
    verdict = appraise(cpu_evidence(), cpu_policy(min_assurance="performance-proven"))
    assert claim(verdict, "assurance").outcome == "fail" and not verdict.passed


# --- NVIDIA confidential-computing evidence (CONSTRUCTED tokens signed by a test key) ----------


@pytest.fixture
def nras(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A stand-in for NRAS's signing key: its JWKS served on 127.0.0.1 as NRAS serves its own."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="nras-test", alg="ES384", use="sig")
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "NVIDIA_ATTESTATION_JWKS_URL", f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    )
    nvidia.reset()

    def token(**claims: Any) -> str:
        body = {
            "iss": nvidia.DEFAULT_ISSUER,
            "iat": 1_700_000_000,
            "exp": 4_000_000_000,
            "x-nvidia-overall-att-result": True,
            "eat_nonce": nvidia.sdk_nonce(NONCE),
            **claims,
        }
        return jwt.encode(body, key, algorithm="ES384", headers={"kid": "nras-test"})

    yield token
    server.shutdown()
    server.server_close()
    nvidia.reset()


def test_vendor_evidence_verified_reaches_vendor_verified(nras: Any) -> None:
    evidence = as_gpu(cpu_evidence(), cc_mode="on")
    evidence["nvidia_cc"] = {"overall": nras()}
    verdict = appraise(
        evidence, gpu_policy(require_confidential_computing=True, min_assurance="vendor-verified")
    )
    assert verdict.passed, verdict.reasons()
    assert verdict.assurance == "vendor-verified" and claim(verdict, "vendor_evidence").outcome == "pass"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"x-nvidia-overall-att-result": False}, "did not affirm"),
        ({"eat_nonce": "0" * 64}, "another nonce"),
        ({"exp": 1_700_000_100}, "rejected"),
    ],
)
def test_vendor_evidence_that_does_not_hold_fails(nras: Any, claims: dict[str, Any], why: str) -> None:
    evidence = as_gpu(cpu_evidence(), cc_mode="on")
    evidence["nvidia_cc"] = {"overall": nras(**claims)}
    verdict = appraise(evidence, gpu_policy(require_confidential_computing=True))
    assert why in claim(verdict, "vendor_evidence").detail and not verdict.passed


def test_vendor_token_signed_by_another_key_fails(nras: Any) -> None:
    forged_key = ec.generate_private_key(ec.SECP384R1())
    header = json.loads(base64.urlsafe_b64decode(nras().split(".")[0] + "=="))
    token = jwt.encode(
        {"iss": nvidia.DEFAULT_ISSUER, "iat": 1, "exp": 4_000_000_000, "x-nvidia-overall-att-result": True},
        forged_key,
        algorithm="ES384",
        headers={"kid": header["kid"]},
    )
    evidence = as_gpu(cpu_evidence(), cc_mode="on")
    evidence["nvidia_cc"] = {"overall": token}
    assert claim(appraise(evidence, gpu_policy()), "vendor_evidence").outcome == "fail"
