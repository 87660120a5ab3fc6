"""Signing keysets: JSON round trip, kid thumbprints, which key signs after a rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lotabots.auth import keys


def test_keyset_round_trips_through_the_secret_json() -> None:
    keyset = keys.Keyset(current=keys.generate_key(), previous=(keys.generate_key(),))
    again = keys.keyset_from_json(keyset.to_json())
    assert [k.kid for k in again.keys] == [k.kid for k in keyset.keys]
    assert again.current.created_at == keyset.current.created_at


def test_kid_is_the_rfc7638_thumbprint_and_jwks_is_public_only() -> None:
    key = keys.generate_key()
    assert key.kid == keys.thumbprint(key.public_key)
    (jwk,) = keys.Keyset(current=key).jwks()["keys"]
    assert jwk == {**jwk, "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": key.kid}
    assert "d" not in jwk  # never the private scalar


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"placeholder": "x"},
        {"current": {"kid": "k"}},
        {"current": {"private_pem": "nope", "created_at": "2026-01-01"}},
    ],
)
def test_placeholder_or_corrupt_secret_is_an_invalid_keyset(data: object) -> None:
    with pytest.raises(keys.InvalidKeyset):
        keys.keyset_from_json(data)


def test_new_key_signs_only_after_the_activation_delay() -> None:
    now = datetime.now(UTC)
    old = keys.generate_key(now - timedelta(days=3))
    new = keys.generate_key(now - timedelta(seconds=30))
    keyset = keys.Keyset(current=new, previous=(old,))
    assert keyset.signing_key(activation_seconds=600, now=now).kid == old.kid
    assert keyset.signing_key(activation_seconds=10, now=now).kid == new.kid


def test_a_lone_fresh_key_signs_at_once() -> None:
    keyset = keys.Keyset(current=keys.generate_key())
    assert keyset.signing_key(activation_seconds=600).kid == keyset.current.kid
