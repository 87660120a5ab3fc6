"""Password hashing (bcrypt) and the password policy.

bcrypt only looks at the first 72 bytes of a password. Rather than silently truncating
(two passwords sharing 72 bytes would be equal) or pre-hashing (which changes the stored
format), registration rejects passwords longer than 72 UTF-8 bytes with a clear 422, and a
login with such a password simply fails like any wrong password.
"""

from __future__ import annotations

import bcrypt

from lotabots import config
from lotabots.config import AuthSettings
from lotabots.errors import UnprocessableEntity

MIN_LENGTH = 12
MAX_BYTES = 72
# An email local part shorter than this is too common a substring to forbid (e.g. "al").
MIN_LOCAL_PART_CHECKED = 3


def policy_violations(password: str, email: str) -> list[str]:
    """Every rule the password breaks, as messages a person can act on."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"password must be at least {MIN_LENGTH} characters long")
    if len(password.encode("utf-8")) > MAX_BYTES:
        problems.append(f"password must be at most {MAX_BYTES} bytes when UTF-8 encoded (bcrypt's limit)")
    lowered = password.casefold()
    email = email.strip().casefold()
    local_part = email.split("@", 1)[0]
    if lowered == email or (len(local_part) >= MIN_LOCAL_PART_CHECKED and local_part in lowered):
        problems.append("password must not be or contain your email address")
    return problems


def check_policy(password: str, email: str) -> None:
    """Raise a 422 naming every broken rule."""
    problems = policy_violations(password, email)
    if problems:
        raise UnprocessableEntity(
            problems[0]
            if len(problems) == 1
            else "password does not meet the policy: " + "; ".join(problems),
            code="weak_password",
            details=[{"field": "body.password", "message": p, "type": "password_policy"} for p in problems],
        )


def _rounds() -> int:
    return config.load(AuthSettings).bcrypt_rounds


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(_rounds())).decode("ascii")


# A well-formed bcrypt hash no password matches; checking against it costs a full bcrypt
# run at the given cost, without having to compute (and wait for) a real hash first.
_DUMMY_SALT_AND_HASH = "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"


def _dummy_hash(rounds: int) -> bytes:
    return f"$2b${rounds:02d}${_DUMMY_SALT_AND_HASH}".encode("ascii")


def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password; with no hash (unknown user) burn the same bcrypt time and fail."""
    encoded = password.encode("utf-8")
    usable = password_hash is not None and len(encoded) <= MAX_BYTES
    candidate = encoded if len(encoded) <= MAX_BYTES else encoded[:MAX_BYTES]
    if not usable:
        bcrypt.checkpw(candidate, _dummy_hash(_rounds()))
        return False
    assert password_hash is not None
    try:
        return bcrypt.checkpw(candidate, password_hash.encode("ascii"))
    except ValueError:
        # A corrupt stored hash must not turn into a 500 or a different timing.
        bcrypt.checkpw(candidate, _dummy_hash(_rounds()))
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the stored hash uses another cost than BCRYPT_ROUNDS (upgrade on login)."""
    try:
        return int(password_hash.split("$")[2]) != _rounds()
    except (IndexError, ValueError):
        return True
