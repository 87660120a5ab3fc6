"""OpenSSF model signing (`model-signing`, key-based ECDSA) with the key in Secrets Manager.

The platform signs, the GPU host never holds the private key: when a model's first
attestation reports its per-file SHA-256 digests, the verifier builds the model-signing
manifest from them and signs it here (`MODEL_SIGNING_KEY_SECRET_ID`, JSON {"private_pem",
"public_pem"}). The result is a standard model-signing signature (a Sigstore bundle holding a
DSSE in-toto statement, predicate `https://model_signing/signature/v1.0`), so anyone can check
the model's files with `model_signing verify key --public_key ...`; every later `attest_model`
job does exactly that on the device, and the verifier checks the reported digests against
the manifest inside the verified signature.

`model_signing`'s key signer reads PEM files, so the key passes through a private temporary
file (mode 0600, removed at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lotabots import aws, config
from lotabots.observability import logger

# What model-signing ignores by default when it hashes a directory, and our signature file.
IGNORE_PATHS = ("model.sig", ".git", ".gitattributes", ".github", ".gitignore")
HASH_TYPE = "sha256"


class SigningUnavailable(RuntimeError):
    """The model-signing key is missing or unusable."""


def secret_id() -> str:
    return config.load(config.AttestationSettings).model_signing_key_secret_id


def generate_keypair() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    return {
        "private_pem": private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii"),
        "public_pem": private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii"),
    }


def _usable(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "BEGIN" in str(value.get("private_pem", ""))
        and "BEGIN" in str(value.get("public_pem", ""))
    )


def ensure_key() -> str:
    """Create the keypair if the secret is missing or holds a placeholder; returns the public PEM."""
    sm = aws.client("secretsmanager")
    try:
        current = json.loads(sm.get_secret_value(SecretId=secret_id()).get("SecretString") or "{}")
        exists = True
    except sm.exceptions.ResourceNotFoundException:
        current, exists = {}, False
    except ValueError:
        current, exists = {}, True
    if _usable(current):
        return str(current["public_pem"])
    pair = generate_keypair()
    if exists:
        sm.put_secret_value(SecretId=secret_id(), SecretString=json.dumps(pair))
    else:
        with contextlib.suppress(sm.exceptions.ResourceExistsException):
            sm.create_secret(
                Name=secret_id(),
                SecretString=json.dumps(pair),
                Description="LotaBots model-signing key (ECDSA P-256)",
            )
    logger.info("created the model-signing key")
    return pair["public_pem"]


def _keypair() -> dict[str, str]:
    from aws_lambda_powertools.utilities import parameters

    try:
        value: Any = parameters.get_secret(
            secret_id(), transform="json", max_age=config.load(config.AuthSettings).jwks_cache_seconds
        )
    except Exception as exc:  # missing secret, no access, not JSON
        raise SigningUnavailable(f"model-signing key {secret_id()} unavailable: {exc}") from None
    if not _usable(value):
        raise SigningUnavailable(
            f"secret {secret_id()} holds no model-signing keypair; run `lotabots keys ensure`"
        )
    return {"private_pem": str(value["private_pem"]), "public_pem": str(value["public_pem"])}


def public_key_pem() -> str:
    return _keypair()["public_pem"]


@contextlib.contextmanager
def _pem_file(pem: str) -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix="lotabots-key-", suffix=".pem")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(pem)
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def manifest_of(model_name: str, files: Mapping[str, str]) -> Any:
    """A model-signing manifest for {relative path: sha256 hex}, as model-signing hashes a directory."""
    from model_signing import manifest
    from model_signing._hashing import hashing

    serialization = manifest._FileSerialization(
        HASH_TYPE, allow_symlinks=False, ignore_paths=[Path(p) for p in IGNORE_PATHS]
    )
    items = [
        serialization.new_item(name, hashing.Digest(HASH_TYPE, bytes.fromhex(sha)))
        for name, sha in sorted(files.items())
    ]
    return manifest.Manifest(model_name, items, serialization)


def sign_files(model_name: str, files: Mapping[str, str]) -> str:
    """The model-signing signature (bundle JSON) over these file digests."""
    from model_signing._signing import sign_ec_key, signing

    pair = _keypair()
    with _pem_file(pair["private_pem"]) as key_path, tempfile.TemporaryDirectory() as out:
        signature = sign_ec_key.Signer(key_path).sign(signing.Payload(manifest_of(model_name, files)))
        target = Path(out) / "model.sig"
        signature.write(target)
        return target.read_text(encoding="utf-8")


def signed_files(bundle: str, public_pem: str | None = None) -> dict[str, str]:
    """Verify a signature bundle with the public key; the {path: sha256} it signs. Raises ValueError."""
    from model_signing._signing import sign_ec_key
    from model_signing._signing import sign_sigstore_pb as sigstore_pb

    pem = public_pem or public_key_pem()
    with _pem_file(pem) as key_path, tempfile.TemporaryDirectory() as out:
        target = Path(out) / "model.sig"
        target.write_text(bundle, encoding="utf-8")
        try:
            verified = sign_ec_key.Verifier(key_path).verify(sigstore_pb.Signature.read(target))
        except Exception as exc:  # model-signing raises ValueError, InvalidSignature, parse errors
            raise ValueError(f"signature does not verify: {type(exc).__name__}: {exc}") from None
    return {rd.identifier: rd.digest.digest_hex for rd in verified.resource_descriptors()}
