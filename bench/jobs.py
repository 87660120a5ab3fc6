"""GPU-jobs figures: embedding throughput of our `embed` path against plain sentence-transformers,
and dispatch latency from the API call to the backend submit, each next to a baseline measured
in the same run.

Throughput: one child interpreter loads all-MiniLM-L6-v2 twice from the same files, as
`gpu_jobs.embed.Embedder` (our path: one tokenisation, exact token-length sort, batches, mean
pooling; fp16 on CUDA, fp32 on CPU) and as `SentenceTransformer(...).encode` (fp32; on CUDA also
`.half()`), on the same device. Rounds alternate ours/theirs over the same sentences; the
figure is the median of per-round ratios, by wall clock and by process CPU time (the CPU time
is less disturbed by other load on a shared machine). Outputs are compared for equality.

Dispatch latency: a child interpreter with moto in-process and SQLite; `POST /jobs` through the
jobs function, the message read from the gpu-jobs queue, `job_dispatch` run on it, with the
Modal client patched so that `spawn` is the submit (timestamped). Baseline: the AWS round trips
such a path cannot avoid (SQS send, receive, delete; DynamoDB conditional put; S3 put) made
directly with boto3 against the same moto.

Run alone with `python -m bench jobs` (env: BENCH_EMBED_SENTENCES, BENCH_EMBED_ROUNDS,
BENCH_DISPATCH_JOBS).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = int(os.environ.get("BENCH_EMBED_SENTENCES", "512"))
ROUNDS = int(os.environ.get("BENCH_EMBED_ROUNDS", "5"))
DISPATCH_JOBS = int(os.environ.get("BENCH_DISPATCH_JOBS", "25"))

_WORDS = [
    "gpu", "job", "queue", "dispatch", "modal", "batch", "lambda", "embedding", "vector", "search",
    "document", "ingest", "token", "sort", "length", "model", "digest", "attestation", "scheduler",
    "memory", "peak", "utilisation", "driver", "the", "a", "of", "to", "and", "in", "for", "with",
    "on", "is", "are", "was", "be", "by", "it", "this", "that", "from", "at", "as", "an", "or", "which",
]  # fmt: skip


def _sentences(count: int, seed: int = 7) -> list[str]:
    import random

    rng = random.Random(seed)
    # Lengths like real sentences and paragraphs: mostly short, a long tail (some truncated at 256 tokens).
    out = []
    for _ in range(count):
        words = min(300, max(3, int(rng.lognormvariate(3.0, 0.8))))
        out.append(" ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + ".")
    return out


# --- child: embedding throughput -----------------------------------------------------------------


def _throughput_child() -> dict[str, Any]:
    import time

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from gpu_jobs.embed import Embedder

    ours = Embedder()
    device = ours.device
    reference = SentenceTransformer(str(ours.model_info.path), device=str(device))
    variants: dict[str, Any] = {"sentence-transformers fp32": reference}
    if device.type == "cuda":
        half = SentenceTransformer(str(ours.model_info.path), device=str(device))
        half.half()
        variants["sentence-transformers fp16"] = half
    sentences = _sentences(SENTENCES)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn: Any) -> tuple[float, float, Any]:
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn()
        sync()
        return time.perf_counter() - wall, time.process_time() - cpu, value

    ours.encode(sentences[:64])
    for model in variants.values():
        model.encode(sentences[:64])
    rounds: list[dict[str, Any]] = []
    vectors: dict[str, Any] = {}
    for _ in range(ROUNDS):
        row: dict[str, Any] = {}
        wall, cpu, vectors["ours"] = timed(lambda: ours.encode(sentences))
        row["ours"] = (wall, cpu)
        for name, model in variants.items():
            wall, cpu, vectors[name] = timed(
                lambda model=model: model.encode(sentences, convert_to_numpy=True, batch_size=32)
            )
            row[name] = (wall, cpu)
        rounds.append(row)
    agreement = {
        name: float(np.abs(vectors["ours"] - vectors[name]).max()) for name in variants if name in vectors
    }
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "threads": torch.get_num_threads(),
        "precision": "fp16" if device.type == "cuda" else "fp32",
        "batch_size": ours.batch_size,
        "torch": torch.__version__,
    }
    return {"rounds": rounds, "agreement": agreement, "info": info, "sentences": len(sentences)}


# --- child: dispatch latency ---------------------------------------------------------------------


def _dispatch_child() -> dict[str, Any]:
    import time

    import modal
    from moto import mock_aws

    sys.path.insert(0, str(ROOT))
    from devstack.provision import provision
    from lotabots import aws, config
    from lotabots.db import migrate
    from tests.support.api import FakeLambdaContext, api_event, load_function
    from tests.support.jobs import OPERATOR, put_modal_secret, ready_document, receive_as_event

    submitted: list[float] = []

    class Call:
        object_id = "fc-bench"

    class Function:
        def with_options(self, **_: Any) -> Function:
            return self

        def spawn(self, spec: dict[str, Any]) -> Call:
            submitted.append(time.perf_counter())
            return Call()

    modal.Client.from_credentials = lambda *_: object()  # type: ignore[assignment,method-assign]
    modal.Function.from_name = lambda *_, **__: Function()  # type: ignore[assignment,method-assign]

    with mock_aws(config={"batch": {"use_docker": False}}):
        config.reset()
        aws.reset()
        os.environ.update(provision())
        config.reset()
        migrate.upgrade()
        put_modal_secret()
        document_id = ready_document(OPERATOR.user_id, "bench text " * 200)
        jobs_fn = load_function("jobs").lambda_handler
        dispatch_fn = load_function("job_dispatch").lambda_handler
        context = FakeLambdaContext()
        body = {"type": "embed", "input": {"document_id": document_id}}

        def one() -> dict[str, float]:
            start = time.perf_counter()
            response = jobs_fn(api_event("POST", "/jobs", body=body, principal=OPERATOR), context)
            assert response["statusCode"] == 202, response
            api_done = time.perf_counter()
            event = receive_as_event("GPU_JOBS_QUEUE_URL")
            received = time.perf_counter()
            failures = dispatch_fn(event, context)["batchItemFailures"]
            assert not failures, failures
            return {
                "total_ms": (submitted[-1] - start) * 1000,
                "api_ms": (api_done - start) * 1000,
                "queue_ms": (received - api_done) * 1000,
                "dispatch_ms": (submitted[-1] - received) * 1000,
            }

        def baseline() -> float:
            sqs, ddb, s3 = aws.client("sqs"), aws.client("dynamodb"), aws.client("s3")
            url = os.environ["GPU_JOBS_QUEUE_URL"]
            settings = config.load(config.JobSettings)
            start = time.perf_counter()
            sqs.send_message(QueueUrl=url, MessageBody='{"job_id": "x"}')
            message = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
            ddb.put_item(
                TableName=settings.dispatch_table,
                Item={"id": {"S": f"bench#{time.perf_counter_ns()}"}},
                ConditionExpression="attribute_not_exists(id)",
            )
            s3.put_object(Bucket=settings.artifacts_bucket, Key="bench/input.txt", Body=b"bench text " * 200)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return (time.perf_counter() - start) * 1000

        one()
        baseline()
        samples, base = [], []
        for _ in range(DISPATCH_JOBS):
            samples.append(one())
            base.append(baseline())
    return {"samples": samples, "baseline_ms": base}


# --- parent ----------------------------------------------------------------------------------------


def _child(function: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lotabots-bench-jobs-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_DEV": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "LOTABOTS_SQLITE_PATH": str(Path(tmp) / "bench.db"),
            "LOTABOTS_STATE_DIR": tmp,
            "JOB_BACKEND": "modal",
        }
        for name in ("AWS_ENDPOINT_URL", "DATABASE_URL", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(name, None)
        code = f"import json, bench.jobs as b; print('@@' + json.dumps(b.{function}()))"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
        )
        if result.returncode != 0:
            raise RuntimeError(f"{function} failed:\n{result.stderr[-4000:]}")
        line = next(x for x in reversed(result.stdout.splitlines()) if x.startswith("@@"))
        data: dict[str, Any] = json.loads(line[2:])
        return data


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run() -> str:
    lines = ["## GPU jobs\n", "Command: `python -m bench jobs` (`make bench`).\n"]

    data = _child("_throughput_child")
    info = data["info"]
    n = data["sentences"]
    lines.append(
        f"### Embedding throughput: all-MiniLM-L6-v2 on {info['device_name']} ({info['device']}, "
        f"{info['threads']} torch threads, torch {info['torch']})\n"
    )
    lines.append(
        f"{n} sentences (3-300 words, log-normal), {len(data['rounds'])} alternating rounds; ours: "
        f"`gpu_jobs.embed.Embedder.encode` ({info['precision']}, batch {info['batch_size']}); baseline: "
        "`SentenceTransformer(...).encode(batch_size=32)` of the same files on the same device.\n"
    )
    lines.append(
        "| path | sentences/s (median wall) | sentences/CPU-s (median) | ratio ours/baseline "
        "(median of rounds, wall) | ratio (CPU time) | max abs diff vs ours |"
    )
    lines.append("|---|---|---|---|---|---|")
    ours_wall = [r["ours"][0] for r in data["rounds"]]
    ours_cpu = [r["ours"][1] for r in data["rounds"]]
    ours_row = f"| ours | {n / statistics.median(ours_wall):.1f} | {n / statistics.median(ours_cpu):.1f} |"
    lines.append(ours_row + " - | - | - |")
    for name in data["rounds"][0]:
        if name == "ours":
            continue
        wall = [r[name][0] for r in data["rounds"]]
        cpu = [r[name][1] for r in data["rounds"]]
        ratio_wall = statistics.median(r[name][0] / r["ours"][0] for r in data["rounds"])
        ratio_cpu = statistics.median(r[name][1] / r["ours"][1] for r in data["rounds"])
        lines.append(
            f"| {name} | {n / statistics.median(wall):.1f} | {n / statistics.median(cpu):.1f} | "
            f"**{ratio_wall:.2f}x** | {ratio_cpu:.2f}x | {data['agreement'][name]:.1e} |"
        )
    lines.append(
        "\nA ratio above 1 means our path embeds more sentences per second than the baseline "
        "(target >= 1.0x on CPU). On CUDA ours runs fp16: compare with the fp16 baseline row.\n"
    )

    dispatch = _child("_dispatch_child")
    samples = dispatch["samples"]
    total = [s["total_ms"] for s in samples]
    base = dispatch["baseline_ms"]
    lines.append("### Dispatch latency: API call -> backend submit (in-process, moto, patched Modal)\n")
    lines.append(
        f"{len(samples)} jobs, each: `POST /jobs` (validation, document visibility check, DB insert, "
        "audit entry, SQS send) -> receive from gpu-jobs -> `job_dispatch` (DynamoDB conditional put, "
        "text staged to S3, Secrets Manager credentials (cached), spawn).\n"
    )
    lines.append("| measure | median ms | p95 ms |")
    lines.append("|---|---|---|")
    for key, label in (
        ("total_ms", "API call -> submit"),
        ("api_ms", "  POST /jobs"),
        ("queue_ms", "  queue receive"),
        ("dispatch_ms", "  job_dispatch -> submit"),
    ):
        values = [s[key] for s in samples]
        lines.append(f"| {label} | {statistics.median(values):.1f} | {_p(values, 0.95):.1f} |")
    label = "baseline: bare AWS round trips of the path"
    lines.append(f"| {label} | {statistics.median(base):.1f} | {_p(base, 0.95):.1f} |")
    lines.append(
        f"\nRatio API->submit / baseline: **{statistics.median(total) / statistics.median(base):.2f}x** "
        "(what our code adds on top of the AWS calls it cannot avoid; moto answers in-process, so "
        "real network latency would dominate in AWS).\n"
    )
    return "\n".join(lines)
