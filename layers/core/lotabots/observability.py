"""Powertools Logger, Tracer and Metrics, set up once for the whole process.

Every module logs through `logger`; the service name comes from POWERTOOLS_SERVICE_NAME
(set per function by the CDK app and the local stack).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LotaBots")

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lotabots"))
# No auto-patching at import: patching botocore would import it (and every other supported
# library) on every cold start, even for requests that never call AWS. `lotabots.aws` patches
# boto3/botocore when the first client is created, so AWS calls are still traced.
tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lotabots"), auto_patch=False)
metrics = Metrics(namespace=NAMESPACE)
