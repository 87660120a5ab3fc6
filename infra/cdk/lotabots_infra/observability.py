"""Alarms, the alert topic and the dashboard.

Every alarm notifies the KMS-encrypted SNS alert topic (subscribe on-call to it; `-c
alarmEmail=...` adds an e-mail subscription). The same alarms also reach Slack through the
platform's own alerting: the topology rule `alarms-to-alerts` forwards every CloudWatch
"Alarm State Change" to the alert-events queue.

A Slack outage cannot announce itself in Slack: the `alert-delivery-lag` alarm watches how long
alert groups have waited for Slack to accept a notification (published every minute by
alert_flush) and reaches on-call through SNS/e-mail. Missing data counts as breaching: no
datapoint means the flush schedule, which also retries undelivered notifications, is not running.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lotabots import topology
from lotabots.alerts.metrics import DELIVERY_LAG_METRIC
from lotabots_infra.functions import METRICS_NAMESPACE
from lotabots_infra.settings import StageSettings

FIVE_MINUTES = Duration.minutes(5)
API_P99_THRESHOLD_MS = 3000
API_5XX_THRESHOLD = 5
MIN_OLDEST_MESSAGE_AGE_S = 600
# Slack has kept an alert group waiting this long: an outage (or a revoked token, a missing
# channel). Notifications are kept and retried meanwhile; this tells on-call by e-mail.
ALERT_DELIVERY_LAG_THRESHOLD_S = 600


def oldest_message_threshold_s(queue: topology.Queue) -> int:
    """A message older than two full redelivery cycles is stuck (or consumers are down)."""
    return max(MIN_OLDEST_MESSAGE_AGE_S, 2 * queue.visibility_timeout_s)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        functions: Mapping[str, lambda_.Function],
        queues: Mapping[str, sqs.Queue],
        dlqs: Mapping[str, sqs.Queue],
        api: apigw.RestApi,
        cluster: rds.DatabaseCluster,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.key = kms.Key(
            self,
            "AlertTopicKey",
            description="Encrypts the LotaBots alert topic",
            enable_key_rotation=True,
        )
        # CloudWatch publishes alarms to the encrypted topic: it needs the key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "AlertTopic",
            topic_name=settings.name("alerts"),
            display_name="LotaBots alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        for name, fn in functions.items():
            self._alarm(
                f"{name}-errors",
                fn.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                description=f"{name} raised errors",
            )
            self._alarm(
                f"{name}-throttles",
                fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                description=f"{name} was throttled",
            )
        for spec in topology.QUEUES:
            self._alarm(
                f"{spec.name}-oldest-message",
                queues[spec.name].metric_approximate_age_of_oldest_message(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                threshold=oldest_message_threshold_s(spec),
                description=f"messages on {spec.name} are not being consumed",
            )
        for name, dlq in dlqs.items():
            self._alarm(
                f"{name}-dlq-depth",
                dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=1,
                description=f"messages landed in the {name} dead-letter queue",
                severity="critical",
            )
        self._alarm(
            "alert-delivery-lag",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=DELIVERY_LAG_METRIC,
                dimensions_map={"service": "alert_flush"},
                period=Duration.minutes(1),
                statistic="Maximum",
            ),
            threshold=ALERT_DELIVERY_LAG_THRESHOLD_S,
            evaluation_periods=3,
            description=(
                f"Slack has not accepted alert notifications for over {ALERT_DELIVERY_LAG_THRESHOLD_S // 60}"
                " minutes (outage, token or channel); they are kept and retried until it does"
            ),
            severity="critical",
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self._alarm(
            "api-5xx",
            api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=API_5XX_THRESHOLD,
            description="the API answered 5xx",
            severity="critical",
        )
        self._alarm(
            "api-latency-p99",
            api.metric_latency(period=FIVE_MINUTES, statistic="p99"),
            threshold=API_P99_THRESHOLD_MS,
            evaluation_periods=3,
            description=f"API p99 latency above {API_P99_THRESHOLD_MS} ms for 15 minutes",
        )
        self._alarm(
            "db-capacity",
            cluster.metric("ACUUtilization", period=FIVE_MINUTES, statistic="Average"),
            threshold=90,
            evaluation_periods=3,
            description="Aurora Serverless v2 near its maximum capacity",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=settings.name("overview"))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[api.metric_count(period=FIVE_MINUTES)],
                right=[
                    api.metric_client_error(period=FIVE_MINUTES),
                    api.metric_server_error(period=FIVE_MINUTES),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency",
                left=[
                    api.metric_latency(period=FIVE_MINUTES, statistic="p50"),
                    api.metric_latency(period=FIVE_MINUTES, statistic="p99"),
                    api.metric_integration_latency(period=FIVE_MINUTES, statistic="p99"),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[fn.metric_errors(period=FIVE_MINUTES, label=name) for name, fn in functions.items()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function duration p99",
                left=[
                    fn.metric_duration(period=FIVE_MINUTES, statistic="p99", label=name)
                    for name, fn in functions.items()
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queue backlog",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, label=name)
                    for name, q in queues.items()
                ],
                right=[
                    q.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, label=f"{name} age")
                    for name, q in queues.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, label=name)
                    for name, q in dlqs.items()
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Database",
                left=[
                    cluster.metric("ServerlessDatabaseCapacity", period=FIVE_MINUTES, statistic="Average"),
                    cluster.metric("ACUUtilization", period=FIVE_MINUTES, statistic="Average"),
                ],
                right=[
                    cluster.metric_database_connections(period=FIVE_MINUTES),
                    cluster.metric_cpu_utilization(period=FIVE_MINUTES),
                ],
                width=24,
            ),
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        severity: str = "warning",
        treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in name.replace("_", "-").split("-")) + "Alarm",
            alarm_name=self.settings.name(f"{name}-{severity}"),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=treat_missing_data,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms[name] = alarm
        return alarm
