"""The local stack's environment: embedded defaults and the variables that point at moto.

Defaults never overwrite what the developer set. The AWS endpoint and credentials are the
exception: the local stack talks only to its own moto server, so they are always forced to
fake values (and any profile is dropped) so that nothing can reach a real AWS account.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

# Local development only: printed at start, never used by a deployed stack.
DEFAULT_ADMIN_EMAIL = "admin@lotabots.local"
DEFAULT_ADMIN_PASSWORD = "lotabots-dev-password"  # noqa: S105 (dev-only default, printed at start)

DEFAULTS: dict[str, str] = {
    "LOTABOTS_STAGE": "local",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "lotabots",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "LotaBotsLocal",
    "JOB_BACKEND": "local",
    "LOTABOTS_BOOTSTRAP_ADMIN_EMAIL": DEFAULT_ADMIN_EMAIL,
    "LOTABOTS_BOOTSTRAP_ADMIN_PASSWORD": DEFAULT_ADMIN_PASSWORD,
    # AIOps on a stack minutes old: one-minute metric periods, and detectors that score after half
    # an hour of series time (the one-hour lookback reads the periods before the stack as zero).
    "AIOPS_METRIC_PERIOD_SECONDS": "60",
    "AIOPS_ANOMALY_WARMUP_SECONDS": "1800",
}

FAKE_CREDENTIALS: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local-session-token",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Variables that could make boto3 look for real credentials or config.
DROPPED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION")


def apply_defaults(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Fill in the embedded defaults that the developer did not set; returns what was set."""
    applied: dict[str, str] = {}
    for name, value in DEFAULTS.items():
        if name not in environ:
            environ[name] = value
            applied[name] = value
    environ.setdefault("AWS_DEFAULT_REGION", environ["AWS_REGION"])
    state_dir = Path(environ.get("LOTABOTS_STATE_DIR", ".local")).resolve()
    # Absolute, so that worker subprocesses started elsewhere find the same files.
    environ["LOTABOTS_STATE_DIR"] = str(state_dir)
    if "LOTABOTS_SQLITE_PATH" not in environ:
        environ["LOTABOTS_SQLITE_PATH"] = str(state_dir / "lotabots.db")
        applied["LOTABOTS_SQLITE_PATH"] = environ["LOTABOTS_SQLITE_PATH"]
    return applied


def point_at_moto(environ: MutableMapping[str, str], endpoint_url: str) -> None:
    """Send every AWS SDK call to the local moto server with fake credentials."""
    for name in DROPPED:
        environ.pop(name, None)
    environ.update(FAKE_CREDENTIALS)
    environ["AWS_ENDPOINT_URL"] = endpoint_url
