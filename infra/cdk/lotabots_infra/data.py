"""Aurora PostgreSQL Serverless v2 behind RDS Proxy, and the DynamoDB tables.

Functions never talk to the cluster directly: they connect to the proxy with TLS
(`sslmode=require`) using the generated secret, which Secrets Manager rotates. The cluster
accepts connections only from the proxy's security group.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from constructs import Construct

from lotabots_infra.network import POSTGRES_PORT, Network
from lotabots_infra.settings import StageSettings

DB_NAME = "lotabots"
DB_ADMIN_USER = "lotabots_admin"
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_17_7


class Database(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StageSettings, network: Network
    ) -> None:
        super().__init__(scope, construct_id)
        vpc = network.vpc
        self.db_sg = ec2.SecurityGroup(
            self, "ClusterSg", vpc=vpc, description="Aurora cluster: only the proxy", allow_all_outbound=False
        )
        self.proxy_sg = ec2.SecurityGroup(
            self, "ProxySg", vpc=vpc, description="RDS proxy: only the functions", allow_all_outbound=False
        )
        # The proxy <-> cluster rules are added by `add_proxy` below.
        self.proxy_sg.add_egress_rule(
            network.endpoint_sg, ec2.Port.tcp(443), "Secrets Manager endpoint (credentials)"
        )
        for function_sg in (network.isolated_functions_sg, network.internet_functions_sg):
            self.allow_from(function_sg)

        cluster_id = settings.name("db")
        # Created here (not by RDS) so that it has a retention and no log-retention custom resource.
        logs.LogGroup(
            self,
            "PostgresLogs",
            log_group_name=f"/aws/rds/cluster/{cluster_id}/postgresql",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.RETAIN if settings.production else RemovalPolicy.DESTROY,
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            cluster_identifier=cluster_id,
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
            writer=rds.ClusterInstance.serverless_v2(
                "Writer", auto_minor_version_upgrade=True, publicly_accessible=False
            ),
            readers=(
                [rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)]
                if settings.production
                else []
            ),
            serverless_v2_min_capacity=settings.db_min_capacity,
            serverless_v2_max_capacity=settings.db_max_capacity,
            vpc=vpc,
            vpc_subnets=network.isolated,
            security_groups=[self.db_sg],
            credentials=rds.Credentials.from_generated_secret(
                DB_ADMIN_USER, secret_name=settings.path("database").lstrip("/")
            ),
            default_database_name=DB_NAME,
            storage_encrypted=True,
            iam_authentication=True,
            parameters={"rds.force_ssl": "1"},
            backup=rds.BackupProps(retention=Duration.days(settings.db_backup_days)),
            deletion_protection=settings.production,
            removal_policy=RemovalPolicy.SNAPSHOT,
            copy_tags_to_snapshot=True,
            cloudwatch_logs_exports=["postgresql"],
        )
        self.cluster.node.add_dependency(self.node.find_child("PostgresLogs"))
        assert self.cluster.secret is not None
        self.secret = self.cluster.secret
        # The rotation function is a Serverless Application Repository app, which SAM CLI can only
        # resolve from AWS with credentials: the SAM variant (never deployed) goes without it.
        if not settings.sam_local:
            self.cluster.add_rotation_single_user(
                automatically_after=Duration.days(30), vpc_subnets=network.isolated
            )
        self.proxy = self.cluster.add_proxy(
            "Proxy",
            vpc=vpc,
            vpc_subnets=network.isolated,
            secrets=[self.secret],
            security_groups=[self.proxy_sg],
            require_tls=True,
            debug_logging=False,
            db_proxy_name=settings.name("proxy"),
        )

    def allow_from(self, peer: ec2.ISecurityGroup) -> None:
        self.proxy_sg.add_ingress_rule(peer, ec2.Port.tcp(POSTGRES_PORT), "PostgreSQL from functions")
        peer.add_egress_rule(self.proxy_sg, ec2.Port.tcp(POSTGRES_PORT), "PostgreSQL to the RDS proxy")


class Tables(Construct):
    """On-demand tables with hash key `id`, TTL `expiration`, PITR and encryption at rest."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if settings.production else RemovalPolicy.DESTROY
        self.idempotency = self._table("Idempotency", removal)
        self.rate_limits = self._table("RateLimits", removal)
        self.job_dispatch = self._table("JobDispatch", removal)

    def _table(self, construct_id: str, removal: RemovalPolicy) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute="expiration",
            removal_policy=removal,
        )
