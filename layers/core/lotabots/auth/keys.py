"""ES256 signing keys: a keyset in Secrets Manager, its public half published as a JWKS.

The secret (`SIGNING_KEY_SECRET_ID`) holds JSON
`{"current": {"kid", "private_pem", "created_at"}, "previous": [...]}`. The auth service reads
it with Powertools Parameters (cached `JWKS_CACHE_SECONDS`); the authorizer never sees it: it
reads the public JWKS from the SSM parameter `JWKS_PARAMETER_NAME`, which every change here
republishes.

Rotation (`rotate()`) makes a new current key and keeps the old ones as `previous` (at most
`PREVIOUS_SIGNING_KEYS_KEPT`); tokens signed by any of them verify. A new key only starts
signing `SIGNING_KEY_ACTIVATION_SECONDS` after its creation, so that every authorizer (whose
JWKS cache lives that long) knows it before the first token signed with it arrives. The very
first key of a fresh keyset signs at once: there is nothing older to fall back to.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from lotabots import aws, config
from lotabots.auth.tokens import ALGORITHM
from lotabots.config import AuthSettings
from lotabots.errors import ServiceUnavailable
from lotabots.observability import logger


class InvalidKeyset(ValueError):
    """The secret does not hold a usable keyset (missing, placeholder, corrupt)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    created_at: datetime

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return _load_private(self.private_pem)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.public_key))
        return {
            "kty": jwk["kty"],
            "crv": jwk["crv"],
            "x": jwk["x"],
            "y": jwk["y"],
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }

    def to_json(self) -> dict[str, str]:
        return {"kid": self.kid, "private_pem": self.private_pem, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Keyset:
    current: SigningKey
    previous: tuple[SigningKey, ...] = ()

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return (self.current, *self.previous)

    def signing_key(self, *, activation_seconds: int, now: datetime | None = None) -> SigningKey:
        """The newest key old enough for every verifier to know it (or the only one)."""
        now = now or datetime.now(UTC)
        for key in self.keys:
            if (now - key.created_at).total_seconds() >= activation_seconds:
                return key
        return self.keys[-1]

    def public_keys(self) -> dict[str, ec.EllipticCurvePublicKey]:
        return {key.kid: key.public_key for key in self.keys}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def to_json(self) -> dict[str, Any]:
        return {"current": self.current.to_json(), "previous": [key.to_json() for key in self.previous]}


@lru_cache(maxsize=16)
def _load_private(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidKeyset("signing key is not an EC P-256 private key")
    return key


def thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a stable, collision-free `kid`."""
    jwk = json.loads(ECAlgorithm.to_jwk(public_key))
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def generate_key(now: datetime | None = None) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return SigningKey(
        kid=thumbprint(private.public_key()), private_pem=pem, created_at=now or datetime.now(UTC)
    )


def _key_from_json(data: Any) -> SigningKey:
    if not isinstance(data, dict):
        raise InvalidKeyset("key entry is not an object")
    try:
        pem = str(data["private_pem"])
        created_at = datetime.fromisoformat(str(data["created_at"]))
    except (KeyError, ValueError) as exc:
        raise InvalidKeyset(f"key entry is incomplete: {exc}") from None
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    try:
        private = _load_private(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidKeyset(f"key entry has no usable private key: {exc}") from None
    kid = str(data.get("kid") or thumbprint(private.public_key()))
    return SigningKey(kid=kid, private_pem=pem, created_at=created_at)


def keyset_from_json(data: Any) -> Keyset:
    if not isinstance(data, dict) or "current" not in data:
        raise InvalidKeyset("secret has no current signing key")
    previous = data.get("previous") or []
    if not isinstance(previous, list):
        raise InvalidKeyset("'previous' must be a list")
    return Keyset(
        current=_key_from_json(data["current"]), previous=tuple(_key_from_json(k) for k in previous)
    )


def _settings() -> AuthSettings:
    return config.load(AuthSettings)


_provider: tuple[Any, Any] | None = None


def _secrets_provider() -> Any:
    """A Powertools SecretsProvider bound to our (endpoint-aware, cached) boto3 client."""
    global _provider
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    client = aws.client("secretsmanager")
    if _provider is None or _provider[0] is not client:
        _provider = (client, SecretsProvider(boto3_client=client))
    return _provider[1]


def load(*, force: bool = False) -> Keyset:
    """The keyset, from Secrets Manager through Powertools Parameters (cached per container)."""
    from aws_lambda_powertools.utilities.parameters.exceptions import (
        GetParameterError,
        TransformParameterError,
    )

    settings = _settings()
    try:
        data = _secrets_provider().get(
            settings.signing_key_secret_id,
            transform="json",
            max_age=settings.jwks_cache_seconds,
            force_fetch=force,
        )
        return keyset_from_json(data)
    except (GetParameterError, TransformParameterError, InvalidKeyset) as exc:
        logger.error("signing keyset unavailable", extra={"reason": str(exc)})
        raise ServiceUnavailable(
            "token signing is not configured yet; run `lotabots keys ensure`", code="signing_keys_missing"
        ) from None


def signing_key() -> SigningKey:
    settings = _settings()
    return load().signing_key(activation_seconds=settings.signing_key_activation_seconds)


def public_jwks() -> dict[str, list[dict[str, str]]]:
    return load().jwks()


def _read_secret() -> Keyset | None:
    """Read the keyset straight from Secrets Manager (None if missing or unusable)."""
    sm = aws.client("secretsmanager")
    try:
        raw = sm.get_secret_value(SecretId=_settings().signing_key_secret_id)
    except sm.exceptions.ResourceNotFoundException:
        return None
    try:
        return keyset_from_json(json.loads(raw.get("SecretString") or ""))
    except (ValueError, InvalidKeyset):
        return None


def _write_secret(keyset: Keyset, *, create: bool) -> None:
    sm = aws.client("secretsmanager")
    secret_id = _settings().signing_key_secret_id
    value = json.dumps(keyset.to_json())
    if create:
        try:
            sm.create_secret(
                Name=secret_id, SecretString=value, Description="LotaBots JWT signing keys (ES256)"
            )
            return
        except sm.exceptions.ResourceExistsException:
            pass
    sm.put_secret_value(SecretId=secret_id, SecretString=value)


def publish_jwks(keyset: Keyset) -> None:
    """Write the public JWKS to SSM (skipped when unchanged) for the authorizers."""
    ssm = aws.client("ssm")
    name = _settings().jwks_parameter_name
    value = json.dumps(keyset.jwks(), separators=(",", ":"), sort_keys=True)
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):
        if ssm.get_parameter(Name=name)["Parameter"]["Value"] == value:
            return
    ssm.put_parameter(
        Name=name,
        Value=value,
        Type="String",
        Overwrite=True,
        Tier="Intelligent-Tiering",
    )


def _ensure_revocations_parameter() -> None:
    ssm = aws.client("ssm")
    with contextlib.suppress(ssm.exceptions.ParameterAlreadyExists):
        ssm.put_parameter(
            Name=_settings().revocations_parameter_name,
            Value="{}",
            Type="String",
            Overwrite=False,
            Description="LotaBots revoked principals: {user_id: revoked_at_epoch}",
        )


def _forget_cache() -> None:
    _secrets_provider().clear_cache()


def ensure_signing_keys() -> Keyset:
    """Create the keyset if the secret is missing or holds no usable keyset; publish the JWKS.

    Idempotent: an existing valid keyset is left alone (only republished if needed). Also
    creates the (empty) revocations parameter the authorizer reads.
    """
    sm = aws.client("secretsmanager")
    keyset = _read_secret()
    if keyset is None:
        exists = True
        try:
            sm.describe_secret(SecretId=_settings().signing_key_secret_id)
        except sm.exceptions.ResourceNotFoundException:
            exists = False
        keyset = Keyset(current=generate_key())
        _write_secret(keyset, create=not exists)
        # Two first-time callers racing: whatever was stored last is the truth.
        keyset = _read_secret() or keyset
        logger.info("created signing keyset", extra={"kid": keyset.current.kid})
    publish_jwks(keyset)
    _ensure_revocations_parameter()
    _forget_cache()
    return keyset


def rotate() -> Keyset:
    """Make a new current key; the old current and the newest previous ones stay verifiable."""
    old = _read_secret()
    if old is None:
        return ensure_signing_keys()
    kept = _settings().previous_signing_keys_kept
    keyset = Keyset(current=generate_key(), previous=(old.current, *old.previous)[:kept])
    # Publish first: verifiers must know the key before anything is signed with it.
    publish_jwks(keyset)
    _write_secret(keyset, create=False)
    _ensure_revocations_parameter()
    _forget_cache()
    logger.info("rotated signing keys", extra={"kid": keyset.current.kid, "previous": len(keyset.previous)})
    return keyset
