"""The `reattest-gpu-pools` schedule: a fresh hardware attestation (new nonce) for every pool
whose re-attestation interval has passed and that has none in flight."""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.attestation import service
from lotabots.db import session_scope
from lotabots.jobs import queueing as job_queue
from lotabots.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with session_scope() as session:
        started = service.reattest_due(session)
    for _attestation_id, job_id in started:
        job_queue.enqueue_quietly(job_id)
    metrics.add_metric(name="PoolReattestations", unit="Count", value=len(started))
    logger.info("re-attestation sweep", extra={"started": [a for a, _ in started]})
    return {"started": [{"attestation_id": a, "job_id": j} for a, j in started]}


gc.freeze()  # loaded: see the top of the module
gc.enable()
