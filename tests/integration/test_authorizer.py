"""The REQUEST authorizer against moto through the Parameters-extension emulator.

Tokens come from the real auth service; the authorizer reads the JWKS and the revocation
list over HTTP exactly as it does in Lambda (through the extension's local API).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from devstack import parameters_extension
from lotabots import aws, config
from lotabots.access import Principal, Role
from lotabots.auth import keys, service, tokens
from tests.support.api import FakeLambdaContext, api_event, invoke, load_function
from tests.support.auth import (
    DEFAULT_PASSWORD,
    authorizer_event,
    claims,
    forge_hs256,
    register_and_login,
    sign,
)


@pytest.fixture
def authorizer(db: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server, url = parameters_extension.start("127.0.0.1", 0)
    monkeypatch.setenv("PARAMETERS_EXTENSION_URL", url)
    module = load_function("authorizer")
    module.cache.clear()
    yield module
    module.cache.clear()
    server.shutdown()
    server.server_close()


def authorize(module: Any, event: dict[str, Any]) -> dict[str, Any]:
    return dict(module.lambda_handler(event, FakeLambdaContext()))


def assert_unauthorized(module: Any, event: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(module, event)


def test_valid_token_is_allowed_on_the_whole_stage_with_the_principal_in_context(authorizer: Any) -> None:
    session = register_and_login("alice@example.com")
    result = authorize(authorizer, authorizer_event(session["access_token"]))
    assert result["principalId"] == session["user"]["id"]
    issued_at = result["context"].pop("iat")
    assert result["context"] == {
        "user_id": session["user"]["id"],
        "email": "alice@example.com",
        "role": "member",
    }
    assert abs(issued_at - time.time()) < 60  # functions compare it with the account's revocation
    (statement,) = result["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/*/*"]


def test_context_is_what_the_functions_read_as_principal(authorizer: Any) -> None:
    session = register_and_login("alice@example.com")
    context = authorize(authorizer, authorizer_event(session["access_token"]))["context"]
    event = api_event("GET", "/auth/me")
    event["requestContext"]["authorizer"] = {**context, "principalId": context["user_id"]}
    status, _, body = invoke("auth", event)
    assert status == 200 and body["email"] == "alice@example.com"


@pytest.mark.parametrize("header", ["authorization", "AUTHORIZATION", "Authorization"])
def test_header_name_is_case_insensitive(authorizer: Any, header: str) -> None:
    session = register_and_login("alice@example.com")
    assert authorize(authorizer, authorizer_event(session["access_token"], header=header))["principalId"]


def test_missing_header_or_wrong_scheme_is_unauthorized(authorizer: Any) -> None:
    session = register_and_login("alice@example.com")
    assert_unauthorized(authorizer, authorizer_event(None))
    assert_unauthorized(authorizer, authorizer_event(session["access_token"], scheme="Basic"))
    assert_unauthorized(authorizer, authorizer_event("", scheme="Bearer"))
    no_headers = authorizer_event(None)
    del no_headers["headers"]
    assert_unauthorized(authorizer, no_headers)


def _forgeries() -> dict[str, Any]:
    key = keys.load().current
    stranger = keys.generate_key()
    good = sign(claims(), key.private_key, key.kid)
    header, _, signature = good.split(".")
    tampered = base64.urlsafe_b64encode(json.dumps(claims(role="admin")).encode()).rstrip(b"=").decode()
    past = int(time.time()) - 3600
    return {
        "alg none": jwt.encode(claims(), "", algorithm="none", headers={"kid": key.kid}),
        "hs256 with the public key": forge_hs256(
            claims(),
            key.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
            key.kid,
        ),
        "expired": sign(claims(iat=past, nbf=past, exp=past + 900), key.private_key, key.kid),
        "wrong audience": sign(claims(aud="another-api"), key.private_key, key.kid),
        "wrong issuer": sign(claims(iss="https://evil.example"), key.private_key, key.kid),
        "unknown kid": sign(claims(), stranger.private_key, stranger.kid),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "case",
    [
        "alg none",
        "hs256 with the public key",
        "expired",
        "wrong audience",
        "wrong issuer",
        "unknown kid",
        "tampered payload",
        "garbage",
    ],
)
def test_forged_or_invalid_tokens_are_unauthorized(authorizer: Any, case: str) -> None:
    assert_unauthorized(authorizer, authorizer_event(_forgeries()[case]))


def test_disabled_user_is_denied_once_the_revocation_cache_expires(authorizer: Any) -> None:
    session = register_and_login("alice@example.com")
    event = authorizer_event(session["access_token"])
    assert authorize(authorizer, event)["principalId"]  # caches the (empty) revocation list
    admin, _ = service.ensure_admin("root@example.com", DEFAULT_PASSWORD, actor="test")
    from lotabots.auth.schemas import UserUpdate

    service.update_user(
        Principal(admin.id, admin.email, Role.ADMIN), session["user"]["id"], UserUpdate(disabled=True)
    )
    assert authorize(authorizer, event)["principalId"]  # still within REVOCATIONS_CACHE_SECONDS
    authorizer.cache.revoked_at = float("-inf")  # the 30 s cache runs out
    assert_unauthorized(authorizer, event)


def test_role_change_revokes_old_tokens_but_not_the_refreshed_one(authorizer: Any) -> None:
    session = register_and_login("alice@example.com")
    admin, _ = service.ensure_admin("root@example.com", DEFAULT_PASSWORD, actor="test")
    from lotabots.auth.schemas import UserUpdate

    service.update_user(
        Principal(admin.id, admin.email, Role.ADMIN), session["user"]["id"], UserUpdate(role="operator")
    )
    assert_unauthorized(authorizer, authorizer_event(session["access_token"]))
    fresh = service.refresh(session["refresh_token"])  # in the same second as the change
    assert authorize(authorizer, authorizer_event(fresh.access_token))["context"]["role"] == "operator"


def test_rotated_key_is_fetched_once_on_unknown_kid(authorizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    session = register_and_login("alice@example.com")
    assert authorize(authorizer, authorizer_event(session["access_token"]))  # JWKS cached
    monkeypatch.setenv("SIGNING_KEY_ACTIVATION_SECONDS", "0")
    config.reset()
    keys.rotate()
    monkeypatch.setattr(authorizer, "REFETCH_MIN_INTERVAL_SECONDS", 0.0)
    token, _ = tokens.issue_access_token(session["user"]["id"], "alice@example.com", "member")
    assert authorize(authorizer, authorizer_event(token))["principalId"] == session["user"]["id"]
    # The token signed by the previous key still verifies.
    assert authorize(authorizer, authorizer_event(session["access_token"]))


def test_unknown_kid_refetch_is_rate_limited(authorizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    session = register_and_login("alice@example.com")
    authorize(authorizer, authorizer_event(session["access_token"]))
    fetches: list[str] = []
    real = authorizer.get_parameter

    def counting(name: str) -> str | None:
        fetches.append(name)
        return real(name)

    monkeypatch.setattr(authorizer, "get_parameter", counting)
    stranger = keys.generate_key()
    for _ in range(5):
        assert_unauthorized(authorizer, authorizer_event(sign(claims(), stranger.private_key, stranger.kid)))
    assert authorizer.settings.jwks_parameter not in fetches  # fetched < 5 s ago: no refetch


def test_integration_token_is_accepted_with_its_role(authorizer: Any) -> None:
    token = tokens.issue_integration_token("grafana", days=90)
    result = authorize(authorizer, authorizer_event(token))
    assert result["context"]["role"] == "integration" and result["principalId"] == "integration:grafana"


def test_unreachable_extension_is_an_error_not_an_allow(
    authorizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = register_and_login("alice@example.com")
    monkeypatch.setenv("PARAMETERS_EXTENSION_URL", "http://127.0.0.1:9")
    with pytest.raises(authorizer.ExtensionError):
        authorize(authorizer, authorizer_event(session["access_token"]))


def test_missing_jwks_parameter_is_an_error(authorizer: Any) -> None:
    aws.client("ssm").delete_parameter(Name=config.load(config.AuthSettings).jwks_parameter_name)
    session = register_and_login("alice@example.com")
    with pytest.raises(authorizer.ExtensionError):
        authorize(authorizer, authorizer_event(session["access_token"]))


def test_missing_revocations_parameter_counts_as_nothing_revoked(authorizer: Any) -> None:
    aws.client("ssm").delete_parameter(Name=config.load(config.AuthSettings).revocations_parameter_name)
    session = register_and_login("alice@example.com")
    assert authorize(authorizer, authorizer_event(session["access_token"]))["principalId"]


def test_extension_emulator_requires_the_session_token_header(authorizer: Any) -> None:
    import urllib.error
    import urllib.request

    base = authorizer.settings.extension_url
    request = urllib.request.Request(f"{base}/systemsmanager/parameters/get?name=%2Flotabots%2Fjwks")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=3)
    assert err.value.code == 401
    value = authorizer.get_parameter("/lotabots/jwks")
    assert json.loads(value)["keys"]


def _emf_metrics(output: str) -> list[tuple[str, dict[str, str]]]:
    """(metric name, dimensions) of the authorizer's EMF metrics printed to stdout."""
    found = []
    for line in output.splitlines():
        if not line.startswith("{") or "_aws" not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = {name: document[name] for group in directive["Dimensions"] for name in group}
            found += [
                (metric["Name"], dimensions)
                for metric in directive["Metrics"]
                if metric["Name"].startswith("Authorizer")
            ]
    return found


def test_expected_denials_and_real_failures_are_counted_apart(
    authorizer: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An expired token is a denial, not a failure: the error alarm watches AuthorizerFailures only."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "authorizer")
    capsys.readouterr()
    assert_unauthorized(authorizer, authorizer_event(None))
    assert _emf_metrics(capsys.readouterr().out) == [("AuthorizerDenials", {"service": "authorizer"})]

    session = register_and_login("alice@example.com")
    monkeypatch.setenv("PARAMETERS_EXTENSION_URL", "http://127.0.0.1:9")
    with pytest.raises(authorizer.ExtensionError):
        authorize(authorizer, authorizer_event(session["access_token"]))
    assert _emf_metrics(capsys.readouterr().out) == [("AuthorizerFailures", {"service": "authorizer"})]
