"""Documents figures: ingest throughput (documents/s, MB/s) for text and PDF, and the peak
memory of ingesting a 50 MiB file, each next to a baseline measured in the same run.

Set-up: a moto server on 127.0.0.1 (S3 and EventBridge over real HTTP, as Lambda talks to AWS)
and SQLite in a temporary directory. The ingest service (`lotabots.documents.ingest.
ingest_object`: head, streamed GET, sniff, SHA-256, extraction, DB writes, audit entry,
DocumentIngested) runs in-process in a child interpreter; every memory figure comes from its
own fresh child, so peak RSS and tracemalloc see that one ingest only.

Baselines: the same objects read with a plain streamed S3 GET + SHA-256 (what any ingest must
at least do), and, for memory, a naive `Body.read()` of the whole object (what streaming avoids).
Run alone with `python -m bench documents`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
BUCKET = "lotabots-bench-documents"
BIG_BYTES = 50 * MIB
TEXT_DOCS = int(os.environ.get("BENCH_TEXT_DOCS", "60"))
TEXT_BYTES = 256 * 1024
PDF_DOCS = int(os.environ.get("BENCH_PDF_DOCS", "20"))
PDF_PAGES = 20
# Ingest must stream: its memory growth on the 50 MiB file must stay below this share of it.
STREAMING_BUDGET = 0.25

_WORDS = [
    "ingest", "streams", "every", "upload", "once", "through", "a", "hash", "and", "an",
    "incremental", "decoder", "while", "the", "extracted", "text", "stays", "bounded", "so",
    "memory", "never", "follows", "file", "size",
]  # fmt: skip


def _text(size: int, seed: int = 0) -> bytes:
    words = [f"{_WORDS[(i * 7 + seed) % len(_WORDS)]}{i % 97}" for i in range(size // 6 + 16)]
    return " ".join(words).encode()[:size]


def _pdf(pages: int, padding: int = 0) -> bytes:
    sys.path.insert(0, str(ROOT))
    from tests.support.documents import make_pdf

    page_text = _text(2500).decode()
    return make_pdf([f"Page {n} {page_text}" for n in range(pages)], padding_bytes=padding)


# --- child side -------------------------------------------------------------------------------


def _child_setup() -> Any:
    from lotabots import aws
    from lotabots.db import migrate

    migrate.upgrade()
    s3 = aws.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=BUCKET)
    return s3


def _declare_and_put(s3: Any, data: bytes, content_type: str, title: str) -> str:
    from lotabots.access import Principal, Role
    from lotabots.db import session_scope
    from lotabots.documents import service
    from lotabots.documents.schemas import DocumentCreate

    owner = Principal("bench0000000000000000000000000001", "bench@example.com", Role.MEMBER)
    with session_scope() as session:
        created = service.create_document(
            session, owner, DocumentCreate(title=title, content_type=content_type, size_bytes=len(data))
        )
    key = created.upload.fields["key"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)
    return key


def _stream_sha256(s3: Any, key: str) -> str:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(chunk_size=MIB):
        digest.update(chunk)
    return digest.hexdigest()


def _read_all_sha256(s3: Any, key: str) -> str:
    data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return hashlib.sha256(data).hexdigest()


def _ingest(key: str) -> str:
    from lotabots.documents import ingest

    outcome = ingest.ingest_object(BUCKET, key)
    if outcome.status != "ready":
        raise RuntimeError(f"bench document not ingested: {outcome}")
    return outcome.status


def _child_throughput(out: Path) -> None:
    s3 = _child_setup()
    workloads = {
        "text/plain": [_text(TEXT_BYTES, seed) for seed in range(TEXT_DOCS)],
        "application/pdf": [_pdf(PDF_PAGES) for _ in range(PDF_DOCS)],
    }
    results = {}
    for content_type, blobs in workloads.items():
        keys = [_declare_and_put(s3, blob, content_type, f"bench {i}") for i, blob in enumerate(blobs)]
        _stream_sha256(s3, keys[0])  # warm connections and imports
        started = time.perf_counter()
        for key in keys:
            _stream_sha256(s3, key)
        baseline_s = time.perf_counter() - started
        started = time.perf_counter()
        for key in keys:
            _ingest(key)
        ingest_s = time.perf_counter() - started
        results[content_type] = {
            "docs": len(keys),
            "bytes": sum(len(b) for b in blobs),
            "ingest_s": ingest_s,
            "baseline_s": baseline_s,
        }
    out.write_text(json.dumps(results))


def _child_prepare(out: Path) -> None:
    s3 = _child_setup()
    keys = {
        "text": _declare_and_put(s3, _text(BIG_BYTES), "text/plain", "50 MiB of text"),
        "pdf": _declare_and_put(
            s3, _pdf(PDF_PAGES, padding=BIG_BYTES - 200_000), "application/pdf", "50 MiB PDF"
        ),
        "warm_text": _declare_and_put(s3, _text(10_000), "text/plain", "warm-up"),
        "warm_pdf": _declare_and_put(s3, _pdf(2), "application/pdf", "warm-up"),
    }
    sizes = {name: s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] for name, key in keys.items()}
    out.write_text(json.dumps({"keys": keys, "sizes": sizes}))


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        return None
    return None


def _peak_rss_bytes() -> int:
    """This process's peak RSS. `ru_maxrss` is not used on Linux: it keeps the parent's peak
    across fork + exec, so a child started by a big parent would show no growth at all."""
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _reset_peak_rss() -> None:
    """Make the peak equal the current RSS (Linux `clear_refs` 5), when allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return


def _child_memory(out: Path, mode: str, probe: str, key: str, warm_key: str) -> None:
    s3 = _child_setup()
    actions = {
        "stream": lambda k: _stream_sha256(s3, k),
        "read_all": lambda k: _read_all_sha256(s3, k),
        "ingest": _ingest,
    }
    action = actions[mode]
    action(warm_key)  # imports, connections, pypdf, DB: everything but the big file
    if probe == "tracemalloc":
        tracemalloc.start()
        started = time.perf_counter()
        action(key)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.write_text(json.dumps({"peak": peak, "seconds": elapsed}))
        return
    _reset_peak_rss()
    before = _peak_rss_bytes()
    started = time.perf_counter()
    action(key)
    elapsed = time.perf_counter() - started
    out.write_text(json.dumps({"growth": _peak_rss_bytes() - before, "seconds": elapsed}))


# --- parent side ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child(env: dict[str, str], *args: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        subprocess.run(
            [sys.executable, "-m", "bench.documents", str(out), *args],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return dict(json.loads(out.read_text()))
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"bench child {args} failed:\n{exc.stderr.decode()[-4000:]}") from None
    finally:
        out.unlink(missing_ok=True)


def _environment(tmp: Path, endpoint: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "DOCUMENT", "DATABASE_URL", "LOTABOTS_"))
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "DOCUMENTS_BUCKET": BUCKET,
            "LOTABOTS_STAGE": "bench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "DOCUMENT_SPOOL_DIR": str(tmp),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _mb(n: float) -> str:
    return f"{n / MIB:.1f}"


def run() -> str:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="lotabots-bench-documents-"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = _environment(tmp, endpoint)
        throughput = _child(env, "throughput")
        prepared = _child(env, "prepare")
        keys, sizes = prepared["keys"], prepared["sizes"]
        memory: list[tuple[str, int, dict[str, Any], dict[str, Any]]] = []
        for label, mode, name, warm in (
            ("baseline: streamed S3 GET + SHA-256", "stream", "text", "warm_text"),
            ("contrast: naive `Body.read()` + SHA-256", "read_all", "text", "warm_text"),
            ("ingest, text/plain", "ingest", "text", "warm_text"),
            ("ingest, application/pdf", "ingest", "pdf", "warm_pdf"),
        ):
            probes = {}
            for probe in ("rss", "tracemalloc"):
                big, small = keys[name], keys[warm]
                if mode == "ingest":  # every ingest probe gets objects not ingested before
                    big = _child(env, "redeclare", big)["key"]
                    small = _child(env, "redeclare", small)["key"]
                probes[probe] = _child(env, "memory", mode, probe, big, small)
            memory.append((label, int(sizes[name]), probes["rss"], probes["tracemalloc"]))
    finally:
        server.stop()

    lines = [
        "## Documents: ingest throughput and memory\n",
        "Command: `make bench` (alone: `python -m bench documents`). moto server on 127.0.0.1 (S3, "
        "EventBridge over HTTP), SQLite; the ingest service runs in-process in a child interpreter. "
        "Ratios compare with a baseline measured in the same run on the same objects.\n",
        "| workload | docs | MB | ingest docs/s | ingest MB/s | baseline MB/s (S3 GET + SHA-256) "
        "| ingest time / baseline time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for content_type, figures in throughput.items():
        megabytes = figures["bytes"] / MIB
        each_kib = figures["bytes"] // figures["docs"] // 1024
        ingest_s, baseline_s = figures["ingest_s"], figures["baseline_s"]
        lines.append(
            f"| {content_type} ({each_kib} KiB each) | {figures['docs']} | {megabytes:.1f} "
            f"| {figures['docs'] / ingest_s:.1f} | {megabytes / ingest_s:.1f} "
            f"| {megabytes / baseline_s:.1f} | {ingest_s / baseline_s:.1f}x |"
        )
    lines += [
        "",
        f"Peak memory on one {BIG_BYTES // MIB} MiB object (each row a fresh process, warmed up on a "
        "small file first): growth of the peak RSS during the call (Linux VmHWM, reset just before; "
        "`ru_maxrss` elsewhere) and, in a second process, tracemalloc's peak of Python allocations. "
        f"The PDF is {PDF_PAGES} text pages plus a ~50 MiB binary "
        "stream, as a scanned document is.\n",
        "| run | file MB | peak RSS growth MB | tracemalloc peak MB | growth / file size | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for label, size, rss, traced in memory:
        share = max(rss["growth"], traced["peak"]) / size
        lines.append(
            f"| {label} | {_mb(size)} | {_mb(rss['growth'])} | {_mb(traced['peak'])} "
            f"| {share:.2f} | {rss['seconds']:.2f} |"
        )
        if label.startswith("ingest"):
            verdicts.append(share < STREAMING_BUDGET)
    verdict = "PASS" if all(verdicts) else "FAIL"
    lines += [
        "",
        f"Streaming budget (ingest memory growth < {STREAMING_BUDGET:.2f} x file size): **{verdict}**. "
        "The naive row shows what the measurement sees when a file is held whole.\n",
    ]
    return "\n".join(lines)


def _child_redeclare(out: Path, key: str) -> None:
    """Copy an ingested object to a fresh declaration (so a second probe ingests it again)."""
    from lotabots import aws
    from lotabots.access import Principal, Role
    from lotabots.db import session_scope
    from lotabots.documents import service, storage
    from lotabots.documents.schemas import DocumentCreate

    s3 = aws.client("s3")
    parts = storage.parse_key(key)
    assert parts is not None
    head = s3.head_object(Bucket=BUCKET, Key=key)
    owner = Principal(parts.owner_id, "bench@example.com", Role.MEMBER)
    with session_scope() as session:
        created = service.create_document(
            session,
            owner,
            DocumentCreate(title="again", content_type=head["ContentType"], size_bytes=head["ContentLength"]),
        )
    new_key = created.upload.fields["key"]
    s3.copy_object(Bucket=BUCKET, Key=new_key, CopySource={"Bucket": BUCKET, "Key": key})
    out.write_text(json.dumps({"key": new_key}))


def _main(argv: list[str]) -> None:
    out, command, *rest = argv
    target = Path(out)
    if command == "throughput":
        _child_throughput(target)
    elif command == "prepare":
        _child_prepare(target)
    elif command == "memory":
        _child_memory(target, *rest)
    elif command == "redeclare":
        _child_redeclare(target, *rest)
    else:
        raise SystemExit(f"unknown bench child command {command!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
