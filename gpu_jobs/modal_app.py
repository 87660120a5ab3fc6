"""The Modal app: one GPU function per job type, running the same `runner.run_job` as Batch/local.

Deploy: `MODAL_APP_NAME=lotabots-gpu modal deploy gpu_jobs/modal_app.py` (after
`modal secret create lotabots-aws AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=...`
for a principal that may write `jobs/*` in the artifacts bucket and `events:PutEvents` on the
bus). The platform calls `modal.Function.from_name(MODAL_APP_NAME, "embed").spawn(spec)` and polls
`FunctionCall.from_id(id).get(timeout=0)`; the function's return value is the job's report.

GPU: `LOTABOTS_MODAL_GPU` at deploy time (default "L4"; a trailing "!" pins the type, e.g.
"H100!", since plain "H100" may run on an H200); a job's own `gpu` overrides it per call
through `with_options(gpu=...)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import modal

APP_NAME = os.environ.get("MODAL_APP_NAME", "lotabots-gpu")
GPU = os.environ.get("LOTABOTS_MODAL_GPU", "L4")
AWS_SECRET = os.environ.get("LOTABOTS_MODAL_AWS_SECRET", "lotabots-aws")
TIMEOUT_S = int(os.environ.get("LOTABOTS_MODAL_TIMEOUT_S", "3600"))
PROJECT = Path(__file__).resolve().parents[1]

# Ship our packages with the JSON next to them (model_registry.json); nothing else.
SOURCE_IGNORE = ~modal.FilePatternMatcher("**/*.py", "**/*.json")

image = (
    modal.Image.debian_slim(python_version="3.12")
    .pip_install_from_pyproject(str(PROJECT / "pyproject.toml"), optional_dependencies=["gpu"])
    # TOPLOC compiled against the image's torch (its binary wheel breaks on torch 2.13).
    .run_commands("pip install --no-binary toploc --no-build-isolation toploc==0.1.6")
    .env({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    .add_local_python_source("gpu_jobs", "lotabots", ignore=SOURCE_IGNORE)
)

app = modal.App(APP_NAME, image=image)

# Modal retries cover infrastructure loss (preemption, a container that dies): a job that fails
# on its own returns a failed report instead of raising, so it is not retried.
RETRIES = modal.Retries(max_retries=2, backoff_coefficient=2.0, initial_delay=10.0)
# What every job function shares: its time limit, retries, the AWS secret (results go to S3 and
# EventBridge) and a cap on containers. The GPU jobs add the GPU and how long to stay warm.
JOB_FUNCTION: dict[str, Any] = {
    "timeout": TIMEOUT_S,
    "retries": RETRIES,
    "secrets": [modal.Secret.from_name(AWS_SECRET)],
    "max_containers": 10,
}


@app.function(**JOB_FUNCTION, gpu=GPU, scaledown_window=120)
def embed(job: dict[str, Any]) -> dict[str, Any]:
    """all-MiniLM-L6-v2 embeddings of one document (fp16 on the GPU)."""
    from gpu_jobs.runner import run_job

    return run_job(job)


@app.function(**JOB_FUNCTION, gpu=GPU, scaledown_window=60)
def attest_hardware(job: dict[str, Any]) -> dict[str, Any]:
    """NVML evidence and the nonce-seeded bf16 challenge on the GPU (see gpu_jobs.attest_hardware)."""
    from gpu_jobs.runner import run_job

    return run_job(job)


@app.function(**JOB_FUNCTION, gpu=GPU, scaledown_window=60)
def attest_model(job: dict[str, Any]) -> dict[str, Any]:
    """Model files hashed and verified with model-signing where they load; golden outputs."""
    from gpu_jobs.runner import run_job

    return run_job(job)


@app.function(**JOB_FUNCTION)
def attest_inference(job: dict[str, Any]) -> dict[str, Any]:
    """Re-check of an embed job's TOPLOC proofs on the CPU (no GPU asked for)."""
    from gpu_jobs.runner import run_job

    return run_job(job)
