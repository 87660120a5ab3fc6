"""Powertools Logger, Tracer and Metrics, set up once for the whole process.

Every module logs through `logger`; the service name comes from POWERTOOLS_SERVICE_NAME
(set per function by the CDK app and the local stack).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LotaBots")

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lotabots"))
tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lotabots"))
metrics = Metrics(namespace=NAMESPACE)
