"""`LotaBotsStack`: the whole platform in one stack, composed from one construct per capability."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, NestedStack, Stack, Tags, triggers
from aws_cdk import aws_events as events
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lotabots import topology
from lotabots.config import (
    AIOpsSettings,
    AlertSettings,
    AttestationSettings,
    AuditSettings,
    AuthSettings,
    CoreSettings,
    DocumentSettings,
    JobSettings,
)
from lotabots.storage_keys import DOCUMENTS_PREFIX, QUARANTINE_PREFIX
from lotabots_infra import nag
from lotabots_infra.api import AUTHORIZER_CACHE, REVOCATIONS_CACHE, Api
from lotabots_infra.data import DB_NAME, Database, Tables
from lotabots_infra.functions import Functions
from lotabots_infra.gpu import GpuBatch
from lotabots_infra.grants import AIOPS_INVENTORY, Resources
from lotabots_infra.messaging import Messaging
from lotabots_infra.network import Network
from lotabots_infra.observability import Observability
from lotabots_infra.profiles import env_name
from lotabots_infra.releases import Releases
from lotabots_infra.secrets import SecretsAndParameters
from lotabots_infra.settings import StageSettings
from lotabots_infra.storage import Storage

MIGRATION_FUNCTION = "migrate"
AUTHORIZER_FUNCTION = "authorizer"
PARAMETERS_EXTENSION_URL = "http://localhost:2773"


class LotaBotsStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StageSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        # DBProxyTargetGroup has no Tags property in CloudFormation.
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]
        Tags.of(self).add("project", "lotabots", exclude_resource_types=untaggable)
        Tags.of(self).add("stage", settings.stage, exclude_resource_types=untaggable)

        self.network = Network(self, "Network", settings=settings)
        self.database = Database(self, "Database", settings=settings, network=self.network)
        self.tables = Tables(self, "Tables", settings=settings)
        self.storage = Storage(self, "Storage", settings=settings)
        self.secrets = SecretsAndParameters(self, "Config", settings=settings)
        self.gpu = GpuBatch(self, "Gpu", settings=settings, network=self.network, storage=self.storage)
        self.messaging = Messaging(self, "Messaging", settings=settings, scopes=self.event_rule_scopes())

        self.storage.documents.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.messaging.queues["document-ingest"]),
            s3.NotificationKeyFilter(prefix=DOCUMENTS_PREFIX),
        )

        resources = Resources(
            stack=self,
            database=self.database,
            tables=self.tables,
            storage=self.storage,
            secrets=self.secrets,
            messaging=self.messaging,
            gpu=self.gpu,
            stage=settings.stage,
        )
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            network=self.network,
            resources=resources,
            values=self.environment_values(),
        )
        fns = self.functions.functions
        aliases = self.functions.aliases
        self.api = Api(
            self,
            "Api",
            settings=settings,
            functions={
                name: alias
                for name, alias in aliases.items()
                if name not in (AUTHORIZER_FUNCTION, MIGRATION_FUNCTION)
            },
            authorizer_function=aliases[AUTHORIZER_FUNCTION],
        )
        self._aiops_wiring(settings)
        # Migrations (and the signing keyset) on every deploy that changes the function or its layer.
        self.migration = triggers.Trigger(
            self,
            "MigrateOnDeploy",
            handler=fns[MIGRATION_FUNCTION],
            execute_after=[self.database],
            execute_on_handler_change=True,
            timeout=Duration.seconds(topology.function(MIGRATION_FUNCTION).timeout_s),
        )
        # Alarms, the dashboard and the alert topic live in a nested stack: CloudFormation allows
        # 500 resources per stack, and the platform's 22 functions with their versions, aliases,
        # deployment groups, roles, log groups and API methods already take most of them.
        monitoring = NestedStack(self, "Monitoring", description="LotaBots alarms, dashboard and alert topic")
        self.observability = Observability(
            monitoring,
            "Observability",
            settings=settings,
            functions=fns,
            aliases=aliases,
            queues=self.messaging.queues,
            dlqs=self.messaging.all_dlqs,
            api=self.api.api,
            cluster=self.database.cluster,
        )
        self.releases = Releases(
            self,
            "Releases",
            settings=settings,
            aliases=aliases,
            alarms=self.observability.release_alarms,
        )
        CfnOutput(self, "ApiUrl", value=self.api.api.url, description="Base URL of the REST API")
        CfnOutput(self, "DocumentsBucket", value=self.storage.documents.bucket_name)
        CfnOutput(self, "ArtifactsBucket", value=self.storage.artifacts.bucket_name)
        CfnOutput(self, "GpuImageRepository", value=self.gpu.repository.repository_uri)
        CfnOutput(self, "AlertTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(self, "SigningKeySecret", value=self.secrets.signing_keys.secret_name)
        CfnOutput(self, "SlackSecret", value=self.secrets.slack.secret_name)
        CfnOutput(self, "ModalSecret", value=self.secrets.modal.secret_name)
        CfnOutput(self, "AuditAnchorBucket", value=self.storage.audit_anchors.bucket_name)
        nag.acknowledge_stack(self)

    def _aiops_wiring(self, settings: StageSettings) -> None:
        """What the AIOps schedules read about the deployed stack: the inventory parameter (physical
        function names, their log groups, the queue name prefix and the API URL for the health probe;
        a fixed name, so the functions that read it do not depend on it)."""
        fns = self.functions
        inventory = {
            "functions": {
                name: {"function_name": fn.function_name, "log_group": fns.log_groups[name].log_group_name}
                for name, fn in fns.functions.items()
            },
            "queue_prefix": settings.name(""),
            # Here, not in the monitor's environment: a function depending on the API stage closes
            # a dependency cycle (stage → methods → aliases → deployment groups → alarms → function).
            "api_url": self.api.api.url,
        }
        self.aiops_inventory = ssm.StringParameter(
            self,
            "AiopsInventory",
            parameter_name=settings.path(AIOPS_INVENTORY),
            string_value=self.to_json_string(inventory),
            description="AIOps: the stack's functions, log groups and queue prefix (lotabots.aiops.sources)",
        )

    def event_rule_scopes(self) -> dict[str, dict[str, Any]]:
        """Narrow the rules on account-wide AWS events to this stack's own resources."""
        alarm_prefix = self.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=self.settings.name(""),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return {
            # Only jobs of this stack's queue (other stacks in the account run Batch jobs too).
            "batch-job-state": {"detail": {"jobQueue": [self.gpu.job_queue.job_queue_arn]}},
            # Only this stack's alarms, all named lotabots-<stage>-... (observability.py).
            "alarms-to-alerts": {"resources": events.Match.prefix(alarm_prefix)},
        }

    def environment_values(self) -> dict[str, str]:
        """Every environment variable the stack can fill, keyed by the settings' aliases."""
        s = self.settings
        secrets = self.secrets
        queues = self.messaging.queues
        return {
            env_name(CoreSettings, "event_bus_name"): "default",
            env_name(CoreSettings, "idempotency_table"): self.tables.idempotency.table_name,
            env_name(CoreSettings, "cors_allow_origin"): s.cors_allow_origin,
            env_name(CoreSettings, "db_secret_arn"): self.database.secret.secret_arn,
            env_name(CoreSettings, "db_proxy_endpoint"): self.database.proxy.endpoint,
            env_name(CoreSettings, "db_name"): DB_NAME,
            env_name(AuthSettings, "jwt_issuer"): s.jwt_issuer,
            env_name(AuthSettings, "jwt_audience"): s.jwt_audience,
            env_name(AuthSettings, "signing_key_secret_id"): secrets.signing_keys.secret_arn,
            env_name(AuthSettings, "jwks_parameter_name"): secrets.jwks.parameter_name,
            env_name(AuthSettings, "revocations_parameter_name"): secrets.revocations.parameter_name,
            env_name(AuthSettings, "parameters_extension_url"): PARAMETERS_EXTENSION_URL,
            env_name(AuthSettings, "authorizer_cache_seconds"): str(int(AUTHORIZER_CACHE.to_seconds())),
            env_name(AuthSettings, "revocations_cache_seconds"): str(int(REVOCATIONS_CACHE.to_seconds())),
            env_name(AuthSettings, "rate_limit_table"): self.tables.rate_limits.table_name,
            env_name(DocumentSettings, "bucket"): self.storage.documents.bucket_name,
            env_name(DocumentSettings, "quarantine_prefix"): QUARANTINE_PREFIX,
            env_name(JobSettings, "queue_url"): queues["gpu-jobs"].queue_url,
            env_name(JobSettings, "default_backend"): s.job_backend,
            env_name(JobSettings, "artifacts_bucket"): self.storage.artifacts.bucket_name,
            env_name(JobSettings, "dispatch_table"): self.tables.job_dispatch.table_name,
            env_name(JobSettings, "modal_secret_id"): secrets.modal.secret_arn,
            env_name(JobSettings, "batch_job_queue"): self.gpu.job_queue.job_queue_arn,
            env_name(JobSettings, "batch_job_definition"): self.gpu.job_definition.job_definition_arn,
            env_name(AlertSettings, "events_queue_url"): queues["alert-events"].queue_url,
            env_name(AlertSettings, "notify_queue_url"): queues["alert-notify"].queue_url,
            env_name(AlertSettings, "slack_secret_id"): secrets.slack.secret_arn,
            env_name(AlertSettings, "config_parameter"): secrets.alerts_config.parameter_name,
            env_name(AuditSettings, "anchor_bucket"): self.storage.audit_anchors.bucket_name,
            env_name(AttestationSettings, "model_signing_key_secret_id"): secrets.model_signing.secret_arn,
            env_name(AIOpsSettings, "bucket"): self.storage.artifacts.bucket_name,
            env_name(AIOpsSettings, "inventory_parameter"): self.settings.path(AIOPS_INVENTORY),
            env_name(AIOpsSettings, "batch_compute_environment"): self.gpu.spot.compute_environment_arn,
        }
