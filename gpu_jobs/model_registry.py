"""Model digests: a model's files are checked before anything loads them, against the digests of
its last passing attestation when the platform has one (`verify_baseline`, the normal case once
the model is attested), else against the packaged `model_registry.json` (`verify`).

Every file that can influence loading is listed with its size and SHA-256; documentation
files are named in `ignored`; any other file in the model directory is refused (a stray
weights file could be picked up instead of the attested one). The combined `digest` is the
SHA-256 of the sorted "path sha256" lines: one value that names the whole model.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_PATH = Path(__file__).resolve().parent / "model_registry.json"
# Top-level names OpenSSF model signing leaves out of a model's manifest.
SIGNING_IGNORED = frozenset({"model.sig", ".git", ".gitattributes", ".github", ".gitignore"})
_CHUNK = 1024 * 1024


class ModelIntegrityError(RuntimeError):
    """The model's files are not the registered ones: the job must not load them."""


@dataclass(frozen=True)
class VerifiedModel:
    name: str
    path: Path
    digest: str
    dim: int
    max_seq_length: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "dim": self.dim}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def combined_digest(files: dict[str, str]) -> str:
    lines = "".join(f"{name} {sha}\n" for name, sha in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Any]:
    registry: dict[str, Any] = json.loads(path.read_text())
    return registry


def entry(name: str, registry: dict[str, Any] | None = None) -> dict[str, Any]:
    models = (registry or load_registry())["models"]
    if name not in models:
        raise ModelIntegrityError(f"model {name!r} is not registered")
    found: dict[str, Any] = models[name]
    return found


def model_dir(name: str, registry: dict[str, Any] | None = None) -> Path:
    """Where the registered model's files are installed (inside its Python package)."""
    source = entry(name, registry)["source"]
    module = importlib.import_module(source["module"])
    return Path(module.__file__ or "").resolve().parent / source["path"]


def describe(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file under `directory` (to register a model)."""
    return {
        str(p.relative_to(directory)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def verify_baseline(
    name: str,
    baseline: dict[str, Any],
    directory: Path | None = None,
    registry: dict[str, Any] | None = None,
) -> VerifiedModel:
    """Check the files against the digests of the model's last passing attestation.

    `baseline` is what dispatch puts into the job: {"attestation_id", "files": {path: sha256}}.
    The same rule as the packaged registry: every listed file present with its digest, and no
    other file (except what model signing itself ignores) next to them.
    """
    spec = entry(name, registry)
    directory = directory or model_dir(name, registry)
    expected: dict[str, str] = dict(baseline.get("files") or {})
    if not expected:
        raise ModelIntegrityError(f"model {name}: the attested baseline lists no files")
    if not directory.is_dir():
        raise ModelIntegrityError(f"model directory {directory} does not exist")
    present = {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.relative_to(directory).parts[0] not in SIGNING_IGNORED
    }
    unexpected, missing = sorted(present - set(expected)), sorted(set(expected) - present)
    attestation = baseline.get("attestation_id")
    if unexpected or missing:
        raise ModelIntegrityError(
            f"model {name} differs from attestation {attestation}: "
            f"unattested files {unexpected or 'none'}, missing {missing or 'none'}"
        )
    for relative, want in sorted(expected.items()):
        if sha256_file(directory / relative) != want:
            raise ModelIntegrityError(
                f"model {name}: {relative} differs from its last passing attestation {attestation};"
                " refusing to load it"
            )
    return VerifiedModel(
        name=name,
        path=directory,
        digest=combined_digest(expected),
        dim=int(spec["dim"]),
        max_seq_length=int(spec["max_seq_length"]),
    )


def verify(name: str, directory: Path | None = None, registry: dict[str, Any] | None = None) -> VerifiedModel:
    """Check every file against the registry; raises `ModelIntegrityError` on any difference."""
    spec = entry(name, registry)
    directory = directory or model_dir(name, registry)
    if not directory.is_dir():
        raise ModelIntegrityError(f"model directory {directory} does not exist")
    expected: dict[str, dict[str, Any]] = spec["files"]
    ignored = set(spec.get("ignored", []))
    present = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}
    present = {p for p in present if "__pycache__" not in p}
    unexpected = sorted(present - set(expected) - ignored)
    if unexpected:
        raise ModelIntegrityError(f"model {name}: unregistered files present: {', '.join(unexpected)}")
    missing = sorted(set(expected) - present)
    if missing:
        raise ModelIntegrityError(f"model {name}: registered files missing: {', '.join(missing)}")
    actual: dict[str, str] = {}
    for relative, want in expected.items():
        path = directory / relative
        size = path.stat().st_size
        if size != want["bytes"]:
            raise ModelIntegrityError(f"model {name}: {relative} is {size} bytes, registered {want['bytes']}")
        sha = sha256_file(path)
        if sha != want["sha256"]:
            raise ModelIntegrityError(
                f"model {name}: {relative} has SHA-256 {sha}, registered {want['sha256']}"
            )
        actual[relative] = sha
    digest = combined_digest(actual)
    if digest != spec["digest"]:
        raise ModelIntegrityError(f"model {name}: combined digest {digest} differs from the registered one")
    return VerifiedModel(
        name=name,
        path=directory,
        digest=digest,
        dim=int(spec["dim"]),
        max_seq_length=int(spec["max_seq_length"]),
    )
