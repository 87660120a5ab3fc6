"""Settings read from the environment, one validated class per concern.

Every environment variable the platform reads is declared here; the CDK app and the local
stack set them, so this module is the contract between the two runtimes. A missing or
invalid variable fails fast with an error that names it.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lotabots import storage_keys

S = TypeVar("S", bound="EnvSettings")


class SettingsError(RuntimeError):
    """Raised when the environment does not describe a usable configuration."""


class EnvSettings(BaseModel):
    """A settings class: each field is read from the environment variable named by its alias
    (case-insensitive); keyword arguments override the environment.

    Plain pydantic rather than pydantic-settings: every field here is a scalar named by one
    alias, which is all we need from it, and importing pydantic-settings (with python-dotenv and
    its source providers) cost every function's cold start about 20 ms.
    """

    # Built on first use: a function loads two or three of these classes, not all ten.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_environment_values(type(self)), **values})


def _environment_values(settings: type[EnvSettings]) -> dict[str, str]:
    environ = {key.upper(): value for key, value in os.environ.items()}
    found = {}
    for name, info in settings.model_fields.items():
        alias = info.alias or name
        if alias.upper() in environ:
            found[alias] = environ[alias.upper()]
    return found


class CoreSettings(EnvSettings):
    stage: str = Field("local", alias="LOTABOTS_STAGE")
    service_name: str = Field("lotabots", alias="POWERTOOLS_SERVICE_NAME")
    database_url: str | None = Field(None, alias="DATABASE_URL")
    db_secret_arn: str | None = Field(None, alias="DB_SECRET_ARN")
    db_proxy_endpoint: str | None = Field(None, alias="DB_PROXY_ENDPOINT")
    db_name: str = Field("lotabots", alias="DB_NAME")
    db_sslmode: str = Field("require", alias="DB_SSLMODE")
    sqlite_path: str = Field(".local/lotabots.db", alias="LOTABOTS_SQLITE_PATH")
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")
    aws_region: str = Field("us-east-1", alias="AWS_REGION")
    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME")
    idempotency_table: str = Field("lotabots-idempotency", alias="IDEMPOTENCY_TABLE")
    cors_allow_origin: str = Field("*", alias="LOTABOTS_CORS_ALLOW_ORIGIN")
    max_body_bytes: int = Field(1024 * 1024, alias="LOTABOTS_MAX_BODY_BYTES", gt=0)


REVOCATION_BOUND_SECONDS = 30


class AuthSettings(EnvSettings):
    jwt_issuer: str = Field("https://lotabots.local", alias="LOTABOTS_JWT_ISSUER")
    jwt_audience: str = Field("lotabots-api", alias="LOTABOTS_JWT_AUDIENCE")
    access_token_ttl_seconds: int = Field(900, alias="ACCESS_TOKEN_TTL_SECONDS", gt=0, le=3600)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, alias="REFRESH_TOKEN_TTL_SECONDS", gt=0)
    signing_key_secret_id: str = Field("lotabots/jwt-signing-keys", alias="SIGNING_KEY_SECRET_ID")
    jwks_parameter_name: str = Field("/lotabots/jwks", alias="JWKS_PARAMETER_NAME")
    jwks_url: str | None = Field(None, alias="LOTABOTS_JWKS_URL")
    jwks_cache_seconds: int = Field(300, alias="JWKS_CACHE_SECONDS", ge=0)
    bcrypt_rounds: int = Field(12, alias="BCRYPT_ROUNDS", ge=4, le=16)
    rate_limit_table: str = Field("lotabots-rate-limits", alias="RATE_LIMIT_TABLE")
    login_max_failures: int = Field(5, alias="LOGIN_MAX_FAILURES", gt=0)
    login_ip_max_failures: int = Field(50, alias="LOGIN_IP_MAX_FAILURES", gt=0)
    login_window_seconds: int = Field(900, alias="LOGIN_WINDOW_SECONDS", gt=0)
    # Registration attempts per client IP per window (each answer reveals whether an address is taken).
    register_ip_max_attempts: int = Field(20, alias="REGISTER_IP_MAX_ATTEMPTS", gt=0)
    bootstrap_admin_email: str | None = Field(None, alias="LOTABOTS_BOOTSTRAP_ADMIN_EMAIL")
    bootstrap_admin_password: str | None = Field(None, alias="LOTABOTS_BOOTSTRAP_ADMIN_PASSWORD")
    # The authorizer reads its settings (issuer, audience, parameter names, cache TTLs) straight
    # from os.environ with the same names and defaults (a unit test keeps them in step), so that
    # its cold start does not pay for importing pydantic-settings.
    parameters_extension_url: str = Field("http://localhost:2773", alias="PARAMETERS_EXTENSION_URL")
    revocations_parameter_name: str = Field(
        "/lotabots/revoked-principals", alias="REVOCATIONS_PARAMETER_NAME"
    )
    # A revocation (role change, disable) reaches the authorizer within the sum of these two and
    # the Parameters extension's TTL: REVOCATION_BOUND_SECONDS at most (tests/infra checks the
    # deployed values). Functions that reach the database see it on the next request.
    authorizer_cache_seconds: int = Field(10, alias="AUTHORIZER_CACHE_SECONDS", ge=0)
    revocations_cache_seconds: int = Field(10, alias="REVOCATIONS_CACHE_SECONDS", ge=0)
    previous_signing_keys_kept: int = Field(2, alias="PREVIOUS_SIGNING_KEYS_KEPT", ge=1, le=5)
    # A rotated-in key signs only after this long: authorizers (JWKS cache) and the Parameters
    # extension (its own cache) must have seen it first.
    signing_key_activation_seconds: int = Field(600, alias="SIGNING_KEY_ACTIVATION_SECONDS", ge=0)
    integration_token_max_days: int = Field(365, alias="INTEGRATION_TOKEN_MAX_DAYS", gt=0)


class DocumentSettings(EnvSettings):
    bucket: str = Field("lotabots-documents", alias="DOCUMENTS_BUCKET")
    max_bytes: int = Field(50 * 1024 * 1024, alias="DOCUMENT_MAX_BYTES", gt=0)
    allowed_types: str = Field(
        "text/plain,text/markdown,application/json,text/csv,application/pdf",
        alias="DOCUMENT_ALLOWED_TYPES",
    )
    upload_url_ttl_seconds: int = Field(900, alias="DOCUMENT_UPLOAD_TTL_SECONDS", gt=0, le=7 * 24 * 3600)
    download_url_ttl_seconds: int = Field(300, alias="DOCUMENT_DOWNLOAD_TTL_SECONDS", gt=0)
    # Rejected uploads are moved under this prefix (kept for review, expired by a lifecycle rule);
    # an empty prefix deletes them outright.
    quarantine_prefix: str = Field(storage_keys.QUARANTINE_PREFIX, alias="DOCUMENT_QUARANTINE_PREFIX")
    max_text_chars: int = Field(1_000_000, alias="DOCUMENT_MAX_TEXT_CHARS", gt=0)
    max_metadata_keys: int = Field(32, alias="DOCUMENT_MAX_METADATA_KEYS", gt=0)
    max_metadata_bytes: int = Field(2048, alias="DOCUMENT_MAX_METADATA_BYTES", gt=0)
    ingest_chunk_bytes: int = Field(1024 * 1024, alias="DOCUMENT_INGEST_CHUNK_BYTES", ge=4096)
    spool_dir: str | None = Field(None, alias="DOCUMENT_SPOOL_DIR")
    # PDF extraction budgets (see lotabots.documents.pdf_worker). A PDF runs in a process of its
    # own that is stopped when any budget is spent: the document is then `ready` with the text
    # read so far and an `extraction_note`, or `rejected` when no page could be read. One ingest
    # invocation handles up to the queue's batch size of documents, so batch size x
    # DOCUMENT_EXTRACT_SECONDS must stay well inside the function timeout (a test checks it).
    extract_seconds: float = Field(20.0, alias="DOCUMENT_EXTRACT_SECONDS", gt=0, le=300)
    pdf_page_seconds: float = Field(5.0, alias="DOCUMENT_PDF_PAGE_SECONDS", gt=0)
    pdf_max_pages: int = Field(1000, alias="DOCUMENT_PDF_MAX_PAGES", gt=0)
    # Decoded bytes of any one stream, and of all streams together.
    pdf_max_stream_bytes: int = Field(16 * 1024 * 1024, alias="DOCUMENT_PDF_MAX_STREAM_BYTES", ge=64 * 1024)
    pdf_max_decoded_bytes: int = Field(
        128 * 1024 * 1024, alias="DOCUMENT_PDF_MAX_DECODED_BYTES", ge=64 * 1024
    )
    # Address space of the extraction process (the function's memory must cover it, plus its own).
    pdf_memory_mb: int = Field(640, alias="DOCUMENT_PDF_MEMORY_MB", ge=128)

    @property
    def allowed_type_set(self) -> frozenset[str]:
        return frozenset(t.strip().lower() for t in self.allowed_types.split(",") if t.strip())


class JobSettings(EnvSettings):
    queue_url: str | None = Field(None, alias="GPU_JOBS_QUEUE_URL")
    default_backend: Literal["local", "modal", "batch"] = Field("local", alias="JOB_BACKEND")
    artifacts_bucket: str = Field("lotabots-artifacts", alias="ARTIFACTS_BUCKET")
    dispatch_table: str = Field("lotabots-job-dispatch", alias="JOB_DISPATCH_TABLE")
    max_input_bytes: int = Field(64 * 1024, alias="JOB_MAX_INPUT_BYTES", gt=0)
    max_attempts: int = Field(3, alias="JOB_MAX_ATTEMPTS", gt=0)
    timeout_seconds: int = Field(3600, alias="JOB_TIMEOUT_SECONDS", gt=0)
    modal_app_name: str = Field("lotabots-gpu", alias="MODAL_APP_NAME")
    modal_secret_id: str = Field("lotabots/modal", alias="MODAL_SECRET_ID")
    batch_job_queue: str = Field("lotabots-gpu", alias="BATCH_JOB_QUEUE")
    batch_job_definition: str = Field("lotabots-gpu-job", alias="BATCH_JOB_DEFINITION")
    # GPU type asked of Modal when the job names none ("L4", "A10G", "H100!" pins the type).
    default_gpu: str = Field("L4", alias="JOB_DEFAULT_GPU")
    # A job still `queued` this long after creation is put on the queue again (its message was lost).
    requeue_after_seconds: int = Field(300, alias="JOB_REQUEUE_AFTER_SECONDS", gt=0)
    # How long one dispatcher holds a job's dispatch record before another may take it over.
    dispatch_lease_seconds: int = Field(120, alias="JOB_DISPATCH_LEASE_SECONDS", gt=0)
    # First back-off when a backend is unavailable; doubles per SQS receive (capped at 15 minutes).
    retry_base_seconds: int = Field(20, alias="JOB_RETRY_BASE_SECONDS", ge=0)
    # Where local workers write their output (default: <LOTABOTS_STATE_DIR>/jobs).
    local_log_dir: str | None = Field(None, alias="JOB_LOCAL_LOG_DIR")


class AlertSettings(EnvSettings):
    events_queue_url: str | None = Field(None, alias="ALERT_EVENTS_QUEUE_URL")
    notify_queue_url: str | None = Field(None, alias="NOTIFY_QUEUE_URL")
    slack_secret_id: str = Field("lotabots/slack", alias="SLACK_SECRET_ID")
    slack_bot_token: str | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_api_url: str | None = Field(None, alias="SLACK_API_URL")
    config_parameter: str | None = Field(None, alias="ALERTS_CONFIG_PARAMETER")
    # Powertools caches the SSM document and the Slack secret this long.
    config_max_age_s: int = Field(60, alias="ALERTS_CONFIG_MAX_AGE_SECONDS", ge=0)
    slack_secret_max_age_s: int = Field(300, alias="SLACK_SECRET_MAX_AGE_SECONDS", ge=0)
    # Force every route's timings (local stack, e2e tests); unset: the config document decides.
    group_wait_override_s: float | None = Field(None, alias="ALERTS_GROUP_WAIT_SECONDS", ge=0)
    group_interval_override_s: float | None = Field(None, alias="ALERTS_GROUP_INTERVAL_SECONDS", gt=0)
    repeat_interval_override_s: float | None = Field(None, alias="ALERTS_REPEAT_INTERVAL_SECONDS", gt=0)
    # Groups claimed per flush transaction batch; a run continues until none is due.
    flush_batch_size: int = Field(100, alias="ALERTS_FLUSH_BATCH_SIZE", gt=0, le=1000)
    # Slack Web API: per-request timeout, in-call retries (429 within the time left, 5xx, connect errors).
    slack_timeout_s: float = Field(10.0, alias="SLACK_TIMEOUT_SECONDS", gt=0, le=60)
    slack_rate_limit_retries: int = Field(2, alias="SLACK_RATE_LIMIT_RETRIES", ge=0, le=10)
    slack_server_error_retries: int = Field(2, alias="SLACK_SERVER_ERROR_RETRIES", ge=0, le=10)
    # A delivery claimed longer ago than this without an outcome is treated as crashed mid-send.
    notify_stale_after_s: int = Field(120, alias="ALERTS_NOTIFY_STALE_SECONDS", gt=0)
    # Retry of a failed delivery (by the outbox, for as long as Slack fails):
    # base * 2^(attempt - 1), capped, never sooner than Slack's Retry-After.
    notify_retry_base_s: int = Field(10, alias="ALERTS_NOTIFY_RETRY_BASE_SECONDS", ge=0)
    notify_retry_max_s: int = Field(300, alias="ALERTS_NOTIFY_RETRY_MAX_SECONDS", ge=0, le=43200)
    # A queued notification with no recorded outcome this long after it was sent (its message
    # was lost or dead-lettered) is sent to the notify queue again.
    notify_resend_after_s: int = Field(900, alias="ALERTS_NOTIFY_RESEND_AFTER_SECONDS", gt=0, le=43200)


class AuditSettings(EnvSettings):
    # The S3 bucket (Object Lock, compliance mode) the audit chain's head is anchored in.
    anchor_bucket: str = Field("lotabots-audit-anchors", alias="AUDIT_ANCHOR_BUCKET")
    # An entry older than this that no anchor covers means anchoring stopped or anchors were
    # removed: verify reports it. Keep it above the anchor schedule's period (15 minutes).
    anchor_max_age_s: int = Field(3600, alias="AUDIT_ANCHOR_MAX_AGE_SECONDS", gt=0)


class AttestationSettings(EnvSettings):
    # EAR result tokens: their audience (never the API's, so a result is no access token).
    token_audience: str = Field("lotabots-attestation", alias="ATTESTATION_TOKEN_AUDIENCE")
    model_signing_key_secret_id: str = Field(
        "lotabots/model-signing-key", alias="MODEL_SIGNING_KEY_SECRET_ID"
    )
    # Time a pool attestation job may take beyond its nonce's lifetime before it is timed out.
    job_grace_seconds: int = Field(120, alias="ATTESTATION_JOB_GRACE_SECONDS", ge=0)
    # The model whose embed jobs write TOPLOC proofs and whose attested digests embed jobs enforce.
    embed_model_name: str = Field("all-MiniLM-L6-v2", alias="ATTESTATION_EMBED_MODEL")


class AIOpsSettings(EnvSettings):
    """The scheduled AIOps functions (docs/aiops.md has every flag)."""

    # Learned state (miner, detectors, checkpoints, open findings), charts and reports: a versioned
    # bucket (the artifacts bucket) under this prefix.
    bucket: str = Field("lotabots-artifacts", alias="AIOPS_BUCKET")
    prefix: str = Field(storage_keys.AIOPS_PREFIX, alias="AIOPS_PREFIX")
    # What the stack deployed, as JSON in one SSM parameter ({"functions": {name: {"function_name",
    # "log_group"}}, "queue_prefix": ...}); unset (local stack): topology names, /aws/lambda/<name>.
    inventory_parameter: str | None = Field(None, alias="AIOPS_INVENTORY_PARAMETER")
    # The API's base URL for the health probe of GET /health; unset: that check is skipped.
    api_url: str | None = Field(None, alias="AIOPS_API_URL")
    # Health thresholds (per 5-minute window).
    error_rate_threshold: float = Field(0.05, alias="AIOPS_ERROR_RATE_THRESHOLD", ge=0, le=1)
    p99_ms_threshold: float = Field(5000.0, alias="AIOPS_P99_MS_THRESHOLD", gt=0)
    queue_depth_threshold: int = Field(100, alias="AIOPS_QUEUE_DEPTH_THRESHOLD", ge=0)
    job_failure_rate_threshold: float = Field(0.2, alias="AIOPS_JOB_FAILURE_RATE_THRESHOLD", ge=0, le=1)
    # An open finding is sent again after this long while its condition persists.
    finding_repeat_s: int = Field(6 * 3600, alias="AIOPS_FINDING_REPEAT_SECONDS", gt=0)
    # Logs: the first run (or one after a lost checkpoint) looks back this far; a run reads at most
    # this many events per function (the rest on the next run).
    log_lookback_s: int = Field(3600, alias="AIOPS_LOG_LOOKBACK_SECONDS", gt=0)
    max_log_events: int = Field(20_000, alias="AIOPS_MAX_LOG_EVENTS", gt=0)
    # A template's count in one run above `spike_factor` x its learned mean (and at least
    # `spike_min_count`) is a frequency spike.
    spike_factor: float = Field(5.0, alias="AIOPS_SPIKE_FACTOR", gt=1)
    spike_min_count: int = Field(20, alias="AIOPS_SPIKE_MIN_COUNT", gt=0)
    # Metrics: the period of every series and how far back a run reads.
    metric_period_s: int = Field(300, alias="AIOPS_METRIC_PERIOD_SECONDS", ge=60)
    metric_lookback_s: int = Field(3600, alias="AIOPS_METRIC_LOOKBACK_SECONDS", gt=0)
    anomaly_threshold: float | None = Field(None, alias="AIOPS_ANOMALY_THRESHOLD", gt=0, le=1)
    # A new series' detector learns this long (series time) before it scores anything.
    anomaly_warmup_s: int = Field(6 * 3600, alias="AIOPS_ANOMALY_WARMUP_SECONDS", ge=0)
    # Forecast: history read (hourly points) and the horizon; the scaling plan is applied only
    # when `scaling_apply` is true (dry-run otherwise).
    forecast_history_hours: int = Field(14 * 24, alias="AIOPS_FORECAST_HISTORY_HOURS", ge=24)
    forecast_horizon_hours: int = Field(24, alias="AIOPS_FORECAST_HORIZON_HOURS", ge=1, le=168)
    scaling_apply: bool = Field(False, alias="AIOPS_SCALING_APPLY")
    latency_critical: str = Field("auth,documents", alias="AIOPS_LATENCY_CRITICAL")
    # Provisioned concurrency covers this share of the forecast peak concurrency, within bounds.
    provisioned_max: int = Field(20, alias="AIOPS_PROVISIONED_MAX", ge=0)
    batch_compute_environment: str | None = Field(None, alias="AIOPS_BATCH_COMPUTE_ENVIRONMENT")
    batch_vcpus_per_job: int = Field(4, alias="AIOPS_BATCH_VCPUS_PER_JOB", gt=0)
    batch_max_vcpus: int = Field(64, alias="AIOPS_BATCH_MAX_VCPUS", ge=0)
    # Report: the Slack channel (the bot token is the alerting one: SLACK_BOT_TOKEN or its secret).
    report_channel: str = Field("#lotabots-aiops", alias="AIOPS_REPORT_CHANNEL")

    @property
    def latency_critical_functions(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.latency_critical.split(",") if name.strip())


class LocalSettings(EnvSettings):
    """Settings of the developer's local stack only (never read in Lambda)."""

    # Where the gateway, moto and the Parameters extension listen. `0.0.0.0` exposes them to
    # containers (`sam local invoke`); clients in this process still use 127.0.0.1.
    host: str = Field("127.0.0.1", alias="LOTABOTS_HOST")
    port: int = Field(3000, alias="LOTABOTS_PORT", gt=0, lt=65536)
    # 0: a free port. Fixed ports let events/env.json name them (5000 and 2773 there).
    moto_port: int = Field(0, alias="LOTABOTS_MOTO_PORT", ge=0, lt=65536)
    extension_port: int = Field(0, alias="LOTABOTS_EXTENSION_PORT", ge=0, lt=65536)
    state_dir: str = Field(".local", alias="LOTABOTS_STATE_DIR")
    # Time runs this many times faster for the EventBridge schedules (tests use e.g. 30).
    schedule_speedup: float = Field(1.0, alias="LOTABOTS_SCHEDULE_SPEEDUP", gt=0)
    # A failed SQS message comes back after this many seconds instead of the queue's visibility timeout.
    retry_visibility_seconds: int = Field(5, alias="LOTABOTS_RETRY_VISIBILITY_SECONDS", ge=0, le=43200)
    # How often DLQ depth is checked to play the CloudWatch DLQ alarms.
    dlq_alarm_seconds: float = Field(5.0, alias="LOTABOTS_DLQ_ALARM_SECONDS", gt=0)
    # Without SLACK_BOT_TOKEN the stack starts a mock of the Slack Web API (devstack/slack_mock.py)
    # and points the functions at it, so alerts and reports take the real slack_sdk path; false:
    # notifications are only logged.
    slack_mock: bool = Field(True, alias="LOTABOTS_SLACK_MOCK")
    # The alert-delivery-lag alarm: Slack has kept an alert group waiting this long (CDK: 600 s).
    delivery_lag_alarm_seconds: float = Field(600.0, alias="LOTABOTS_DELIVERY_LAG_ALARM_SECONDS", gt=0)
    # Worker processes per function (its warm containers; fewer if its reserved concurrency is
    # lower). 0: every function in the stack's own process, one invocation at a time.
    function_workers: int = Field(2, alias="LOTABOTS_FUNCTION_WORKERS", ge=0, le=16)

    @field_validator("host")
    @classmethod
    def _strip_host(cls, value: str) -> str:
        return value.strip()

    @property
    def connect_host(self) -> str:
        """The address this process uses to reach its own listeners."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104


@cache
def load(settings_class: type[S]) -> S:
    """Build (once per container) and validate a settings class from the environment."""
    try:
        return settings_class()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "?"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError(
            f"invalid environment for {settings_class.__name__}: " + "; ".join(problems)
        ) from None


def core() -> CoreSettings:
    return load(CoreSettings)


def reset() -> None:
    """Forget cached settings (tests and the local stack change the environment)."""
    load.cache_clear()
