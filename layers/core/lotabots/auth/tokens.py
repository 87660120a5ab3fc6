"""ES256 access tokens: issue (auth service) and verify (authorizer and services).

Verification is pinned to ES256, requires exp/nbf/iat/iss/aud/sub and a `kid` naming one of
the known public keys. This module is on the authorizer's cold-start path, so it imports
only PyJWT, the light `lotabots.errors`/`lotabots.access` modules and the stdlib at the top;
everything that needs settings, boto3 or the keyset is imported inside the functions that
the auth service (not the authorizer) calls.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from lotabots.access import Role
from lotabots.errors import Unauthorized

ALGORITHM = "ES256"
REQUIRED_CLAIMS = ("exp", "nbf", "iat", "iss", "aud", "sub")
# Tolerated clock difference between the issuer and a verifier.
LEEWAY_SECONDS = 10
_ROLES = frozenset(role.value for role in Role)
INTEGRATION_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")


class InvalidToken(Exception):
    """The token must not be accepted; `reason` is for logs, never for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownKeyId(InvalidToken):
    """Signed with a key we do not (yet) know: a verifier may refresh its JWKS once."""


@dataclass(frozen=True)
class AccessClaims:
    sub: str
    email: str
    role: str
    iat: float
    exp: int
    jti: str
    kid: str


def decode(
    token: str,
    public_keys: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    leeway: int = LEEWAY_SECONDS,
) -> AccessClaims:
    """Verify signature and claims against the given `{kid: public key}`; raise InvalidToken."""
    if not token or len(token) > 8192:
        raise InvalidToken("missing or oversized token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"malformed token: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("token has no kid")
    key = public_keys.get(kid)
    if key is None:
        raise UnknownKeyId(f"unknown kid {kid!r}")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
    sub, role, email = claims.get("sub"), claims.get("role"), claims.get("email", "")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("empty subject")
    if role not in _ROLES:
        raise InvalidToken(f"unknown role {role!r}")
    if not isinstance(email, str):
        raise InvalidToken("email claim is not a string")
    return AccessClaims(
        sub=sub,
        email=email,
        role=str(role),
        iat=float(claims["iat"]),
        exp=int(claims["exp"]),
        jti=str(claims.get("jti") or ""),
        kid=kid,
    )


def is_revoked(revocations: Mapping[str, float], claims: AccessClaims) -> bool:
    """True when the token was issued before its principal's revocation time."""
    revoked_at = revocations.get(claims.sub)
    return revoked_at is not None and claims.iat < revoked_at


# --- issuing and service-side verification (auth service only) -------------------------


def _encode(claims: dict[str, Any]) -> str:
    from lotabots.auth import keys

    key = keys.signing_key()
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})


# Revocation instants and `iat` are kept at millisecond precision with a millisecond of margin
# on each side, so "issued before the revocation" is decided the same way by the authorizer
# (SSM list), every function (the account row) and float rounding, even for two role changes
# within one second.
_MS = 0.001


def _ceil_ms(epoch: float) -> float:
    return math.ceil(epoch * 1000) / 1000


def revocation_instant(now: float | None = None) -> float:
    """A revocation time strictly after every token issued until now (epoch seconds)."""
    return _ceil_ms(time.time() if now is None else now) + _MS


def issue_access_token(
    user_id: str, email: str, role: str, *, not_before: float | None = None
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds.

    `iat` has millisecond precision; `not_before` (the principal's last revocation instant)
    moves it a millisecond past that instant, so a token minted right after a role change is
    never caught by that revocation, and one minted before it always is.
    """
    from lotabots import config
    from lotabots.config import AuthSettings

    settings = config.load(AuthSettings)
    now = time.time()
    iat = max(_ceil_ms(now), not_before + _MS if not_before else 0.0)
    ttl = settings.access_token_ttl_seconds
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "email": email,
        "role": role,
        "iat": iat,
        "nbf": math.floor(iat),
        "exp": math.floor(iat) + ttl,
        "jti": secrets.token_hex(16),
    }
    return _encode(claims), ttl + math.floor(iat - now)


def issue_integration_token(name: str, *, days: int) -> str:
    """A long-lived token with role `integration` (only POST /alerts accepts it)."""
    from lotabots import config
    from lotabots.config import AuthSettings

    settings = config.load(AuthSettings)
    if not INTEGRATION_NAME.fullmatch(name):
        raise ValueError("name must be 1-40 characters: lower-case letters, digits, '-', '_' or '.'")
    if not 0 < days <= settings.integration_token_max_days:
        raise ValueError(f"days must be between 1 and {settings.integration_token_max_days}")
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": f"integration:{name}",
        "email": "",
        "role": Role.INTEGRATION.value,
        "iat": now,
        "nbf": now,
        "exp": now + days * 86400,
        "jti": secrets.token_hex(16),
    }
    return _encode(claims)


def verify(token: str) -> AccessClaims:
    """Service-side verification against the keyset in Secrets Manager; 401 on any failure."""
    from lotabots import config
    from lotabots.auth import keys
    from lotabots.config import AuthSettings

    settings = config.load(AuthSettings)
    for force in (False, True):
        try:
            return decode(
                token,
                keys.load(force=force).public_keys(),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
        except UnknownKeyId:
            continue  # perhaps rotated since we cached the keyset: reload once
        except InvalidToken:
            break
    raise Unauthorized("the access token is invalid or expired", code="invalid_token")
