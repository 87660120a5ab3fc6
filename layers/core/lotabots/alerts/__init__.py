"""Alerting: Alertmanager semantics (dedup, grouping, routing, inhibition, silences), serverless.

API → `service`; EventBridge events → `sources` → `service.ingest`; the scheduled `flush`
turns due groups into notifications (an outbox sent to the notify queue); `notify` delivers
them to Slack (`slack`) exactly once in effect. Routing and timings come from
`configuration` (SSM parameter or `default_config.yaml`).
"""
