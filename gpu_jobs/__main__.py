"""`python -m gpu_jobs run --job <json|s3://bucket/key>`: the AWS Batch container's and the local
worker's entry point. Also `info` (the GPU as NVML sees it), `verify-model` and
`capture-attestation-fixture OUT` (real attestation evidence and band calibration figures)."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_jobs", description="LotaBots GPU jobs")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one job and report it")
    run.add_argument("--job", required=True, help="the job spec as JSON, or an s3:// URI of it")
    commands.add_parser("info", help="print the GPU this process would use (NVML)")
    verify = commands.add_parser("verify-model", help="check a model's files against the registry")
    verify.add_argument("--model", default="all-MiniLM-L6-v2")
    capture = commands.add_parser(
        "capture-attestation-fixture",
        help="record real attestation evidence and calibration figures on this GPU",
    )
    capture.add_argument("out", help="directory to write evidence.json, capture.json and toploc.json into")
    args = parser.parse_args(argv)

    if args.command == "capture-attestation-fixture":
        from pathlib import Path

        from gpu_jobs.capture import capture as capture_fixture

        print(json.dumps(capture_fixture(Path(args.out)), indent=1))
        return 0

    if args.command == "run":
        from gpu_jobs.runner import load_spec, run_job

        report = run_job(load_spec(args.job))
        print(json.dumps(report))
        return 0 if report["status"] == "succeeded" else 1
    if args.command == "info":
        from gpu_jobs.gpuinfo import GpuMonitor

        with GpuMonitor() as monitor:
            pass
        print(json.dumps(monitor.report, indent=2))
        return 0
    from gpu_jobs.model_registry import ModelIntegrityError
    from gpu_jobs.model_registry import verify as verify_model

    try:
        verified = verify_model(args.model)
    except ModelIntegrityError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"model": verified.name, "digest": verified.digest, "path": str(verified.path)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
