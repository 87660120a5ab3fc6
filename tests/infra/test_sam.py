"""`sam local invoke` support: the SAM-ready template variant, samconfig.toml, events/env.json,
and SAM CLI itself (its own venv, `make tools`) validating, building and invoking every function.

Nothing here needs Docker. `sam local invoke` runs for every function against a stand-in Docker
API on a unix socket that answers the health checks and refuses everything else: SAM must get as
far as preparing that function's image (template, function, handler, layer, event and env vars
all resolved). Without any container runtime SAM stops at its runtime check, before it looks at
the function, so that is checked once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import subprocess
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from lotabots import topology
from lotabots.config import (
    AlertSettings,
    AttestationSettings,
    AuditSettings,
    AuthSettings,
    CoreSettings,
    DocumentSettings,
    JobSettings,
)
from tests.infra.conftest import SamSynth, Synth, env_of, tool
from tests.support.sample_events import classify, expected_kinds

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / "events" / "env.json"
SAMCONFIG = ROOT / "samconfig.toml"
NO_RUNTIME = "requires a container runtime"
STAND_IN_REFUSAL = "stand-in Docker API: no container runtime here"


def _samconfig_functions() -> dict[str, str]:
    """Logical id → sample event, from the table in samconfig.toml's comments."""
    pairs = re.findall(r"^#\s+(\w+Function)\s+(events/\S+\.json)\s*$", SAMCONFIG.read_text(), re.MULTILINE)
    return dict(pairs)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}


# --- the template variant, samconfig.toml and env.json ------------------------------------------


def test_samconfig_points_at_the_sam_template_and_the_env_file() -> None:
    from lotabots_infra.app import stack_name

    config = tomllib.loads(SAMCONFIG.read_text())
    assert config["version"] == 0.1
    makefile = (ROOT / "Makefile").read_text()
    template_file = config["default"]["global"]["parameters"]["template_file"]
    assert template_file == f"build/sam/{stack_name('dev')}.template.json"
    assert re.search(r"^SAM_TEMPLATE := \$\(SAM_DIR\)/" + re.escape(Path(template_file).name), makefile, re.M)
    assert "SAM_DIR := build/sam" in makefile
    for command in ("local_invoke", "local_start_api"):
        parameters = config["default"][command]["parameters"]
        assert parameters["env_vars"] == "events/env.json"
        assert "host.docker.internal:host-gateway" in parameters["add_host"]


def test_samconfig_names_every_function_with_a_sample_event_of_its_trigger(sam_synth: SamSynth) -> None:
    from lotabots_infra.functions import sam_logical_id

    listed = _samconfig_functions()
    assert set(listed) == {sam_logical_id(fn.name) for fn in topology.FUNCTIONS}
    assert set(listed) <= set(_functions(sam_synth.template))
    for fn in topology.FUNCTIONS:
        sample = classify(ROOT / listed[sam_logical_id(fn.name)])
        assert sample.function == fn.name and (sample.kind, sample.trigger) in expected_kinds(fn), sample


def test_sam_template_needs_nothing_from_aws(sam_synth: SamSynth) -> None:
    """No Serverless Application Repository app (the DB secret's rotation) and no layer by ARN."""
    text = json.dumps(sam_synth.template)
    assert "Transform" not in sam_synth.template
    assert "AWS::Serverless::Application" not in text
    for fn in _functions(sam_synth.template).values():
        for layer in fn["Properties"].get("Layers", []):
            assert not (isinstance(layer, str) and layer.startswith("arn:")), layer


def test_deployable_template_keeps_rotation_and_the_extension(synth: Synth) -> None:
    assert synth.template.get("Transform") == "AWS::Serverless-2016-10-31"
    assert synth.of_type("AWS::Serverless::Application")
    assert "AWS-Parameters-and-Secrets-Lambda-Extension" in json.dumps(synth.template)


def test_env_file_only_overrides_variables_the_sam_template_declares(sam_synth: SamSynth) -> None:
    """SAM ignores variables a function does not declare: every key must be declared somewhere."""
    declared: set[str] = set()
    for resource in _functions(sam_synth.template).values():
        declared |= set(env_of(resource))
    overrides = json.loads(ENV_FILE.read_text())["Parameters"]
    assert set(overrides) <= declared
    assert {"AWS_ENDPOINT_URL", "DATABASE_URL"} <= declared


def test_env_file_replaces_every_value_that_names_a_cloud_resource(sam_synth: SamSynth) -> None:
    """A value CloudFormation would resolve (a queue URL, a secret ARN) means nothing locally."""
    overrides = json.loads(ENV_FILE.read_text())["Parameters"]
    for logical_id, resource in _functions(sam_synth.template).items():
        for name, value in env_of(resource).items():
            if not isinstance(value, str):
                assert name in overrides, f"{logical_id}: {name} is resolved by CloudFormation"


def test_deployable_template_declares_no_local_override_variables(synth: Synth) -> None:
    for resource in synth.of_type("AWS::Lambda::Function").values():
        assert not {"AWS_ENDPOINT_URL", "DATABASE_URL"} & set(env_of(resource))


def test_env_file_names_the_resources_and_ports_of_the_local_stack() -> None:
    """The local stack provisions with the settings' defaults and topology's queue names, and
    `make dev-for-sam` serves moto and the extension on the ports env.json names."""
    overrides = json.loads(ENV_FILE.read_text())["Parameters"]
    for cls in (
        CoreSettings,
        AuthSettings,
        DocumentSettings,
        JobSettings,
        AlertSettings,
        AuditSettings,
        AttestationSettings,
    ):
        for field, info in cls.model_fields.items():
            if info.alias in overrides and field.endswith(
                ("_table", "bucket", "_secret_id", "_parameter_name")
            ):
                assert overrides[info.alias] == info.default, info.alias
    assert overrides["DB_SECRET_ARN"] == ""  # use DATABASE_URL, not the cloud secret
    recipe = (ROOT / "Makefile").read_text().split("\ndev-for-sam:", 1)[1].split("\n\n", 1)[0]
    moto_port = re.search(r"LOTABOTS_MOTO_PORT=(\d+)", recipe)
    extension_port = re.search(r"LOTABOTS_EXTENSION_PORT=(\d+)", recipe)
    assert moto_port and extension_port and "LOTABOTS_HOST=0.0.0.0" in recipe
    moto = f"http://host.docker.internal:{moto_port.group(1)}"
    assert overrides["AWS_ENDPOINT_URL"] == moto
    assert overrides["PARAMETERS_EXTENSION_URL"] == f"http://host.docker.internal:{extension_port.group(1)}"
    for queue in topology.QUEUES:
        if queue.env_var in overrides:
            assert overrides[queue.env_var] == f"{moto}/123456789012/{queue.name}", queue.env_var


# --- SAM CLI ---------------------------------------------------------------------------------------


class _StandInDocker(BaseHTTPRequestHandler):
    """Answers the Docker API's health checks; refuses everything else, recording the paths."""

    requests: list[str]

    def address_string(self) -> str:
        return "unix-socket"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: dict[str, Any] | str) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Api-Version", "1.43")
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        type(self).requests.append(f"{self.command} {path}")
        if path.endswith("/_ping"):
            self._answer(200, "OK")
        elif path.endswith("/version"):
            self._answer(200, {"ApiVersion": "1.43", "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64"})
        else:
            self._answer(500, {"message": STAND_IN_REFUSAL})

    do_GET = do_POST = do_HEAD = do_DELETE = _handle


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def stand_in_docker() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="dock-")  # unix socket paths must stay short
    _StandInDocker.requests = []
    server = _UnixServer(os.path.join(folder, "docker.sock"), _StandInDocker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"unix://{folder}/docker.sock"
    server.shutdown()
    server.server_close()
    shutil.rmtree(folder, ignore_errors=True)


def _sam_env(docker_host: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DOCKER_"))}
    # No credentials: with some, SAM would ask STS for the account id (unreachable here, slow).
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    env["DOCKER_HOST"] = docker_host or "unix:///nonexistent/docker.sock"
    return env


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str


def _sam(*args: str, docker_host: str | None = None, timeout: int = 120) -> Run:
    done = subprocess.run(
        [str(tool("sam", "sam")), *args],
        cwd=ROOT,
        env=_sam_env(docker_host),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def sam_build(sam_synth: SamSynth) -> Iterator[Path]:
    """`sam build` once: the built template every invoke test uses."""
    build_dir = Path(tempfile.mkdtemp(prefix="sam-build-"))
    run = _sam("build", "--template-file", str(sam_synth.template_path), "--build-dir", str(build_dir))
    assert run.returncode == 0 and "Build Succeeded" in run.output, run.output
    yield build_dir / "template.yaml"
    shutil.rmtree(build_dir, ignore_errors=True)


def test_sam_validate_accepts_the_template(sam_synth: SamSynth) -> None:
    run = _sam("validate", "--template-file", str(sam_synth.template_path))
    assert run.returncode == 0 and "is a valid SAM Template" in run.output, run.output


def test_sam_build_builds_every_function(sam_build: Path) -> None:
    from lotabots_infra.functions import sam_logical_id

    built = sam_build.parent
    for fn in topology.FUNCTIONS:
        assert (built / sam_logical_id(fn.name) / "app.py").is_file(), fn.name


def _invoke_all(template: Path, invocations: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`sam local invoke` of each (logical id, event) in one SAM process, in order; a
    ("DOCKER_HOST", url) item switches the runtime for the ones after it. (id, output) each."""
    driver = Path(__file__).with_name("sam_invoke_driver.py")
    args = [str(template), str(SAMCONFIG), *(f"{k}={v}" for k, v in invocations)]
    done = subprocess.run(
        [str(tool("sam", "python")), str(driver), *args],
        cwd=ROOT,
        env=_sam_env(None),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    sections = re.split(r"^=== (\w+)\n", done.stderr, flags=re.MULTILINE)
    return list(zip(sections[1::2], sections[2::2], strict=True))


def test_sam_local_invoke_of_every_function_fails_only_for_want_of_a_container(
    sam_synth: SamSynth, stand_in_docker: str
) -> None:
    """With samconfig.toml (env.json, add_host) and each function's sample event; an unknown
    function is told apart (so reaching the image step means something), and with no runtime at
    all SAM says that is what it lacks."""
    functions = _samconfig_functions()
    first_id, first_event = next(iter(functions.items()))
    outputs = _invoke_all(
        sam_synth.template_path,
        [
            ("DOCKER_HOST", stand_in_docker),
            *functions.items(),
            ("NoSuchFunction", "events/health_get.json"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            (first_id, first_event),
        ],
    )
    assert [logical_id for logical_id, _ in outputs] == [*functions, "NoSuchFunction", first_id]
    for logical_id, output in outputs[: len(functions)]:
        assert "Invoking app.lambda_handler (python3.12)" in output, (logical_id, output)
        assert STAND_IN_REFUSAL in output and "=== end DockerDistributionAPIError" in output, (
            logical_id,
            output,
        )
    unknown, without_runtime = outputs[-2][1], outputs[-1][1]
    assert "NoSuchFunction not found" in unknown and STAND_IN_REFUSAL not in unknown, unknown
    assert NO_RUNTIME in without_runtime, without_runtime
