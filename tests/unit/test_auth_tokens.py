"""Access-token verification: every malformed or forged token is refused (401 at the edge)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from lotabots.auth import keys, tokens
from tests.support.auth import claims, forge_hs256, sign

ISSUER, AUDIENCE = "https://lotabots.local", "lotabots-api"


@pytest.fixture(scope="module")
def key() -> keys.SigningKey:
    return keys.generate_key()


def _decode(token: str, key: keys.SigningKey) -> tokens.AccessClaims:
    return tokens.decode(token, {key.kid: key.public_key}, issuer=ISSUER, audience=AUDIENCE)


def test_valid_token_yields_its_claims(key: keys.SigningKey) -> None:
    result = _decode(sign(claims(role="operator"), key.private_key, key.kid), key)
    assert (result.sub, result.role, result.email, result.kid) == (
        "u-123",
        "operator",
        "user@example.com",
        key.kid,
    )


def test_alg_none_is_refused(key: keys.SigningKey) -> None:
    token = jwt.encode(claims(), "", algorithm="none", headers={"kid": key.kid})
    with pytest.raises(tokens.InvalidToken, match="algorithm"):
        _decode(token, key)


def test_hs256_signed_with_the_public_key_is_refused(key: keys.SigningKey) -> None:
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(tokens.InvalidToken, match="algorithm"):
        _decode(forge_hs256(claims(), public_pem, key.kid), key)


def test_expired_token_is_refused(key: keys.SigningKey) -> None:
    past = int(time.time()) - 3600
    token = sign(claims(iat=past, nbf=past, exp=past + 900), key.private_key, key.kid)
    with pytest.raises(tokens.InvalidToken, match="Expired"):
        _decode(token, key)


def test_token_not_yet_valid_is_refused(key: keys.SigningKey) -> None:
    future = int(time.time()) + 3600
    token = sign(claims(nbf=future, exp=future + 900), key.private_key, key.kid)
    with pytest.raises(tokens.InvalidToken):
        _decode(token, key)


@pytest.mark.parametrize("override", [{"aud": "someone-else"}, {"iss": "https://evil.example"}])
def test_wrong_audience_or_issuer_is_refused(key: keys.SigningKey, override: dict[str, str]) -> None:
    with pytest.raises(tokens.InvalidToken):
        _decode(sign(claims(**override), key.private_key, key.kid), key)


@pytest.mark.parametrize("missing", ["exp", "nbf", "iat", "iss", "aud", "sub"])
def test_every_required_claim_must_be_present(key: keys.SigningKey, missing: str) -> None:
    payload = claims()
    del payload[missing]
    with pytest.raises(tokens.InvalidToken):
        _decode(sign(payload, key.private_key, key.kid), key)


def test_unknown_kid_is_its_own_error(key: keys.SigningKey) -> None:
    other = keys.generate_key()
    with pytest.raises(tokens.UnknownKeyId):
        _decode(sign(claims(), other.private_key, other.kid), key)


def test_token_signed_by_another_key_under_our_kid_is_refused(key: keys.SigningKey) -> None:
    other = keys.generate_key()
    with pytest.raises(tokens.InvalidToken, match="Signature"):
        _decode(sign(claims(), other.private_key, key.kid), key)


def test_tampered_payload_is_refused(key: keys.SigningKey) -> None:
    header, _, signature = sign(claims(), key.private_key, key.kid).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(role="admin")).encode()).rstrip(b"=").decode()
    with pytest.raises(tokens.InvalidToken):
        _decode(f"{header}.{forged}.{signature}", key)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "x" * 9000])
def test_garbage_is_refused(key: keys.SigningKey, garbage: str) -> None:
    with pytest.raises(tokens.InvalidToken):
        _decode(garbage, key)


def test_unknown_role_is_refused(key: keys.SigningKey) -> None:
    with pytest.raises(tokens.InvalidToken, match="role"):
        _decode(sign(claims(role="root"), key.private_key, key.kid), key)


def test_token_without_kid_is_refused(key: keys.SigningKey) -> None:
    token = jwt.encode(claims(), key.private_key, algorithm="ES256")
    with pytest.raises(tokens.InvalidToken, match="kid"):
        _decode(token, key)


def test_revocation_applies_to_tokens_issued_before_it_only(key: keys.SigningKey) -> None:
    result = _decode(
        sign(claims(iat=1000, nbf=1000, exp=int(time.time()) + 60), key.private_key, key.kid), key
    )
    assert tokens.is_revoked({"u-123": 1000.5}, result)
    assert not tokens.is_revoked({"u-123": 1000.0}, result)
    assert not tokens.is_revoked({"someone-else": 5000.0}, result)
