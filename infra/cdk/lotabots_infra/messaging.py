"""SQS queues (each with a DLQ) and EventBridge rules, built from `lotabots.topology`.

Every rule targets a queue, never a function, so every asynchronous path has redelivery
and a DLQ; a rule target that cannot be delivered lands in the rules' own DLQ.

Events from AWS services (`source: aws.*`) on the default bus are account-wide: the Batch job
of another stack, any alarm of the account. The stack narrows each such rule to its own
resources (`scopes`: rule name → pattern fragment merged into the topology pattern, e.g. this
stack's job queue or alarm-name prefix); a rule on AWS events without a scope is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lotabots import topology
from lotabots_infra.settings import StageSettings, pascal

DLQ_RETENTION = Duration.days(14)
QUEUE_RETENTION = Duration.days(4)
RULE_TARGET_RETRIES = 185  # EventBridge's maximum: keep retrying for 24 h before the DLQ


def _queue(scope: Construct, construct_id: str, **kwargs: object) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        **kwargs,  # type: ignore[arg-type]
    )


class Messaging(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        scopes: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        scopes = scopes or {}
        check_scopes(scopes)
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        for spec in topology.QUEUES:
            dlq = _queue(
                self,
                f"{pascal(spec.name)}Dlq",
                queue_name=settings.name(f"{spec.name}-dlq"),
                retention_period=DLQ_RETENTION,
            )
            queue = _queue(
                self,
                f"{pascal(spec.name)}Queue",
                queue_name=settings.name(spec.name),
                visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
                retention_period=QUEUE_RETENTION,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
            )
            self.queues[spec.name] = queue
            self.dlqs[spec.name] = dlq

        # Events EventBridge could not deliver to a target queue, and failed scheduled invocations.
        self.rule_dlq = _queue(
            self, "RuleTargetDlq", queue_name=settings.name("rule-target-dlq"), retention_period=DLQ_RETENTION
        )
        self.rules: dict[str, events.Rule] = {}
        bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        for rule_spec in topology.EVENT_RULES:
            rule = events.Rule(
                self,
                f"{pascal(rule_spec.name)}Rule",
                rule_name=settings.name(rule_spec.name),
                description=rule_spec.description or rule_spec.name,
                event_bus=bus,
                event_pattern=_pattern(merge_pattern(rule_spec.pattern, scopes.get(rule_spec.name, {}))),
            )
            rule.add_target(
                targets.SqsQueue(
                    self.queues[rule_spec.queue],
                    dead_letter_queue=self.rule_dlq,
                    retry_attempts=RULE_TARGET_RETRIES,
                    max_event_age=Duration.hours(24),
                )
            )
            self.rules[rule_spec.name] = rule

    @property
    def all_dlqs(self) -> dict[str, sqs.Queue]:
        return {**self.dlqs, "rule-target": self.rule_dlq}


def aws_service_rules() -> list[str]:
    """Topology rules matching events of AWS services (account-wide on the default bus)."""
    return [
        rule.name
        for rule in topology.EVENT_RULES
        if any(str(source).startswith("aws.") for source in rule.pattern.get("source", []))
    ]


def check_scopes(scopes: Mapping[str, dict[str, Any]]) -> None:
    names = {rule.name for rule in topology.EVENT_RULES}
    unknown = sorted(set(scopes) - names)
    unscoped = sorted(set(aws_service_rules()) - set(scopes))
    if unknown or unscoped:
        raise ValueError(
            f"event rule scopes: unknown rules {unknown}; rules on AWS service events without a scope "
            f"to this stack's resources {unscoped} (see Messaging)"
        )


def merge_pattern(pattern: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The pattern with `extra`'s fields added (nested objects merged; a field in both is refused)."""
    merged = dict(pattern)
    for key, value in extra.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = merge_pattern(merged[key], value)
        else:
            raise ValueError(f"scope field {key!r} is already set by the topology pattern")
    return merged


def _pattern(pattern: dict[str, object]) -> events.EventPattern:
    """An EventBridge pattern from topology's JSON form (`detail-type` → `detail_type`)."""
    known = {"source", "detail-type", "detail", "account", "region", "resources", "id", "time", "version"}
    unknown = set(pattern) - known
    if unknown:
        raise ValueError(f"unsupported event pattern keys: {sorted(unknown)}")
    return events.EventPattern(**{key.replace("-", "_"): value for key, value in pattern.items()})  # type: ignore[arg-type]
