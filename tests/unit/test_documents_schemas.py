"""Request validation: titles are data (path-like or unicode is fine, control characters are
not) and metadata is a small flat string map."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lotabots import config
from lotabots.documents.schemas import DocumentCreate, DocumentPatch


def _create(**overrides: object) -> DocumentCreate:
    body: dict[str, object] = {"title": "t", "content_type": "text/plain", "size_bytes": 10, **overrides}
    return DocumentCreate.model_validate(body)


def test_path_like_titles_are_kept_verbatim() -> None:
    assert _create(title="../../etc/passwd").title == "../../etc/passwd"


def test_unicode_titles_are_normalised_to_nfc() -> None:
    decomposed = "Cafe\u0301 \u2013 東京 📄"
    assert _create(title=decomposed).title == "Café \u2013 東京 📄"


@pytest.mark.parametrize("title", ["", "   ", "a\x00b", "line\nbreak", "rtl\u202eoverride", "x" * 201])
def test_bad_titles_are_refused(title: str) -> None:
    with pytest.raises(ValidationError):
        _create(title=title)


def test_metadata_must_be_a_flat_string_map() -> None:
    with pytest.raises(ValidationError):
        _create(metadata={"team": {"name": "ops"}})
    with pytest.raises(ValidationError):
        _create(metadata={"count": 3})
    with pytest.raises(ValidationError):
        _create(metadata=["a", "b"])
    assert _create(metadata={"team": "ops"}).metadata == {"team": "ops"}


def test_metadata_key_count_and_size_are_limited() -> None:
    with pytest.raises(ValidationError, match="at most 32 keys"):
        _create(metadata={f"k{i}": "v" for i in range(33)})
    with pytest.raises(ValidationError, match="limit is 2048 bytes"):
        _create(metadata={f"k{i}": "v" * 200 for i in range(12)})
    with pytest.raises(ValidationError, match="metadata key"):
        _create(metadata={"../x": "v"})


def test_metadata_limits_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCUMENT_MAX_METADATA_KEYS", "2")
    config.reset()
    try:
        with pytest.raises(ValidationError, match="at most 2 keys"):
            _create(metadata={"a": "1", "b": "2", "c": "3"})
    finally:
        monkeypatch.delenv("DOCUMENT_MAX_METADATA_KEYS")
        config.reset()


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        _create(owner_id="someone-else")


def test_patch_needs_something_to_change() -> None:
    with pytest.raises(ValidationError):
        DocumentPatch.model_validate({})
    assert DocumentPatch.model_validate({"metadata": {}}).metadata == {}
