"""AWS Batch for GPU jobs: spot and on-demand GPU compute environments (ECS-optimised AL2023
NVIDIA AMI), one job queue that tries spot first, and a job definition asking for one GPU.

The container image is NOT built at synth (that would need Docker): it lives in the ECR
repository created here and is built from `gpu_jobs/Dockerfile` with the repository root as
context (`docker build -f gpu_jobs/Dockerfile .`) and pushed by CI or `make gpu-image`
(tag = `-c gpuImageTag=...`, default the package version). Tags are immutable, so a deployed
job definition always runs the image it was deployed with.

The runner takes the artifacts bucket and the event bus from the job spec dispatch passes in
the command (dispatch also overrides EVENT_BUS_NAME); its AWS clients take their region from
AWS_REGION (`CoreSettings.aws_region`), which Batch does not set on EC2 compute environments.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from lotabots.config import CoreSettings
from lotabots.storage_keys import JOBS_PREFIX
from lotabots_infra.network import Network
from lotabots_infra.profiles import env_name
from lotabots_infra.settings import StageSettings
from lotabots_infra.storage import Storage

JOB_TIMEOUT = Duration.hours(2)
JOB_VCPUS = 4
JOB_MEMORY = Size.gibibytes(14)


class GpuBatch(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        network: Network,
        storage: Storage,
    ) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self,
            "Images",
            repository_name=settings.name("gpu-jobs"),
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[ecr.LifecycleRule(description="keep the last 20 images", max_image_count=20)],
            removal_policy=RemovalPolicy.RETAIN,
        )
        common: dict[str, Any] = {
            "vpc": network.vpc,
            "vpc_subnets": network.egress,
            "security_groups": [network.batch_sg],
            "instance_types": [ec2.InstanceType(name) for name in settings.gpu_instance_types],
            "use_optimal_instance_classes": False,
            "images": [batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA)],
            "minv_cpus": 0,
            "maxv_cpus": settings.gpu_max_vcpus,
            "update_to_latest_image_version": True,
        }
        # Spot first (cheapest), on-demand when spot capacity is short.
        self.spot = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "Spot",
            spot=True,
            allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED,
            **common,
        )
        self.on_demand = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "OnDemand",
            spot=False,
            allocation_strategy=batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
            **common,
        )
        self.job_queue = batch.JobQueue(
            self,
            "Queue",
            job_queue_name=settings.name("gpu"),
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.spot, order=1),
                batch.OrderedComputeEnvironment(compute_environment=self.on_demand, order=2),
            ],
        )

        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="GPU job containers: read inputs and write results under jobs/, publish results",
        )
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[storage.artifacts.arn_for_objects(f"{JOBS_PREFIX}*")],
            )
        )
        stack = Stack.of(self)
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[stack.format_arn(service="events", resource="event-bus", resource_name="default")],
            )
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.RETAIN if settings.production else RemovalPolicy.DESTROY,
        )
        self.job_definition = batch.EcsJobDefinition(
            self,
            "JobDefinition",
            job_definition_name=settings.name("gpu-job"),
            container=batch.EcsEc2ContainerDefinition(
                self,
                "Container",
                image=ecs.ContainerImage.from_ecr_repository(self.repository, settings.gpu_image_tag),
                gpu=1,
                cpu=JOB_VCPUS,
                memory=JOB_MEMORY,
                # Dispatch overrides the command with the job spec; this default only prints usage.
                command=["python", "-m", "gpu_jobs", "--help"],
                job_role=self.job_role,
                environment={
                    env_name(CoreSettings, "event_bus_name"): "default",
                    env_name(CoreSettings, "aws_region"): stack.region,
                    env_name(CoreSettings, "stage"): settings.stage,
                },
                logging=ecs.LogDrivers.aws_logs(stream_prefix="gpu-job", log_group=self.log_group),
                readonly_root_filesystem=False,
            ),
            retry_attempts=3,
            retry_strategies=[
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.CANNOT_PULL_CONTAINER),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.NON_ZERO_EXIT_CODE),
            ],
            timeout=JOB_TIMEOUT,
            propagate_tags=True,
        )
