"""EAR result tokens: signed with the platform keyset, verified offline against a JWKS; forged,
expired, retired-key, wrong-audience and algorithm-confusion tokens are refused, and a result token
is never an access token."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from lotabots import cli
from lotabots.attestation import ear
from lotabots.auth import keys, tokens
from lotabots.auth.keys import Keyset


def _claims(**changes: Any) -> dict[str, Any]:
    claims = ear.build_claims(
        issuer="https://lotabots.local",
        audience=ear.DEFAULT_AUDIENCE,
        attestation_id="a" * 32,
        submodule="gpu-hardware",
        status="affirming",
        vector={"hardware": 2},
        claims=[{"name": "challenge_values", "outcome": "pass", "detail": "ok", "vector": "hardware"}],
        assurance="performance-proven",
        policy_id="default@0",
        nonce="n" * 43,
        evidence_sha256_b64=ear.evidence_digest(b"{}"),
        subject="hardware:pool",
        ttl_s=3600,
        verifier_build="test",
    )
    claims.update(changes)
    return claims


def _sign(key: keys.SigningKey, claims: dict[str, Any], alg: str = "ES256") -> str:
    return jwt.encode(claims, key.private_key, algorithm=alg, headers={"kid": key.kid, "typ": "eat+jwt"})


@pytest.fixture
def keyset() -> Keyset:
    return Keyset(current=keys.generate_key(), previous=(keys.generate_key(),))


def test_signed_token_verifies_offline(keyset: Keyset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "signing_key", lambda: keyset.current)
    token, kid = ear.sign(_claims())
    verified = ear.verify(token, keyset.jwks())
    assert kid == keyset.current.kid and verified.header["typ"] == "eat+jwt"
    assert verified.claims["submods"]["gpu-hardware"]["ear.trustworthiness-vector"] == {"hardware": 2}
    assert verified.status == "affirming" and verified.claims["eat_profile"] == ear.EAT_PROFILE


def test_previous_key_still_verifies_but_a_retired_key_does_not(keyset: Keyset) -> None:
    assert ear.verify(_sign(keyset.previous[0], _claims()), keyset.jwks()).status == "affirming"
    retired = keys.generate_key()  # rotated out of the keyset: no longer in the JWKS
    with pytest.raises(ear.TokenError, match="unknown or retired"):
        ear.verify(_sign(retired, _claims()), keyset.jwks())


def test_forged_signature_is_refused(keyset: Keyset) -> None:
    forger = keys.generate_key()
    forged = jwt.encode(_claims(), forger.private_key, algorithm="ES256", headers={"kid": keyset.current.kid})
    with pytest.raises(ear.TokenError, match="InvalidSignatureError"):
        ear.verify(forged, keyset.jwks())
    header, payload, signature = _sign(keyset.current, _claims()).split(".")
    tampered = json.loads(jwt.utils.base64url_decode(payload))
    tampered["ear.status"] = "affirming"
    tampered["submods"]["gpu-hardware"]["lotabots.assurance"] = "vendor-verified"
    body = jwt.utils.base64url_encode(json.dumps(tampered).encode()).decode()
    with pytest.raises(ear.TokenError):
        ear.verify(f"{header}.{body}.{signature}", keyset.jwks())


def test_expired_token_is_refused(keyset: Keyset) -> None:
    old = int(time.time()) - 7200
    with pytest.raises(ear.TokenError, match="expired"):
        ear.verify(_sign(keyset.current, _claims(iat=old, exp=old + 60)), keyset.jwks())


def test_wrong_audience_and_other_algorithms_are_refused(keyset: Keyset) -> None:
    with pytest.raises(ear.TokenError, match="Audience"):
        ear.verify(_sign(keyset.current, _claims(aud="lotabots-api")), keyset.jwks())
    hs = jwt.encode(_claims(), "secret-guess-" * 4, algorithm="HS256", headers={"kid": keyset.current.kid})
    with pytest.raises(ear.TokenError, match="algorithm"):
        ear.verify(hs, keyset.jwks())
    with pytest.raises(ear.TokenError, match="malformed"):
        ear.verify("not.a.token", keyset.jwks())


def test_a_result_token_is_never_an_access_token(keyset: Keyset) -> None:
    token = _sign(keyset.current, _claims(sub="admin-1", role="admin"))
    with pytest.raises(tokens.InvalidToken):
        tokens.decode(token, keyset.public_keys(), issuer="https://lotabots.local", audience="lotabots-api")


def test_cli_verify_token_exit_codes(
    keyset: Keyset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keyset.jwks()))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"token": _sign(keyset.current, _claims())}))
    bad = tmp_path / "bad.jwt"
    bad.write_text(_sign(keys.generate_key(), _claims()))
    contraindicated = tmp_path / "fail.jwt"
    contraindicated.write_text(_sign(keyset.current, _claims(**{"ear.status": "contraindicated"})))
    assert cli.main(["attest", "verify-token", str(good), "--jwks", str(jwks)]) == 0
    assert "signature: valid" in capsys.readouterr().out
    assert cli.main(["attest", "verify-token", str(bad), "--jwks", str(jwks)]) == 1
    assert "INVALID" in capsys.readouterr().err
    assert cli.main(["attest", "verify-token", str(contraindicated), "--jwks", str(jwks)]) == 3
