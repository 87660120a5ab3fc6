"""API Gateway REQUEST authorizer: verifies the ES256 access token, returns the principal.

Cold start matters here (every cold API call waits for it), so this module imports no boto3,
SQLAlchemy or pydantic-settings: only PyJWT/cryptography (through `lotabots.auth.tokens`),
the Powertools authorizer data classes and Logger, and the stdlib. Its settings are read
from `os.environ` with the same names and defaults as `lotabots.config.AuthSettings`
(a unit test keeps them in step).

The public JWKS and the revoked-principals list come from SSM through the AWS Parameters and
Secrets Lambda Extension's local HTTP endpoint, cached in memory: JWKS for
`JWKS_CACHE_SECONDS` (refetched once on an unknown `kid`), revocations for
`REVOCATIONS_CACHE_SECONDS`. A bad or missing token raises `Exception("Unauthorized")`,
which API Gateway turns into a 401; a failure to read the keys is an error (500), never an
accidental allow.

Lambda counts both as errors, so its `Errors` metric cannot tell an expired token from a
broken authorizer. The handler therefore counts them apart in EMF metrics (namespace
`POWERTOOLS_METRICS_NAMESPACE`, dimension `service`): `AuthorizerDenials` for expected refusals
and `AuthorizerFailures` for real failures; the error alarm and the canary watch the latter.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from jwt.algorithms import ECAlgorithm

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.auth import tokens

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lotabots-authorizer"))

# Never go through an HTTP proxy to reach the extension on localhost.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Bounds how often random `kid`s can make us refetch the JWKS.
REFETCH_MIN_INTERVAL_SECONDS = 5.0


class ExtensionError(RuntimeError):
    """The Parameters and Secrets extension could not give us a parameter."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


class _Settings:
    """Re-read on demand (tests and the local stack change the environment)."""

    @property
    def extension_url(self) -> str:
        return _env("PARAMETERS_EXTENSION_URL", "http://localhost:2773").rstrip("/")

    @property
    def issuer(self) -> str:
        return _env("LOTABOTS_JWT_ISSUER", "https://lotabots.local")

    @property
    def audience(self) -> str:
        return _env("LOTABOTS_JWT_AUDIENCE", "lotabots-api")

    @property
    def jwks_parameter(self) -> str:
        return _env("JWKS_PARAMETER_NAME", "/lotabots/jwks")

    @property
    def revocations_parameter(self) -> str:
        return _env("REVOCATIONS_PARAMETER_NAME", "/lotabots/revoked-principals")

    @property
    def jwks_ttl(self) -> float:
        return float(_env("JWKS_CACHE_SECONDS", "300"))

    @property
    def revocations_ttl(self) -> float:
        return float(_env("REVOCATIONS_CACHE_SECONDS", "10"))


settings = _Settings()


def get_parameter(name: str) -> str | None:
    """One SSM parameter's value through the extension; None if it does not exist."""
    base = settings.extension_url
    if not base.startswith(("http://", "https://")):
        raise ExtensionError(f"PARAMETERS_EXTENSION_URL must be http(s), got {base!r}")
    url = f"{base}/systemsmanager/parameters/get?name={urllib.parse.quote(name, safe='')}"
    request = urllib.request.Request(  # noqa: S310  (scheme checked above)
        url, headers={"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN", "")}
    )
    try:
        with _opener.open(request, timeout=3) as response:
            payload: Any = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        if exc.code in (400, 404) and "ParameterNotFound" in detail:
            return None
        raise ExtensionError(f"extension answered {exc.code} for {name}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ExtensionError(f"extension unreachable for {name}: {exc}") from None
    try:
        return str(payload["Parameter"]["Value"])
    except (KeyError, TypeError):
        raise ExtensionError(f"unexpected extension response for {name}") from None


class _Cache:
    keys: dict[str, Any]
    keys_at: float
    revoked: dict[str, float]
    revoked_at: float

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.keys, self.keys_at = {}, float("-inf")
        self.revoked, self.revoked_at = {}, float("-inf")


cache = _Cache()


def _load_keys() -> dict[str, Any]:
    value = get_parameter(settings.jwks_parameter)
    if value is None:
        raise ExtensionError(f"JWKS parameter {settings.jwks_parameter} does not exist")
    keys: dict[str, Any] = {}
    for jwk in json.loads(value).get("keys", []):
        if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256" and jwk.get("kid"):
            keys[str(jwk["kid"])] = ECAlgorithm.from_jwk(jwk)
    cache.keys, cache.keys_at = keys, time.monotonic()
    return keys


def public_keys(*, refetch: bool = False) -> dict[str, Any]:
    now = time.monotonic()
    stale = now - cache.keys_at >= settings.jwks_ttl
    if stale or (refetch and now - cache.keys_at >= REFETCH_MIN_INTERVAL_SECONDS):
        return _load_keys()
    return cache.keys


def revoked_principals() -> dict[str, float]:
    now = time.monotonic()
    if now - cache.revoked_at >= settings.revocations_ttl:
        value = get_parameter(settings.revocations_parameter)
        revoked: dict[str, float] = {}
        if value:
            data = json.loads(value)
            if isinstance(data, dict):
                revoked = {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}
        cache.revoked, cache.revoked_at = revoked, now
    return cache.revoked


def verify(token: str) -> tokens.AccessClaims:
    """Claims of a valid, unrevoked token; raises tokens.InvalidToken otherwise."""
    try:
        claims = tokens.decode(token, public_keys(), issuer=settings.issuer, audience=settings.audience)
    except tokens.UnknownKeyId:
        # Perhaps a key rotated in since we cached the JWKS: look once more.
        claims = tokens.decode(
            token, public_keys(refetch=True), issuer=settings.issuer, audience=settings.audience
        )
    if tokens.is_revoked(revoked_principals(), claims):
        raise tokens.InvalidToken("token issued before its principal's revocation")
    return claims


def bearer_token(event: APIGatewayAuthorizerRequestEvent) -> str | None:
    if not event.get("headers"):
        return None
    header = event.headers.get("authorization") or ""  # case-insensitive lookup
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


DENIALS_METRIC = "AuthorizerDenials"
FAILURES_METRIC = "AuthorizerFailures"


def count(metric_name: str) -> None:
    """Publish one EMF data point now (the invocation is about to raise, so nothing flushes later)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=metric_name,
        unit=MetricUnit.Count,
        value=1,
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LotaBots"),
    ) as metric:
        metric.add_dimension("service", os.environ.get("POWERTOOLS_SERVICE_NAME", "authorizer"))


def deny(reason: str) -> Exception:
    logger.info("token rejected", extra={"reason": reason})
    count(DENIALS_METRIC)
    return Exception("Unauthorized")  # API Gateway's contract for a 401


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = APIGatewayAuthorizerRequestEvent(event)
    token = bearer_token(request)
    if token is None:
        raise deny("no bearer token")
    try:
        claims = verify(token)
    except tokens.InvalidToken as exc:
        raise deny(exc.reason) from None
    except Exception:
        logger.exception("authorizer failure")
        count(FAILURES_METRIC)
        raise
    arn = request.parsed_arn
    response = APIGatewayAuthorizerResponse(
        principal_id=claims.sub,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        partition=arn.partition,
        # `iat` lets each function compare the token with the account's revocation time.
        context={"user_id": claims.sub, "email": claims.email, "role": claims.role, "iat": claims.iat},
    )
    # Every route of this stage: API Gateway caches the policy per token, and which role may
    # call which route is enforced by each function (lotabots.access).
    response.allow_all_routes()
    logger.debug("token accepted", extra={"sub": claims.sub, "role": claims.role})
    return response.asdict()


gc.freeze()  # loaded: see the top of the module
gc.enable()
