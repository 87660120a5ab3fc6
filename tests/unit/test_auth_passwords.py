"""Password policy and bcrypt handling (72-byte limit, dummy check, rehash on cost change)."""

from __future__ import annotations

import bcrypt
import pytest

from lotabots import config
from lotabots.auth import passwords
from lotabots.errors import UnprocessableEntity


def test_short_password_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(UnprocessableEntity) as err:
        passwords.check_policy("short-pw", "alice@example.com")
    assert err.value.message == "password must be at least 12 characters long"
    assert err.value.details[0]["field"] == "body.password"


def test_password_longer_than_72_utf8_bytes_is_rejected_not_truncated() -> None:
    # 25 three-byte characters: 25 characters (passes the length rule) but 75 bytes.
    with pytest.raises(UnprocessableEntity) as err:
        passwords.check_policy("€" * 25, "alice@example.com")
    assert "72 bytes" in err.value.message
    passwords.check_policy("€" * 24, "alice@example.com")  # exactly 72 bytes is fine


@pytest.mark.parametrize(
    "password",
    ["alice@example.com", "ALICE@EXAMPLE.COM", "my-alice-password-2026", "xxAlicexxxxxxx"],
)
def test_password_may_not_be_or_contain_the_email(password: str) -> None:
    with pytest.raises(UnprocessableEntity, match="email"):
        passwords.check_policy(password, "Alice@Example.com")


def test_very_short_local_parts_do_not_forbid_common_substrings() -> None:
    passwords.check_policy("a perfectly fine passphrase", "al@example.com")


def test_every_broken_rule_is_reported() -> None:
    with pytest.raises(UnprocessableEntity) as err:
        passwords.check_policy("bob", "bob@example.com")
    assert len(err.value.details) == 2


def test_hash_and_verify_round_trip_and_reject_wrong_password() -> None:
    hashed = passwords.hash_password("correct horse battery staple")
    assert hashed.startswith("$2b$04$")  # BCRYPT_ROUNDS=4 in tests
    assert passwords.verify_password("correct horse battery staple", hashed)
    assert not passwords.verify_password("correct horse battery stapler", hashed)


def test_unknown_user_burns_a_bcrypt_check_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(passwords.bcrypt, "checkpw", counting)
    assert passwords.verify_password("anything at all", None) is False
    # One check, at the configured cost (BCRYPT_ROUNDS=4), like a real user's would be.
    assert len(calls) == 1 and calls[0].startswith(b"$2b$04$")


def test_over_long_login_password_fails_without_raising() -> None:
    hashed = passwords.hash_password("x" * 72)
    assert passwords.verify_password("x" * 80, hashed) is False


def test_corrupt_stored_hash_fails_like_a_wrong_password() -> None:
    assert passwords.verify_password("correct horse battery staple", "not-a-bcrypt-hash") is False


def test_needs_rehash_when_the_cost_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = passwords.hash_password("correct horse battery staple")
    assert not passwords.needs_rehash(hashed)
    monkeypatch.setenv("BCRYPT_ROUNDS", "5")
    config.reset()
    try:
        assert passwords.needs_rehash(hashed)
    finally:
        monkeypatch.delenv("BCRYPT_ROUNDS")
        monkeypatch.setenv("BCRYPT_ROUNDS", "4")
        config.reset()
