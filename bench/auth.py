"""Auth figures and cold starts: every API function's and the authorizer's cold start as ratios
to a bare boto3 client, warm CPU per request (GET /auth/me, the authorizer), ES256
verifications per second.

Everything runs on this machine in one run: moto in-process (mock_aws) with the
Parameters-extension emulator for the authorizer, SQLite in a temp directory, bcrypt cost 4
(bcrypt is excluded from the budgets). Run alone with `python -m bench auth`.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import environment

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
WARM = int(os.environ.get("BENCH_WARM_REQUESTS", "300"))

BASELINE = "import boto3; boto3.client('s3', region_name='us-east-1')"
LOAD = (
    "import importlib.util, json, sys; sys.path.insert(0, {root!r});"
    "spec = importlib.util.spec_from_file_location('fn', {path!r});"
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
    "C = type('C', (), dict(function_name='fn', memory_limit_in_mb=512, aws_request_id='r',"
    " invoked_function_arn='arn:aws:lambda:us-east-1:123456789012:function:fn'));"
    "m.lambda_handler(json.loads({event!r}), C())"
)


def _cold(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh interpreter; CPU is the steadier figure on a busy host."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# What the Lambda runtime always sets. Libraries branch on it: the X-Ray SDK, for one, skips
# creating its own sampling client (a botocore client) inside Lambda.
LAMBDA_RUNTIME_ENV = {
    "LAMBDA_TASK_ROOT": str(ROOT),
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    # Set on every function by the CDK app (infra/cdk/lotabots_infra/functions.py).
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
}


def _median_cold(code: str, env: dict[str, str]) -> tuple[float, float]:
    env = {**env, **LAMBDA_RUNTIME_ENV}
    _cold(code, env)  # warm the OS file cache
    runs = [_cold(code, env) for _ in range(RUNS)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _cold_start_routes() -> list[tuple[str, str]]:
    """(code dir, route) of every API function but auth: its first GET route without a path
    parameter (what a dashboard opens first), called as an admin."""
    from lotabots import access, topology

    found = []
    for spec in topology.api_functions():
        if spec.name == "auth":
            continue
        gets = sorted(t for (m, t) in access.ROUTE_ROLES if m == "GET" and "{" not in t)
        owned = [t for t in gets if topology.function_for_path(t) == spec]
        if owned:
            found.append((spec.code_dir, owned[0]))
    return found


def _cpu_per_call(fn: Any, n: int) -> float:
    for _ in range(20):
        fn()
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n


def run() -> str:
    """Measure with a private environment; the caller's environment and caches are restored."""
    saved = dict(os.environ)
    try:
        return _measure()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from lotabots import aws, config
        from lotabots.db import engine as db_engine

        config.reset()
        aws.reset()
        db_engine.reset_engine()


def _measure() -> str:
    tmp = Path(tempfile.mkdtemp(prefix="lotabots-bench-auth-"))
    env = {**os.environ, **environment.in_process(tmp / "bench.db", BCRYPT_ROUNDS="4")}
    env.pop("AWS_ENDPOINT_URL", None)
    environment.apply(env)

    from moto import mock_aws

    from devstack import parameters_extension
    from devstack.provision import provision
    from lotabots import aws, config
    from lotabots.auth import keys, service, tokens
    from lotabots.auth.schemas import LoginRequest, RegisterRequest
    from lotabots.db import engine as db_engine
    from lotabots.db import migrate
    from tests.support.api import FakeLambdaContext, api_event, load_function
    from tests.support.auth import authorizer_event

    config.reset()
    aws.reset()
    db_engine.reset_engine()
    with mock_aws():
        migrate.upgrade()
        provision()
        server, url = parameters_extension.start("127.0.0.1", 0)
        env["PARAMETERS_EXTENSION_URL"] = os.environ["PARAMETERS_EXTENSION_URL"] = url
        try:
            password = "correct horse battery staple"  # noqa: S105  (a throwaway bench account)
            user = service.register(RegisterRequest(email="bench@example.com", password=password))
            admin, _ = service.ensure_admin("bench-admin@example.com", password, actor="bench")
            pair = service.login(LoginRequest(email="bench@example.com", password=password), "127.0.0.1")
            me_event = api_event("GET", "/auth/me", principal=None)
            me_event["requestContext"]["authorizer"] = {
                "principalId": user.id,
                "user_id": user.id,
                "email": user.email,
                "role": user.role,
            }
            authz_event = authorizer_event(pair.access_token)

            baseline, baseline_cpu = _median_cold(BASELINE, env)
            auth_cold, auth_cpu = _median_cold(
                LOAD.format(
                    root=str(ROOT), path=str(ROOT / "functions/auth/app.py"), event=json.dumps(me_event)
                ),
                env,
            )
            others = []
            for spec, route in _cold_start_routes():
                event = api_event("GET", route, principal=None)
                event["requestContext"]["authorizer"] = {
                    "principalId": admin.id,
                    "user_id": admin.id,
                    "email": admin.email,
                    "role": admin.role,
                }
                code = LOAD.format(root=str(ROOT), path=str(ROOT / spec / "app.py"), event=json.dumps(event))
                others.append((spec.rsplit("/", 1)[-1], route, *_median_cold(code, env)))
            authz_cold, authz_cold_cpu = _median_cold(
                LOAD.format(
                    root=str(ROOT),
                    path=str(ROOT / "functions/authorizer/app.py"),
                    event=json.dumps(authz_event),
                ),
                env,
            )

            auth_fn, authz_fn = load_function("auth"), load_function("authorizer")
            context = FakeLambdaContext()
            me_cpu = _cpu_per_call(lambda: auth_fn.lambda_handler(me_event, context), WARM)
            authz_cpu = _cpu_per_call(lambda: authz_fn.lambda_handler(authz_event, context), WARM)

            public = keys.load().public_keys()
            settings = config.load(config.AuthSettings)
            n = 2000
            started = time.perf_counter()
            for _ in range(n):
                tokens.decode(
                    pair.access_token, public, issuer=settings.jwt_issuer, audience=settings.jwt_audience
                )
            verifications = n / (time.perf_counter() - started)
        finally:
            server.shutdown()
            server.server_close()

    def verdict(ok: bool) -> str:
        return "within budget" if ok else "OVER budget"

    def cold_row(name: str, wall: float, cpu: float, budget: float) -> tuple[str, str, str]:
        ratio = cpu / baseline_cpu
        return (
            name,
            f"wall {wall * 1000:.0f} ms ({wall / baseline:.2f}x), CPU {cpu * 1000:.0f} ms ({ratio:.2f}x)",
            f"<= {budget}x ({verdict(ratio <= budget)} by CPU)",
        )

    rows = [
        (
            "baseline: `import boto3; boto3.client('s3')`",
            f"wall {baseline * 1000:.0f} ms, CPU {baseline_cpu * 1000:.0f} ms",
            "-",
        ),
        cold_row("auth function cold start (import + GET /auth/me)", auth_cold, auth_cpu, 1.5),
        cold_row(
            "authorizer cold start (import + first call, JWKS and revocations over HTTP)",
            authz_cold,
            authz_cold_cpu,
            0.5,
        ),
        *(
            cold_row(f"{name} function cold start (import + GET {route})", wall, cpu, 1.5)
            for name, route, wall, cpu in others
        ),
        ("warm CPU per GET /auth/me", f"{me_cpu * 1000:.2f} ms", f"<= 3 ms ({verdict(me_cpu <= 0.003)})"),
        (
            "warm CPU per authorizer call",
            f"{authz_cpu * 1000:.2f} ms",
            f"<= 3 ms ({verdict(authz_cpu <= 0.003)})",
        ),
        ("ES256 token verifications per second (one core)", f"{verifications:,.0f}/s", "-"),
    ]
    return "\n".join(
        [
            "## Auth and cold starts",
            "",
            "Command: `python -m bench auth` (fresh interpreters for cold starts, median of "
            f"{RUNS}, ratios to the baseline measured in the same run; wall time and the child's CPU "
            f"time, which a busy machine disturbs less; warm CPU = process time over {WARM} "
            "requests; SQLite; bcrypt excluded). Cold-start interpreters get the variables the Lambda "
            "runtime sets (`LAMBDA_TASK_ROOT`, `AWS_LAMBDA_FUNCTION_NAME`, ...), tracing disabled.",
            "",
            "| figure | value | budget |",
            "|---|---|---|",
            *(f"| {name} | {value} | {budget} |" for name, value, budget in rows),
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
