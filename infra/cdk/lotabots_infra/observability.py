"""Alarms, the alert topic and the dashboard.

Every alarm notifies the KMS-encrypted SNS alert topic (subscribe on-call to it; `-c
alarmEmail=...` adds an e-mail subscription). The same alarms also reach Slack through the
platform's own alerting: the topology rule `alarms-to-alerts` forwards this stack's CloudWatch
"Alarm State Change" events (alarm names start with `lotabots-<stage>-`) to the alert-events queue.

Each function has an error alarm and a latency alarm on its `live` alias, one-minute periods so
that CodeDeploy can roll a canary back within its five minutes (`releases.py`). The
authorizer's error alarm watches its `AuthorizerFailures` metric, not Lambda's `Errors`: every
refused token is a Lambda error by API Gateway's contract, and an expired token is no incident.

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
from lotabots.audit.service import CHAIN_INVALID_METRIC as AUDIT_CHAIN_INVALID_METRIC
from lotabots_infra.functions import METRICS_NAMESPACE
from lotabots_infra.settings import StageSettings

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
# A function whose p99 duration stays above this share of its timeout is about to time out.
LATENCY_ALARM_TIMEOUT_SHARE = 0.8
LATENCY_EVALUATION_MINUTES = 3
AUTHORIZER_FUNCTION = "authorizer"
API_P99_THRESHOLD_MS = 3000
API_5XX_THRESHOLD = 5
MIN_OLDEST_MESSAGE_AGE_S = 600
# Slack has kept an alert group waiting this long: an outage (or a revoked token, a missing
# channel). Notifications are kept and retried meanwhile; this tells on-call by e-mail.
ALERT_DELIVERY_LAG_THRESHOLD_S = 600


# Functions per throttle alarm: CloudWatch's hard limit of metrics in one metric-math alarm.
THROTTLE_GROUP_SIZE = 10


def platform_metric(
    name: str,
    service: str,
    *,
    statistic: str = "Sum",
    label: str | None = None,
    period: Duration = FIVE_MINUTES,
) -> cloudwatch.Metric:
    """A metric the functions publish with Powertools Metrics (EMF): namespace LotaBots,
    dimension `service` = the topology function's name."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period,
        label=label,
    )


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
        aliases: Mapping[str, lambda_.Alias],
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
        # Per function: the alarms that roll a new version back (errors and latency).
        self.release_alarms: dict[str, list[cloudwatch.Alarm]] = {}

        for name in functions:
            function_spec = topology.function(name)
            alias = aliases[name]
            errors = self._alarm(
                f"{name}-errors",
                (
                    platform_metric("AuthorizerFailures", name, period=ONE_MINUTE)
                    if name == AUTHORIZER_FUNCTION
                    else alias.metric_errors(period=ONE_MINUTE, statistic="Sum")
                ),
                threshold=1,
                description=(
                    f"{name} failed (keys unreadable or a crash; refused tokens do not count)"
                    if name == AUTHORIZER_FUNCTION
                    else f"{name} raised errors"
                ),
            )
            latency_ms = int(function_spec.timeout_s * 1000 * LATENCY_ALARM_TIMEOUT_SHARE)
            latency = self._alarm(
                f"{name}-latency",
                alias.metric_duration(period=ONE_MINUTE, statistic="p99"),
                threshold=latency_ms,
                evaluation_periods=LATENCY_EVALUATION_MINUTES,
                description=(
                    f"{name} p99 duration above {latency_ms} ms ({LATENCY_ALARM_TIMEOUT_SHARE:.0%} of its "
                    f"{function_spec.timeout_s} s timeout) for {LATENCY_EVALUATION_MINUTES} minutes"
                ),
            )
            self.release_alarms[name] = [errors, latency]
        # Throttles: one alarm per group of functions (a metric-math sum; an alarm may read at most
        # 10 metrics). One alarm per function cost 22 of CloudFormation's 500 resources per stack
        # for no extra signal: the alarm's reason and the dashboard name the function.
        names = sorted(functions)
        for index in range(0, len(names), THROTTLE_GROUP_SIZE):
            group = names[index : index + THROTTLE_GROUP_SIZE]
            self._alarm(
                f"throttles-{index // THROTTLE_GROUP_SIZE + 1}",
                cloudwatch.MathExpression(
                    expression=" + ".join(f"t{i}" for i in range(len(group))),
                    using_metrics={
                        f"t{i}": functions[fn_name].metric_throttles(period=FIVE_MINUTES, statistic="Sum")
                        for i, fn_name in enumerate(group)
                    },
                    period=FIVE_MINUTES,
                    label="throttled invocations",
                ),
                threshold=1,
                description="throttled: " + ", ".join(group),
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
        if "audit_anchor" in functions:
            self._alarm(
                "audit-chain-invalid",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=AUDIT_CHAIN_INVALID_METRIC,
                    dimensions_map={"service": "audit_anchor"},
                    period=Duration.minutes(15),
                    statistic="Maximum",
                ),
                threshold=1,
                description="the audit chain or its Object Lock anchors show tampering (GET /audit/verify)",
                severity="critical",
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

        self._platform_widgets(functions)

    def _platform_widgets(self, functions: Mapping[str, lambda_.Function]) -> None:
        """GPU jobs, the platform's own metrics, alarm status and concurrency."""
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="GPU jobs",
                left=[
                    platform_metric("JobsQueued", "job_results", statistic="Maximum", label="queued"),
                    platform_metric("JobsRunning", "job_results", statistic="Maximum", label="running"),
                ],
                right=[
                    platform_metric("JobsCreated", "jobs", label="created (API)"),
                    platform_metric("JobsDispatched", "job_dispatch", label="dispatched"),
                    platform_metric("JobsSucceeded", "job_results", label="succeeded"),
                    platform_metric("JobsFailed", "job_results", label="failed"),
                    platform_metric("JobsTimedOut", "job_results", label="timed out"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="GPU job duration (s)",
                left=[
                    platform_metric("JobDuration", "job_results", statistic="p50", label="p50"),
                    platform_metric("JobDuration", "job_results", statistic="p99", label="p99"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="GPU utilisation (%, job telemetry)",
                left=[
                    platform_metric("GpuUtilization", "job_results", statistic="Average", label="mean"),
                    platform_metric("GpuUtilization", "job_results", statistic="Minimum", label="lowest job"),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100),
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sign-ins",
                left=[
                    platform_metric("Logins", "auth", label="logins"),
                    platform_metric("LoginFailures", "auth", label="failed logins"),
                    platform_metric("UsersRegistered", "auth", label="registrations"),
                ],
                right=[
                    platform_metric("AuthorizerDenials", AUTHORIZER_FUNCTION, label="refused tokens"),
                    platform_metric("AuthorizerFailures", AUTHORIZER_FUNCTION, label="authorizer failures"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Documents",
                left=[
                    platform_metric("DocumentsIngested", "document_ingest", label="ingested"),
                    platform_metric("DocumentsRejected", "document_ingest", label="rejected"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Alerts and notifications",
                left=[
                    platform_metric("AlertsReceived", "alerts", label="posted (API)"),
                    platform_metric("AlertEventsIngested", "alert_ingest", label="from events"),
                    platform_metric("AlertNotificationsCreated", "alert_flush", label="notifications"),
                ],
                right=[
                    platform_metric("NotificationsDelivered", "alert_notify", label="delivered"),
                    platform_metric("NotificationsLogged", "alert_notify", label="logged (no Slack token)"),
                    platform_metric("NotificationsDeferred", "alert_notify", label="deferred (retrying)"),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=list(self.alarms.values()),
                sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
                width=12,
                height=8,
            ),
            cloudwatch.GraphWidget(
                title="Concurrency",
                left=[
                    fn.metric("ConcurrentExecutions", period=FIVE_MINUTES, statistic="Maximum", label=name)
                    for name, fn in functions.items()
                ],
                right=[
                    cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name="UnreservedConcurrentExecutions",
                        period=FIVE_MINUTES,
                        statistic="Maximum",
                        label="account: unreserved in use",
                    )
                ],
                width=12,
                height=8,
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
