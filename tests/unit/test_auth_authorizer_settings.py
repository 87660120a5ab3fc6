"""The authorizer reads os.environ directly (cold start); its defaults must match AuthSettings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lotabots.config import AuthSettings
from tests.support.api import ROOT, load_function


def test_authorizer_defaults_match_auth_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [
        "PARAMETERS_EXTENSION_URL",
        "LOTABOTS_JWT_ISSUER",
        "LOTABOTS_JWT_AUDIENCE",
        "JWKS_PARAMETER_NAME",
        "REVOCATIONS_PARAMETER_NAME",
        "JWKS_CACHE_SECONDS",
        "REVOCATIONS_CACHE_SECONDS",
    ]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    settings = AuthSettings.model_validate({})  # the declared defaults
    authorizer = load_function("authorizer").settings
    assert authorizer.extension_url == settings.parameters_extension_url
    assert authorizer.issuer == settings.jwt_issuer
    assert authorizer.audience == settings.jwt_audience
    assert authorizer.jwks_parameter == settings.jwks_parameter_name
    assert authorizer.revocations_parameter == settings.revocations_parameter_name
    assert authorizer.jwks_ttl == settings.jwks_cache_seconds
    assert authorizer.revocations_ttl == settings.revocations_cache_seconds


def test_authorizer_imports_no_boto3_sqlalchemy_or_pydantic_settings() -> None:
    code = (
        "import importlib.util, sys;"
        f"spec = importlib.util.spec_from_file_location('authz', r'{ROOT / 'functions/authorizer/app.py'}');"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "print(','.join(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(",")
    )
    assert "lotabots" in loaded
    assert not loaded & {"boto3", "sqlalchemy", "pydantic_settings", "pydantic"}
