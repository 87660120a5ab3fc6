"""Secrets Manager secrets and SSM parameters the functions read.

No secret value is ever in the template. Each secret is created with an empty JSON shape
that an operator (or the app) fills in:

- JWT signing keyset: the placeholder is replaced by `lotabots keys ensure`, which the
  migration function also runs on every deploy (`lotabots.auth.keys.ensure_signing_keys()`:
  a secret without a usable keyset gets a fresh ES256 key and the public JWKS is published
  to the JWKS parameter). Rotate with `lotabots keys rotate`.
- Slack `{"bot_token"}` and Modal `{"token_id", "token_secret"}`:
  `aws secretsmanager put-secret-value --secret-id <name> --secret-string '{...}'`.
  CloudFormation only writes the placeholder when the secret is created, so later deploys
  never overwrite what was put there.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import SecretValue
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lotabots_infra.assets import PACKAGE_DIR
from lotabots_infra.settings import StageSettings

ALERTS_DEFAULT_CONFIG = PACKAGE_DIR / "alerts" / "default_config.yaml"
# Used when the alerts package has no default document yet: a valid, empty YAML mapping.
ALERTS_PLACEHOLDER_CONFIG = "{}\n"
STANDARD_PARAMETER_LIMIT = 4096


def alerts_config_document(path: Path = ALERTS_DEFAULT_CONFIG) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ALERTS_PLACEHOLDER_CONFIG


class SecretsAndParameters(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        self.signing_keys = self._secret(
            "SigningKeys",
            "jwt-signing-keys",
            "LotaBots JWT signing keyset (ES256); written by `lotabots keys ensure|rotate`",
            {"placeholder": "replaced by lotabots keys ensure"},
            settings,
        )
        self.slack = self._secret(
            "Slack", "slack", "Slack bot token for alert notifications", {"bot_token": ""}, settings
        )
        self.modal = self._secret(
            "Modal",
            "modal",
            "Modal API token for GPU jobs",
            {"token_id": "", "token_secret": ""},
            settings,
        )

        self.model_signing = self._secret(
            "ModelSigningKey",
            "model-signing-key",
            "LotaBots model-signing key (ECDSA P-256, OpenSSF model signing); set by the migrate function",
            {"placeholder": "replaced by the migrate function (lotabots.attestation.signing.ensure_key)"},
            settings,
        )

        self.jwks = ssm.StringParameter(
            self,
            "Jwks",
            parameter_name=settings.path("jwks"),
            string_value=json.dumps({"keys": []}),
            description="Public JWKS of the access tokens; republished by the app on key changes",
        )
        self.revocations = ssm.StringParameter(
            self,
            "Revocations",
            parameter_name=settings.path("revoked-principals"),
            string_value="{}",
            description="Revoked principals {user_id: revoked_at_epoch}; written by the auth service",
        )
        document = alerts_config_document()
        self.alerts_config = ssm.StringParameter(
            self,
            "AlertsConfig",
            parameter_name=settings.path("alerts-config"),
            string_value=document,
            tier=(
                ssm.ParameterTier.STANDARD
                if len(document.encode()) <= STANDARD_PARAMETER_LIMIT
                else ssm.ParameterTier.ADVANCED
            ),
            description="Alert routing, grouping and inhibition (YAML)",
        )

    def _secret(
        self,
        construct_id: str,
        name: str,
        description: str,
        shape: dict[str, str],
        settings: StageSettings,
    ) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self,
            construct_id,
            secret_name=settings.path(name).lstrip("/"),
            description=description,
            # Not a secret: the empty shape the operator or the app replaces.
            secret_string_value=SecretValue.unsafe_plain_text(json.dumps(shape)),
        )
