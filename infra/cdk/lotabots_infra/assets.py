"""Lambda assets built without Docker.

The core layer is `layers/core/lotabots` plus the wheels of its lock file
(`layers/core/requirements.lock`, every wheel pinned with its sha256: `lotabots_infra.lock`),
installed by `pip --require-hashes --no-deps --platform manylinux... --only-binary=:all:
--python-version 3.12` inside an `ILocalBundling` (so `cdk synth` never starts a container).
The pip output is cached under `build/layers/<hash>/` keyed by the lock's content and the pip
flags, so a repeated synth only copies files. A layer variant with extras (e.g. `modal` for the
GPU job functions) is a separate, fully resolved layer: a function has exactly one dependency
layer, so two layers can never ship conflicting versions of a shared dependency.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[3]
CORE_DIR = REPO_ROOT / "layers" / "core"
PACKAGE_DIR = CORE_DIR / "lotabots"
REQUIREMENTS_FILE = CORE_DIR / "requirements.txt"
PYPROJECT = REPO_ROOT / "pyproject.toml"
BUILD_DIR = REPO_ROOT / "build" / "layers"
FUNCTIONS_BUILD_DIR = REPO_ROOT / "build" / "functions"

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
# Wheels for Lambda's Python 3.12 on x86_64 (Amazon Linux 2023, glibc 2.34).
PIP_TARGET_FLAGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_28_x86_64",
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")
FUNCTION_EXCLUDES = ["__pycache__", "**/__pycache__", "*.pyc", ".mypy_cache"]


def core_requirements() -> list[str]:
    lines = REQUIREMENTS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def extra_requirements(extra: str) -> list[str]:
    """The requirement specifiers of a `[project.optional-dependencies]` extra in pyproject.toml."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    try:
        return [str(req) for req in project["optional-dependencies"][extra]]
    except KeyError:
        raise ValueError(f"pyproject.toml has no optional dependency group {extra!r}") from None


def _package_files() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    )


def requirements_hash(requirements: Iterable[str]) -> str:
    """Of the pip arguments and flags, and of the content of every `-r` file they name."""
    digest = hashlib.sha256()
    previous = ""
    for part in (*requirements, *PIP_TARGET_FLAGS):
        digest.update(part.encode())
        digest.update(b"\0")
        if previous == "-r":
            digest.update(Path(part).read_bytes())
        previous = part
    return digest.hexdigest()[:20]


def layer_hash(requirements: Iterable[str]) -> str:
    """Changes when the wheels or any file of the `lotabots` package change."""
    digest = hashlib.sha256(requirements_hash(requirements).encode())
    for path in _package_files():
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _link_or_copy(src: str, dst: str) -> object:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def install_wheels(requirements: list[str]) -> Path:
    """pip-install the requirements for Lambda into the cache (once per requirements hash).
    `requirements` are pip arguments: the layer passes `--require-hashes --no-deps -r <lock>`."""
    cached = BUILD_DIR / f"pip-{requirements_hash(requirements)}"
    if (cached / ".complete").exists():
        return cached / "python"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="pip-", dir=BUILD_DIR))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(staging / "python"),
        *PIP_TARGET_FLAGS,
        *requirements,
    ]
    try:
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        (staging / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        shutil.rmtree(cached, ignore_errors=True)
        staging.rename(cached)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cached / "python"


@jsii.implements(ILocalBundling)
class LayerBundler:
    """Builds a layer directory (`python/<wheels>` + `python/lotabots`) on the local machine."""

    def __init__(self, requirements: list[str]) -> None:
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        # jsii passes the BundlingOptions struct positionally; nothing in it is needed here.
        site = Path(output_dir) / "python"
        shutil.copytree(
            install_wheels(self.requirements), site, dirs_exist_ok=True, copy_function=_link_or_copy
        )
        shutil.copytree(PACKAGE_DIR, site / "lotabots", dirs_exist_ok=True, ignore=_IGNORED)
        return True


def locked_requirements(extras: tuple[str, ...] = ()) -> list[str]:
    """pip arguments that install exactly the layer variant's lock (hash-checked, no resolving)."""
    suffix = "".join(f"-{extra}" for extra in extras)
    lock = CORE_DIR / f"requirements{suffix}.lock"
    if not lock.is_file():
        raise FileNotFoundError(f"{lock.relative_to(REPO_ROOT)} is missing: run `make lock`")
    return ["--require-hashes", "--no-deps", "-r", str(lock)]


def dependency_layer_code(extras: tuple[str, ...] = ()) -> lambda_.Code:
    """Asset for the core layer, or for its variant with the given pyproject extras."""
    requirements = locked_requirements(extras)
    return lambda_.Code.from_asset(
        str(CORE_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=layer_hash(requirements),
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            local=LayerBundler(requirements),
            command=["false"],  # never used: local bundling always succeeds or raises
        ),
    )


def openapi_document() -> dict[str, bytes]:
    """The merged OpenAPI document, built from the API functions of this checkout."""
    import json

    from lotabots import openapi

    document = openapi.repository_document(REPO_ROOT)
    return {"openapi.json": json.dumps(document, separators=(",", ":"), sort_keys=True).encode()}


# Files made at synth time and shipped next to a function's handler.
GENERATED_FILES: Mapping[str, Callable[[], dict[str, bytes]]] = {"api_docs": openapi_document}


def function_code(code_dir: str, generated: Mapping[str, bytes] | None = None) -> lambda_.Code:
    """A function's directory as its asset; with `generated` files, a copy of it that adds them
    (under build/functions/, named by content, so concurrent synths never share a half-written one)."""
    path = REPO_ROOT / code_dir
    if not (path / "app.py").is_file():
        raise FileNotFoundError(f"{code_dir}/app.py is missing: every topology function needs its handler")
    if generated:
        digest = hashlib.sha256()
        for name, data in sorted(generated.items()):
            digest.update(name.encode() + b"\0" + data)
        staged = FUNCTIONS_BUILD_DIR / f"{path.name}-{digest.hexdigest()[:16]}"
        if not staged.is_dir():
            partial = Path(tempfile.mkdtemp(prefix=f"{path.name}-", dir=_ensure(FUNCTIONS_BUILD_DIR)))
            shutil.copytree(path, partial, ignore=_IGNORED, dirs_exist_ok=True)
            for name, data in generated.items():
                (partial / name).write_bytes(data)
            try:
                partial.rename(staged)
            except OSError:  # another synth staged the same content first
                shutil.rmtree(partial, ignore_errors=True)
        path = staged
    return lambda_.Code.from_asset(str(path), exclude=FUNCTION_EXCLUDES)


def _ensure(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory
