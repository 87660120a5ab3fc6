"""Network, database, tables, buckets, secrets/parameters and the Batch GPU environment."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import Synth, mentions, ref_id

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def test_vpc_spans_two_azs_with_endpoints_flow_logs_and_one_nat(synth: Synth) -> None:
    subnets = synth.of_type("AWS::EC2::Subnet").values()
    azs = {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2 and len(list(subnets)) == 6
    assert len(synth.of_type("AWS::EC2::NatGateway")) == 1
    endpoints = [
        json.dumps(e["Properties"]["ServiceName"]) for e in synth.of_type("AWS::EC2::VPCEndpoint").values()
    ]
    for service in ("secretsmanager", "sqs", "events", "ssm", "xray", "logs", "monitoring", "s3", "dynamodb"):
        assert any(f".{service}" in e for e in endpoints), service
    gateways = [
        e
        for e in synth.of_type("AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Gateway"
    ]
    assert len(gateways) == 2
    (flow_log,) = synth.of_type("AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"


def test_aurora_serverless_v2_behind_an_rds_proxy_requiring_tls(synth: Synth) -> None:
    (cluster,) = synth.of_type("AWS::RDS::DBCluster").values()
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["StorageEncrypted"] is True
    assert props["EnableIAMDatabaseAuthentication"] is True
    assert props["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4}
    assert props["BackupRetentionPeriod"] == 7
    assert props["DeletionProtection"] is False  # dev stage; see the prod test below
    assert props["DatabaseName"] == "lotabots"
    assert cluster["DeletionPolicy"] == "Snapshot"
    (instance,) = synth.of_type("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
    assert instance["Properties"]["PubliclyAccessible"] is False
    (proxy,) = synth.of_type("AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    (rotation,) = synth.of_type("AWS::SecretsManager::RotationSchedule").values()
    assert rotation["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    (params,) = synth.of_type("AWS::RDS::DBClusterParameterGroup").values()
    assert params["Properties"]["Parameters"]["rds.force_ssl"] == "1"


def test_only_the_proxy_reaches_the_cluster_and_only_functions_reach_the_proxy(synth: Synth) -> None:
    database = synth.stack.database
    cluster_sg = synth.logical_id(database.db_sg)
    proxy_sg = synth.logical_id(database.proxy_sg)
    function_sgs = {
        synth.logical_id(synth.stack.network.isolated_functions_sg),
        synth.logical_id(synth.stack.network.internet_functions_sg),
    }
    ingress = synth.of_type("AWS::EC2::SecurityGroupIngress").values()
    into_cluster = {
        ref_id(r["Properties"]["SourceSecurityGroupId"])
        for r in ingress
        if ref_id(r["Properties"]["GroupId"]) == cluster_sg
    }
    into_proxy = {
        ref_id(r["Properties"]["SourceSecurityGroupId"])
        for r in ingress
        if ref_id(r["Properties"]["GroupId"]) == proxy_sg
    }
    assert proxy_sg in into_cluster
    assert into_cluster - {proxy_sg} <= {
        k for k in synth.of_type("AWS::EC2::SecurityGroup") if "Rotation" in k
    }
    assert into_proxy == function_sgs
    rules = [
        (
            ref_id(r["Properties"]["GroupId"]),
            ref_id(r["Properties"]["SourceSecurityGroupId"]),
            r["Properties"]["FromPort"],
        )
        for r in ingress
    ]
    assert len(rules) == len({json.dumps(r) for r in rules}), "duplicate security group rules fail on deploy"


def test_production_stage_protects_the_database_and_keeps_data(tmp_path: object) -> None:
    """stage=prod: deletion protection, a reader, two NAT gateways, 14-day backups, retained tables."""
    import tempfile

    from aws_cdk.assertions import Match, Template
    from lotabots_infra.app import build_app, stack_name

    from tests.infra.conftest import SKIP_BUNDLING

    with tempfile.TemporaryDirectory() as out:
        app = build_app(outdir=out, context={**SKIP_BUNDLING, "stage": "prod"}, nag=False)
        template = Template.from_stack(app.node.find_child(stack_name("prod")))
    template.has_resource_properties(
        "AWS::RDS::DBCluster", {"DeletionProtection": True, "BackupRetentionPeriod": 14}
    )
    template.resource_count_is("AWS::RDS::DBInstance", 2)
    template.resource_count_is("AWS::EC2::NatGateway", 2)
    template.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({"LOTABOTS_STAGE": "prod"})}}
    )


def test_dynamodb_tables_are_on_demand_with_pitr_sse_ttl_and_string_id(synth: Synth) -> None:
    tables = synth.of_type("AWS::DynamoDB::Table")
    assert len(tables) == 3
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
        assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
        assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]


def test_buckets_are_encrypted_versioned_private_and_tls_only(synth: Synth) -> None:
    buckets = synth.of_type("AWS::S3::Bucket")
    assert len(buckets) == 4  # access logs, documents, artifacts, audit anchors
    policies = synth.of_type("AWS::S3::BucketPolicy").values()
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert any(
            ref_id(p["Properties"]["Bucket"]) == logical_id
            and any(
                st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                for st in p["Properties"]["PolicyDocument"]["Statement"]
            )
            for p in policies
        ), logical_id


def test_documents_bucket_lifecycle_cors_and_access_logs(synth: Synth) -> None:
    documents = synth.resources[synth.logical_id(synth.stack.storage.documents)]["Properties"]
    rules = {r["Id"]: r for r in documents["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-quarantine"]["Prefix"] == "quarantine/"
    assert rules["expire-quarantine"]["ExpirationInDays"] == 30
    assert (
        rules["expire-deleted-and-replaced-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    )
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    (cors,) = documents["CorsConfiguration"]["CorsRules"]
    assert "POST" in cors["AllowedMethods"]
    assert ref_id(documents["LoggingConfiguration"]["DestinationBucketName"]) == synth.logical_id(
        synth.stack.storage.access_logs
    )


def test_secrets_hold_only_placeholders_and_parameters_have_their_documents(synth: Synth) -> None:
    """No secret value in the template: the JSON shapes the operator/app fill in; SSM defaults."""
    secrets = {
        v["Properties"]["Name"]: v["Properties"]
        for v in synth.of_type("AWS::SecretsManager::Secret").values()
    }
    # Only secrets some code reads (the database's own is generated by RDS).
    assert set(secrets) == {
        "lotabots/dev/database",
        "lotabots/dev/jwt-signing-keys",
        "lotabots/dev/slack",
        "lotabots/dev/modal",
        "lotabots/dev/model-signing-key",
    }
    assert json.loads(secrets["lotabots/dev/slack"]["SecretString"]) == {"bot_token": ""}
    assert "private_pem" not in json.loads(secrets["lotabots/dev/model-signing-key"]["SecretString"])
    assert json.loads(secrets["lotabots/dev/modal"]["SecretString"]) == {"token_id": "", "token_secret": ""}
    assert "current" not in json.loads(secrets["lotabots/dev/jwt-signing-keys"]["SecretString"])
    params = {v["Properties"]["Name"]: v["Properties"] for v in synth.of_type("AWS::SSM::Parameter").values()}
    assert json.loads(params["/lotabots/dev/jwks"]["Value"]) == {"keys": []}
    assert json.loads(params["/lotabots/dev/revoked-principals"]["Value"]) == {}
    from lotabots_infra.secrets import alerts_config_document

    assert params["/lotabots/dev/alerts-config"]["Value"] == alerts_config_document()


def test_alerts_config_parameter_is_a_valid_alerts_configuration(synth: Synth) -> None:
    """What the stack stores in SSM is accepted by the alerting code's own validation."""
    from lotabots_infra.secrets import ALERTS_DEFAULT_CONFIG

    from lotabots.alerts.configuration import parse_document

    params = {v["Properties"]["Name"]: v["Properties"] for v in synth.of_type("AWS::SSM::Parameter").values()}
    document = params["/lotabots/dev/alerts-config"]["Value"]
    assert ALERTS_DEFAULT_CONFIG.is_file(), "the alerts package ships its default configuration"
    assert parse_document(document) == parse_document(ALERTS_DEFAULT_CONFIG.read_text(encoding="utf-8"))


def test_batch_gpu_job_definition_asks_for_one_gpu_on_nvidia_spot_and_on_demand(synth: Synth) -> None:
    (definition,) = synth.of_type("AWS::Batch::JobDefinition").values()
    props = definition["Properties"]
    requirements = {r["Type"]: r["Value"] for r in props["ContainerProperties"]["ResourceRequirements"]}
    assert requirements["GPU"] == "1"
    assert mentions(props["ContainerProperties"]["Image"], synth.logical_id(synth.stack.gpu.repository))
    assert props["RetryStrategy"]["Attempts"] == 3
    assert props["Timeout"]["AttemptDurationSeconds"] == 7200
    assert ref_id(props["ContainerProperties"]["JobRoleArn"]) == synth.logical_id(synth.stack.gpu.job_role)
    environments = list(synth.of_type("AWS::Batch::ComputeEnvironment").values())
    assert sorted(ce["Properties"]["ComputeResources"]["Type"] for ce in environments) == ["EC2", "SPOT"]
    for ce in environments:
        resources = ce["Properties"]["ComputeResources"]
        assert all(t.startswith(("g5.", "g6.")) for t in resources["InstanceTypes"])
        assert resources["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]
        assert resources["MinvCpus"] == 0
    (queue,) = synth.of_type("AWS::Batch::JobQueue").values()
    assert [c["Order"] for c in queue["Properties"]["ComputeEnvironmentOrder"]] == [1, 2]
    (repository,) = synth.of_type("AWS::ECR::Repository").values()
    assert repository["Properties"]["ImageTagMutability"] == "IMMUTABLE"
    assert repository["Properties"]["ImageScanningConfiguration"] == {"ScanOnPush": True}
