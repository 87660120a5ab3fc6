"""Creates the platform's AWS resources in moto (local stack and tests).

Names come from the same settings the functions read and the queues/rules from
`lotabots.topology`, so what exists locally is what the CDK app creates in the cloud.
Returns the environment variables the functions need to find them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from lotabots import aws, config, topology
from lotabots.config import AlertSettings, AuditSettings, AuthSettings, DocumentSettings, JobSettings
from lotabots.storage_keys import DOCUMENTS_PREFIX

# Audit anchors: compliance-mode retention as in the cloud, one day locally.
AUDIT_ANCHOR_RETENTION_DAYS = 1


def _create_table(name: str, ttl_attribute: str | None = "expiration") -> None:
    ddb = aws.client("dynamodb")
    try:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ddb.exceptions.ResourceInUseException:
        return
    if ttl_attribute:
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
        )


def _create_bucket(name: str) -> None:
    s3 = aws.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=name)


def _create_anchor_bucket(name: str) -> None:
    """Object Lock (versioning implied) with a compliance-mode default retention, as in CDK.

    CDK's create-only bucket policy (deny a PUT without If-None-Match) is not mirrored: moto 5.2
    does not see the `s3:if-none-match` condition key and would deny every anchor write."""
    s3 = aws.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": AUDIT_ANCHOR_RETENTION_DAYS}},
        },
    )


def _create_queues() -> dict[str, str]:
    sqs = aws.client("sqs")
    env: dict[str, str] = {}
    for queue in topology.QUEUES:
        dlq_arn = _queue_arn(sqs.create_queue(QueueName=f"{queue.name}-dlq")["QueueUrl"])
        url = sqs.create_queue(
            QueueName=queue.name,
            Attributes={
                "VisibilityTimeout": str(queue.visibility_timeout_s),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
                ),
            },
        )["QueueUrl"]
        env[queue.env_var] = url
    return env


def _queue_arn(url: str) -> str:
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


# moto's default payload for an SQS target leaves out the event's `account` (its built-in
# input template lacks it), which Powertools' EventBridgeModel requires. This transformer
# rebuilds the whole event exactly as EventBridge delivers it, so the workers parse locally
# what they parse in AWS (where the CDK targets pass the event unchanged).
_EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
_FULL_EVENT = {
    "InputPathsMap": {name: f"$.{name}" for name in _EVENT_FIELDS},
    "InputTemplate": (
        '{"version": "<version>", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
        '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
        '"detail": <detail>}'
    ),
}


def _create_rules(queue_urls: dict[str, str]) -> None:
    events = aws.client("events")
    bus = config.core().event_bus_name
    for rule in topology.EVENT_RULES:
        events.put_rule(
            Name=rule.name, EventPattern=json.dumps(rule.pattern), EventBusName=bus, State="ENABLED"
        )
        url = queue_urls[topology.queue(rule.queue).env_var]
        target = {"Id": rule.queue, "Arn": _queue_arn(url), "InputTransformer": _FULL_EVENT}
        events.put_targets(Rule=rule.name, EventBusName=bus, Targets=[target])


def _notify_ingest_queue(bucket: str, queue_url: str) -> None:
    aws.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": _queue_arn(queue_url),
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": DOCUMENTS_PREFIX}]}},
                }
            ]
        },
    )


def _put_secret(name: str, value: dict[str, Any]) -> None:
    sm = aws.client("secretsmanager")
    with contextlib.suppress(sm.exceptions.ResourceExistsException):
        sm.create_secret(Name=name, SecretString=json.dumps(value))


def provision() -> dict[str, str]:
    """Create everything (idempotent) and return the environment the functions need."""
    core = config.core()
    auth = config.load(AuthSettings)
    documents = config.load(DocumentSettings)
    jobs = config.load(JobSettings)
    alerts = config.load(AlertSettings)

    _create_table(core.idempotency_table)
    _create_table(auth.rate_limit_table)
    _create_table(jobs.dispatch_table)
    _create_bucket(documents.bucket)
    _create_bucket(jobs.artifacts_bucket)
    # Versioned as in the cloud: the AIOps state documents keep their history there.
    aws.client("s3").put_bucket_versioning(
        Bucket=jobs.artifacts_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    _create_anchor_bucket(config.load(AuditSettings).anchor_bucket)
    queue_urls = _create_queues()
    _create_rules(queue_urls)
    _notify_ingest_queue(documents.bucket, queue_urls["DOCUMENT_INGEST_QUEUE_URL"])
    # No bot token: alert notifications are logged and recorded as `logged` deliveries.
    _put_secret(alerts.slack_secret_id, {"bot_token": ""})

    from lotabots.auth import keys

    keys.ensure_signing_keys()
    # Attestation: the model-signing key (the migrate function creates it in AWS).
    from lotabots.attestation import signing

    signing.ensure_key()
    return queue_urls
