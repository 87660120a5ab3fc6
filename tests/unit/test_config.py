"""Settings: a bad environment fails fast with an error that names the variable."""

import pytest

from lotabots import config
from lotabots.config import AuthSettings, DocumentSettings, SettingsError


def test_invalid_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    config.reset()
    monkeypatch.setenv("BCRYPT_ROUNDS", "not-a-number")
    with pytest.raises(SettingsError, match="BCRYPT_ROUNDS"):
        config.load(AuthSettings)
    config.reset()


def test_out_of_range_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    config.reset()
    monkeypatch.setenv("DOCUMENT_MAX_BYTES", "0")
    with pytest.raises(SettingsError, match="DOCUMENT_MAX_BYTES"):
        config.load(DocumentSettings)
    config.reset()


def test_settings_are_cached_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    config.reset()
    monkeypatch.setenv("LOTABOTS_STAGE", "one")
    assert config.core().stage == "one"
    monkeypatch.setenv("LOTABOTS_STAGE", "two")
    assert config.core().stage == "one"
    config.reset()
    assert config.core().stage == "two"
    config.reset()
