"""Builds the CDK app: context defaults, the stack, cdk-nag."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from lotabots_infra.settings import StageSettings
from lotabots_infra.stack import LotaBotsStack

DEFAULT_REGION = "us-east-1"
# Behaviour switches of aws-cdk-lib this app relies on (normally kept in cdk.json).
FEATURE_FLAGS: dict[str, Any] = {
    # Layer changes produce a new function version, so the migration trigger runs when a
    # migration (which lives in the layer) is added.
    "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
    "@aws-cdk/aws-lambda:recognizeVersionProps": True,
    # Server access logs are granted by bucket policy, so the log bucket can enforce object ownership.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/core:target-partitions": ["aws"],
}


# The SAM-ready variant (`make sam-template`): see StageSettings.sam_local.
SAM_LOCAL_CONTEXT: dict[str, Any] = {"samLocal": True}


def stack_name(stage: str) -> str:
    return f"LotaBots-{stage}"


def build_app(
    *, outdir: str | None = None, context: Mapping[str, Any] | None = None, nag: bool = True
) -> App:
    ctx: dict[str, Any] = {**FEATURE_FLAGS, "aws:cdk:enable-asset-metadata": True, **(context or {})}
    app = App(outdir=outdir, context=ctx)
    region = str(app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION") or DEFAULT_REGION)
    account = app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    settings = StageSettings.from_node(app.node, region)
    LotaBotsStack(
        app,
        stack_name(settings.stage),
        settings=settings,
        env=Environment(account=account, region=region),
        description=f"LotaBots Serverless ({settings.stage})",
    )
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app
