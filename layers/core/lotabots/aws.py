"""boto3 clients, created lazily and once per container.

Creating a client costs tens of milliseconds, so nothing here runs at import time: a
function only pays for the clients it actually uses. `AWS_ENDPOINT_URL` (honoured by
botocore itself and passed explicitly here) points every client at the local stack.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lotabots import config


@cache
def _session() -> Any:
    import boto3

    from lotabots.observability import tracer

    tracer.patch(["boto3", "botocore"])
    return boto3.session.Session()


@cache
def client(service_name: str) -> Any:
    from botocore.config import Config

    settings = config.core()
    return _session().client(
        service_name,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=3,
            read_timeout=10,
            # Presigned S3 URLs/POSTs default to SigV2 unless SigV4 is asked for explicitly.
            signature_version="s3v4" if service_name == "s3" else None,
        ),
    )


def reset() -> None:
    """Drop cached clients (tests and the local stack switch endpoints)."""
    client.cache_clear()
    _session.cache_clear()
