"""The auth API end to end through functions/auth: register, login, refresh, logout, me,
JWKS and user administration, on SQLite and PostgreSQL with moto for AWS."""

from __future__ import annotations

from typing import Any

import pytest

from lotabots import audit
from lotabots.access import Principal, Role
from lotabots.auth import revocations, service, tokens
from lotabots.db import session_scope
from tests.support.api import api_event, invoke
from tests.support.auth import DEFAULT_PASSWORD, login, principal_of, register, register_and_login


@pytest.fixture
def env(db: str, aws_env: dict[str, str]) -> None:
    """Migrated database and moto resources (signing keys included)."""


@pytest.fixture
def admin(env: None) -> Principal:
    user, created = service.ensure_admin("root@example.com", DEFAULT_PASSWORD, actor="test")
    assert created
    return Principal(user_id=user.id, email=user.email, role=Role.ADMIN)


def refresh(token: str) -> tuple[int, Any]:
    status, _, body = invoke("auth", api_event("POST", "/auth/refresh", body={"refresh_token": token}))
    return status, body


def test_register_creates_a_member_with_a_normalised_email(env: None) -> None:
    status, headers, body = invoke(
        "auth",
        api_event(
            "POST", "/auth/register", body={"email": " Alice@Example.COM", "password": DEFAULT_PASSWORD}
        ),
    )
    assert status == 201
    assert body["email"] == "alice@example.com"
    assert body["role"] == "member" and body["disabled"] is False
    assert headers["Location"] == f"/users/{body['id']}"
    assert "password" not in str(body)


def test_login_returns_a_bearer_pair_whose_access_token_verifies(env: None) -> None:
    register("alice@example.com")
    status, headers, body = login("ALICE@example.com")
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 900
    assert headers["Cache-Control"] == "no-store"
    claims = tokens.verify(body["access_token"])
    assert claims.email == "alice@example.com" and claims.role == "member"


def test_wrong_password_and_unknown_email_get_the_same_401(env: None) -> None:
    register("alice@example.com")
    wrong = login("alice@example.com", "not the right password")
    unknown = login("nobody@example.com")
    assert wrong[0] == unknown[0] == 401
    assert wrong[2]["message"] == unknown[2]["message"] == "email or password is incorrect"


def test_refresh_rotates_and_the_spent_token_revokes_the_family(env: None) -> None:
    session = register_and_login("alice@example.com")
    status, second = refresh(session["refresh_token"])
    assert status == 200 and second["refresh_token"] != session["refresh_token"]
    # The first token is spent: presenting it again is a reuse and kills the family...
    status, body = refresh(session["refresh_token"])
    assert status == 401 and body["code"] == "invalid_refresh_token"
    # ...including the token handed out by the legitimate refresh.
    assert refresh(second["refresh_token"])[0] == 401
    with session_scope() as s:
        assert audit.verify_chain(s) == (True, None)


def test_reuse_revokes_only_that_family_not_other_sessions(env: None) -> None:
    first = register_and_login("alice@example.com")
    other = login("alice@example.com")[2]
    refresh(first["refresh_token"])
    refresh(first["refresh_token"])  # reuse
    assert refresh(other["refresh_token"])[0] == 200


def test_logout_revokes_the_family_and_is_idempotent(env: None) -> None:
    session = register_and_login("alice@example.com")
    for _ in range(2):
        status, _, body = invoke(
            "auth", api_event("POST", "/auth/logout", body={"refresh_token": session["refresh_token"]})
        )
        assert status == 204 and body is None
    assert refresh(session["refresh_token"])[0] == 401


def test_me_returns_the_caller(env: None) -> None:
    session = register_and_login("alice@example.com")
    status, _, body = invoke("auth", api_event("GET", "/auth/me", principal=principal_of(session["user"])))
    assert status == 200 and body["id"] == session["user"]["id"]


def test_me_without_a_principal_is_401(env: None) -> None:
    status, _, body = invoke("auth", api_event("GET", "/auth/me"))
    assert status == 401 and set(body) == {"message", "code", "details", "request_id"}


def test_jwks_is_public_and_lists_the_signing_key(env: None) -> None:
    session = register_and_login("alice@example.com")
    status, headers, body = invoke("auth", api_event("GET", "/.well-known/jwks.json"))
    assert status == 200
    assert headers["Cache-Control"].startswith("public")
    kid = tokens.verify(session["access_token"]).kid
    assert kid in {k["kid"] for k in body["keys"]}
    assert all(k["alg"] == "ES256" and k["use"] == "sig" and "d" not in k for k in body["keys"])


def test_admin_lists_users_with_cursor_pagination(admin: Principal) -> None:
    for i in range(5):
        register(f"user{i}@example.com")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, _, page = invoke("auth", api_event("GET", "/users", principal=admin, query=query))
        assert status == 200
        seen += [u["email"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(["root@example.com"] + [f"user{i}@example.com" for i in range(5)])
    assert len(seen) == len(set(seen))


def test_users_can_be_filtered_by_role(admin: Principal) -> None:
    register("user@example.com")
    status, _, page = invoke("auth", api_event("GET", "/users", principal=admin, query={"role": "admin"}))
    assert status == 200 and [u["email"] for u in page["items"]] == ["root@example.com"]


def test_bad_cursor_is_a_400(admin: Principal) -> None:
    status, _, body = invoke("auth", api_event("GET", "/users", principal=admin, query={"cursor": "!!nope"}))
    assert status == 400 and body["code"] == "invalid_cursor"


def test_admin_promotes_a_user_audited_and_old_tokens_revoked(admin: Principal) -> None:
    session = register_and_login("alice@example.com")
    user_id = session["user"]["id"]
    status, _, body = invoke(
        "auth",
        api_event(
            "PATCH",
            f"/users/{user_id}",
            principal=admin,
            body={"role": "operator"},
            path_params={"user_id": user_id},
        ),
    )
    assert status == 200 and body["role"] == "operator"
    old = tokens.verify(session["access_token"])
    assert tokens.is_revoked(revocations.current(), old)
    # A refresh gets the new role in a token the revocation does not catch.
    status, pair = refresh(session["refresh_token"])
    assert status == 200
    fresh = tokens.verify(pair["access_token"])
    assert fresh.role == "operator" and not tokens.is_revoked(revocations.current(), fresh)
    from sqlalchemy import select

    from lotabots.audit.models import AuditEntry

    with session_scope() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.role_changed")).one()
        assert (entry.actor_id, entry.target_id) == (admin.user_id, user_id)
        assert entry.details == {"from": "member", "to": "operator"}


def test_disabled_user_cannot_refresh_or_log_in(admin: Principal) -> None:
    session = register_and_login("alice@example.com")
    user_id = session["user"]["id"]
    status, _, body = invoke(
        "auth",
        api_event(
            "PATCH",
            f"/users/{user_id}",
            principal=admin,
            body={"disabled": True},
            path_params={"user_id": user_id},
        ),
    )
    assert status == 200 and body["disabled"] is True
    assert refresh(session["refresh_token"])[0] == 401
    status, _, body = login("alice@example.com")
    assert status == 401 and body["message"] == "email or password is incorrect"
    assert user_id in revocations.current()
    # /auth/me refuses a disabled user even with a principal the gateway let through.
    assert invoke("auth", api_event("GET", "/auth/me", principal=principal_of(session["user"])))[0] == 401


def test_reenabled_user_can_log_in_again(admin: Principal) -> None:
    session = register_and_login("alice@example.com")
    user_id = session["user"]["id"]
    for disabled in (True, False):
        invoke(
            "auth",
            api_event(
                "PATCH",
                f"/users/{user_id}",
                principal=admin,
                body={"disabled": disabled},
                path_params={"user_id": user_id},
            ),
        )
    assert login("alice@example.com")[0] == 200


def test_admin_cannot_demote_or_disable_themselves(admin: Principal) -> None:
    status, _, body = invoke(
        "auth",
        api_event(
            "PATCH",
            f"/users/{admin.user_id}",
            principal=admin,
            body={"disabled": True},
            path_params={"user_id": admin.user_id},
        ),
    )
    assert status == 409 and body["code"] == "self_change"


def test_patching_an_unknown_user_is_404(admin: Principal) -> None:
    status, _, _ = invoke(
        "auth",
        api_event(
            "PATCH", "/users/nope", principal=admin, body={"role": "member"}, path_params={"user_id": "nope"}
        ),
    )
    assert status == 404


def test_member_calling_admin_routes_gets_403(env: None) -> None:
    session = register_and_login("alice@example.com")
    member = principal_of(session["user"])
    status, _, body = invoke("auth", api_event("GET", "/users", principal=member))
    assert status == 403 and body["code"] == "forbidden"
    user_id = session["user"]["id"]
    status, _, _ = invoke(
        "auth",
        api_event(
            "PATCH",
            f"/users/{user_id}",
            principal=member,
            body={"role": "admin"},
            path_params={"user_id": user_id},
        ),
    )
    assert status == 403
    with session_scope() as s:
        assert service.repository.get_user(s, user_id).role == "member"  # type: ignore[union-attr]


def test_bootstrap_admin_is_idempotent(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from lotabots import config

    monkeypatch.setenv("LOTABOTS_BOOTSTRAP_ADMIN_EMAIL", "Admin@Lotabots.Local")
    monkeypatch.setenv("LOTABOTS_BOOTSTRAP_ADMIN_PASSWORD", "a long local dev password")
    config.reset()
    first = service.bootstrap_admin()
    second = service.bootstrap_admin()
    assert first is not None and second is not None
    assert first.id == second.id and first.role == "admin" and first.email == "admin@lotabots.local"
    assert login("admin@lotabots.local", "a long local dev password")[0] == 200


def test_bootstrap_without_settings_does_nothing(env: None) -> None:
    assert service.bootstrap_admin() is None


def test_expired_refresh_token_is_refused(env: None) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from lotabots.auth.models import RefreshToken
    from lotabots.db import utcnow

    session = register_and_login("alice@example.com")
    with session_scope() as s:
        s.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert refresh(session["refresh_token"])[0] == 401


def test_refresh_keeps_the_family_expiry_instead_of_extending_it(env: None) -> None:
    from sqlalchemy import select

    from lotabots.auth.models import RefreshToken

    session = register_and_login("alice@example.com")
    refresh(session["refresh_token"])
    with session_scope() as s:
        expiries = set(s.scalars(select(RefreshToken.expires_at)))
    assert len(expiries) == 1


def test_login_rehashes_the_password_when_bcrypt_cost_changes(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lotabots import config
    from lotabots.auth.models import User

    register("alice@example.com")
    monkeypatch.setenv("BCRYPT_ROUNDS", "5")
    config.reset()
    assert login("alice@example.com")[0] == 200
    with session_scope() as s:
        user = service.repository.get_user_by_email(s, "alice@example.com")
        assert isinstance(user, User) and user.password_hash.startswith("$2b$05$")
    assert login("alice@example.com")[0] == 200
