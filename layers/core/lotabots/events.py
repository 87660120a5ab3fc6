"""Publishing domain events on the EventBridge bus.

The correlation id of the request that caused an event travels inside its detail, so the
consumer's logs join the producer's.
"""

from __future__ import annotations

import json
from typing import Any

from lotabots import aws, config
from lotabots.observability import logger


def publish(source: str, detail_type: str, detail: dict[str, Any]) -> str:
    """Put one event on the bus; raises if EventBridge did not accept it."""
    correlation_id = logger.get_correlation_id()
    payload = {**detail, "correlation_id": detail.get("correlation_id") or correlation_id}
    response = aws.client("events").put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(payload, default=str),
                "EventBusName": config.core().event_bus_name,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        raise RuntimeError(
            f"EventBridge rejected {detail_type}: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )
    return str(response["Entries"][0].get("EventId", ""))
