"""The VPC: two AZs, isolated subnets for the database and most functions, egress subnets
(NAT) only for what must reach the internet, VPC endpoints for every AWS service the
in-VPC functions call, and flow logs.

Why NAT at all: `alert_notify` posts to Slack and `jobs` / `job_dispatch` / `job_results` call
Modal's API (and AWS Batch, which has no endpoint here); all four also read and write the
database, so they cannot run outside the VPC. They run in the egress subnets; every other
function runs in isolated subnets with no route to the internet and reaches AWS only through
the endpoints below.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from lotabots_infra.settings import StageSettings

POSTGRES_PORT = 5432
VPC_CIDR = "10.40.0.0/16"

INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "EventBridge": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
}


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        self.isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.egress = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=2,
            nat_gateways=settings.nat_gateways,
            restrict_default_security_group=False,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="egress", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
                ),
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                ),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.isolated, self.egress]
                ),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=[self.isolated, self.egress]
                ),
            },
        )
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.RETAIN if settings.production else RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        self.endpoint_sg = ec2.SecurityGroup(
            self, "EndpointSg", vpc=self.vpc, description="VPC interface endpoints", allow_all_outbound=False
        )
        self.endpoint_sg.add_ingress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(443), "HTTPS from inside the VPC"
        )
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.isolated,
                security_groups=[self.endpoint_sg],
                private_dns_enabled=True,
                open=False,
            )

        # Functions: outbound HTTPS only (endpoints, and the internet through NAT for the egress
        # group) plus PostgreSQL to the RDS proxy (added by the database construct).
        self.isolated_functions_sg = self._function_sg(
            "IsolatedFunctionsSg", "Functions without internet access"
        )
        self.internet_functions_sg = self._function_sg(
            "InternetFunctionsSg", "Functions that call Slack or Modal through NAT"
        )
        self.batch_sg = ec2.SecurityGroup(
            self,
            "BatchSg",
            vpc=self.vpc,
            description="GPU batch instances: image pulls, S3, EventBridge",
            allow_all_outbound=False,
        )
        self.batch_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS (ECR, S3, EventBridge)")

    def _function_sg(self, construct_id: str, description: str) -> ec2.SecurityGroup:
        sg = ec2.SecurityGroup(
            self, construct_id, vpc=self.vpc, description=description, allow_all_outbound=False
        )
        sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS endpoints / the internet")
        return sg

    def function_placement(self, internet: bool) -> tuple[ec2.SubnetSelection, ec2.SecurityGroup]:
        if internet:
            return self.egress, self.internet_functions_sg
        return self.isolated, self.isolated_functions_sg
