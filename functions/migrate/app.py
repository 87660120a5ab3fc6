"""Deploy-time migration function (topology kind "migration").

Run by the CDK `Trigger` on every deploy that changes this function or its layer (new
migrations ship in the layer): applies `alembic upgrade heads` on the database behind the RDS
proxy, then makes sure the JWT signing keyset exists and its JWKS is published (the keyset
secret is created with a placeholder; see `lotabots.auth.keys.ensure_signing_keys`) and that the
model-signing key exists (`lotabots.attestation.signing.ensure_key`).
A failure raises, which fails the deployment.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Any

from alembic.runtime.migration import MigrationContext
from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.attestation import signing
from lotabots.auth import keys
from lotabots.db import get_engine, migrate
from lotabots.observability import logger


def applied_heads() -> list[str]:
    """The revisions the database is at now (read back from alembic_version)."""
    with get_engine().connect() as connection:
        return sorted(MigrationContext.configure(connection).get_current_heads())


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    migrate.upgrade()
    heads = applied_heads()
    expected = sorted(migrate.current_heads())
    if heads != expected:
        raise RuntimeError(f"database is at {heads} after the upgrade, expected {expected}")
    logger.info("database migrated", extra={"heads": heads})
    keyset = keys.ensure_signing_keys()
    logger.info("signing keys ready", extra={"kid": keyset.current.kid})
    signing.ensure_key()
    return {"heads": heads, "signing_kid": keyset.current.kid}


gc.freeze()  # loaded: see the top of the module
gc.enable()
