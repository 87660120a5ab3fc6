"""Attestation results as EAR tokens (IETF RATS "EAT Attestation Results"), signed ES256.

Signed with the platform's JWT signing keyset (`lotabots.auth.keys`), so anyone holding the
public JWKS (`/.well-known/jwks.json`) verifies a result offline. The token's audience is
`ATTESTATION_TOKEN_AUDIENCE` (not the API's), and it has no `role`, so it can never pass as an
access token. A token signed by a key that has left the keyset (retired by rotation) no
longer verifies.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EAT_PROFILE = "tag:github.com,2023:veraison/ear"
MEDIA_TYPE = 'application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"'
ALGORITHM = "ES256"
DEFAULT_AUDIENCE = "lotabots-attestation"
LEEWAY_SECONDS = 10


class TokenError(Exception):
    """The token does not verify; the message says why."""


@dataclass(frozen=True)
class VerifiedToken:
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.claims.get("ear.status"))


def evidence_digest(raw: bytes) -> str:
    """`ear.raw-evidence`: here the base64url SHA-256 of the evidence bytes (the evidence is large)."""
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()


def build_claims(
    *,
    issuer: str,
    audience: str,
    attestation_id: str,
    submodule: str,
    status: str,
    vector: Mapping[str, int],
    claims: list[dict[str, Any]],
    assurance: str,
    policy_id: str,
    nonce: str,
    evidence_sha256_b64: str | None,
    subject: str,
    ttl_s: int,
    verifier_build: str,
    now: int | None = None,
) -> dict[str, Any]:
    iat = int(now if now is not None else time.time())
    appraisal: dict[str, Any] = {
        "ear.status": status,
        "ear.trustworthiness-vector": dict(vector),
        "ear.appraisal-policy-id": policy_id,
        "lotabots.assurance": assurance,
        "lotabots.claims": claims,
    }
    if evidence_sha256_b64:
        appraisal["ear.raw-evidence"] = evidence_sha256_b64
    return {
        "eat_profile": EAT_PROFILE,
        "iss": issuer,
        "aud": audience,
        "iat": iat,
        "exp": iat + ttl_s,
        "jti": attestation_id,
        "eat_nonce": nonce,
        "ear.verifier-id": {"developer": "https://github.com/lotabots", "build": verifier_build},
        "ear.status": status,
        "lotabots.subject": subject,
        "submods": {submodule: appraisal},
    }


def sign(claims: dict[str, Any]) -> tuple[str, str]:
    """(token, kid) signed with the platform's current signing key."""
    import jwt  # here, not at import: PyJWT's cryptography imports weigh on every cold start

    from lotabots.auth import keys

    key = keys.signing_key()
    token = jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "eat+jwt"}
    )
    return token, key.kid


def verify(
    token: str, jwks: Mapping[str, Any], *, audience: str = DEFAULT_AUDIENCE, issuer: str | None = None
) -> VerifiedToken:
    """Verify offline against a JWKS document ({"keys": [...]}); raises TokenError."""
    import jwt

    token = token.strip()
    if not token or len(token) > 64_000:
        raise TokenError("empty or oversized token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(f"malformed token: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise TokenError(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    kid = header.get("kid")
    keys = {k.get("kid"): k for k in jwks.get("keys", []) if isinstance(k, dict)}
    if not isinstance(kid, str) or kid not in keys:
        raise TokenError(f"signed by key {kid!r}, which the JWKS does not hold (unknown or retired)")
    try:
        public_key = jwt.PyJWK(keys[kid], algorithm=ALGORITHM).key
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={
                "require": ["iat", "exp", "iss", "aud", "eat_profile"],
                "verify_iss": issuer is not None,
            },
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token has expired") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"{type(exc).__name__}: {exc}") from None
    if claims.get("eat_profile") != EAT_PROFILE:
        raise TokenError(f"eat_profile {claims.get('eat_profile')!r} is not EAR")
    if claims.get("ear.status") not in ("affirming", "warning", "contraindicated", "none"):
        raise TokenError("token has no valid ear.status")
    return VerifiedToken(header=header, claims=claims)
