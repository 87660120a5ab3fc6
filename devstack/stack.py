"""`python -m devstack`: the whole platform on a laptop, no Docker, no AWS account.

Order matters: moto first (and the environment pointing every SDK client at it), then the
resources, the database, the first admin, the Parameters and Secrets extension, the
functions (worker processes, started on first use, inherit the environment as it is by then),
and finally the triggers (gateway, pollers, schedules, DLQ alarms). Stopping reverses it:
triggers, then the function workers, then moto.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack import environment

if TYPE_CHECKING:
    from lotabots.config import LocalSettings

log = logging.getLogger("devstack")


@dataclass
class LocalStack:
    """Starts and stops every local component; `start()` then `stop()` (idempotent)."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    moto_url: str = ""
    admin_email: str | None = None
    admin_password: str | None = None
    _moto: Any = None
    _servers: list[tuple[str, Any]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopped: bool = False
    _info_path: Path | None = None
    _registry: Any = None
    _telemetry: Any = None
    _slack: Any = None
    slack_url: str | None = None

    def start(self) -> None:
        from lotabots import aws, config
        from lotabots.config import AuthSettings, CoreSettings, LocalSettings

        local = config.load(LocalSettings)
        Path(local.state_dir).mkdir(parents=True, exist_ok=True)

        self._start_moto(local)
        self._provision()
        self._migrate_and_bootstrap()
        self._start_parameters_extension(local)
        self._start_slack_mock(local)
        config.reset()
        aws.reset()

        core = config.load(CoreSettings)
        auth = config.load(AuthSettings)
        self.admin_email, self.admin_password = auth.bootstrap_admin_email, auth.bootstrap_admin_password
        if local.port:
            # The AIOps health probe's target: this stack's own gateway (in AWS: the inventory).
            os.environ.setdefault("AIOPS_API_URL", f"http://{local.connect_host}:{local.port}")
        registry = self._load_functions(core.aws_region, local.function_workers)
        self._start_telemetry()
        self._start_pollers(registry, core.aws_region, local.retry_visibility_seconds)
        self._start_schedules(registry, core.aws_region, local.schedule_speedup)
        self._start_dlq_alarms(
            core.stage,
            core.aws_region,
            core.event_bus_name,
            local.dlq_alarm_seconds,
            local.delivery_lag_alarm_seconds,
        )
        # Last, so that an answer on /health means everything else is running.
        self._start_gateway(registry, local, auth.authorizer_cache_seconds, core.stage, core.aws_region)
        self._write_info(Path(local.state_dir))

    # Components ------------------------------------------------------------------

    def _start_moto(self, local: LocalSettings) -> None:
        from moto.server import ThreadedMotoServer

        from lotabots import aws, config

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self._moto = ThreadedMotoServer(ip_address=local.host, port=local.moto_port, verbose=False)
        self._moto.start()
        _host, bound = self._moto.get_host_and_port()
        self.moto_url = f"http://{local.connect_host}:{bound}"
        environment.point_at_moto(os.environ, self.moto_url)
        config.reset()
        aws.reset()
        log.info("moto server on %s", self.moto_url)

    def _start_slack_mock(self, local: LocalSettings) -> None:
        """A mock Slack for the functions unless a real token is configured (or it is switched off)."""
        if not local.slack_mock or os.environ.get("SLACK_BOT_TOKEN") or os.environ.get("SLACK_SECRET_ID"):
            return
        from devstack.slack_mock import MockSlack

        self._slack = MockSlack(host=local.host).start()
        os.environ["SLACK_API_URL"] = self._slack.base_url
        os.environ["SLACK_BOT_TOKEN"] = "xoxb-local-mock"  # noqa: S105 (the mock accepts any token)
        self.slack_url = self._slack.base_url.removesuffix("/api/")
        log.info("mock Slack on %s (messages: %s/messages)", self.slack_url, self.slack_url)

    def _provision(self) -> None:
        from devstack.provision import provision
        from lotabots import aws, config

        queue_env = provision()
        os.environ.update(queue_env)
        config.reset()
        aws.reset()
        log.info("provisioned tables, buckets, %d queues (+DLQs), rules and secrets", len(queue_env))

    def _migrate_and_bootstrap(self) -> None:
        from sqlalchemy import make_url

        from lotabots.auth.service import bootstrap_admin
        from lotabots.db import migrate
        from lotabots.db.engine import database_url

        url = database_url()
        migrate.upgrade(url)
        log.info("database %s migrated", make_url(url).render_as_string(hide_password=True))
        bootstrap_admin()

    def _start_parameters_extension(self, local: LocalSettings) -> None:
        from devstack import parameters_extension

        server, url = parameters_extension.start(local.host, local.extension_port, local.connect_host)
        self._servers.append(("parameters extension", server))
        os.environ["PARAMETERS_EXTENSION_URL"] = url
        log.info("Parameters and Secrets extension on %s", url)

    def _load_functions(self, region: str, workers_per_function: int) -> Any:
        from devstack import runtime, workers
        from lotabots import topology

        for spec in topology.FUNCTIONS:
            for name, value in spec.extra_env.items():
                if os.environ.setdefault(name, value) != value:
                    log.warning(
                        "%s wants %s=%s but the process has %s", spec.name, name, value, os.environ[name]
                    )
        specs = [spec for spec in topology.FUNCTIONS if spec.kind != "migration"]
        if workers_per_function > 0:
            registry = workers.start_all(specs, region, max_workers=workers_per_function)
            log.info(
                "functions run in worker processes (up to %d each, started on first use)",
                workers_per_function,
            )
        else:
            registry = runtime.load_all(specs, region)
            log.info("functions run in this process, one invocation at a time")
        for name, reason in registry.failures.items():
            log.error("function %s is not available: %s", name, reason)
        self._registry = registry
        return registry

    def _start_telemetry(self) -> None:
        """Function output → CloudWatch Logs, Lambda and EMF metrics → CloudWatch (devstack/telemetry.py)."""
        from devstack.telemetry import Telemetry

        self._telemetry = Telemetry(_own_client("logs"), _own_client("cloudwatch"))
        self._telemetry.start()

    def _start_gateway(
        self, registry: Any, local: LocalSettings, cache_seconds: float, stage: str, region: str
    ) -> None:
        from devstack.gateway import Gateway, GatewayServer

        gateway = Gateway(
            registry,
            authorizer=registry.get("authorizer"),
            stage=stage,
            region=region,
            cache_seconds=cache_seconds,
        )
        try:
            server = GatewayServer((local.host, local.port), gateway)
        except OSError as exc:
            raise RuntimeError(
                f"cannot listen on {local.host}:{local.port} ({exc}); set LOTABOTS_PORT"
            ) from exc
        self._servers.insert(0, ("gateway", server))
        self.url = f"http://{local.connect_host}:{server.server_port}"
        self._spawn(threading.Thread(target=server.serve_forever, name="gateway", daemon=True))

    def _start_pollers(self, registry: Any, region: str, retry_s: int) -> None:
        from devstack.pollers import QueuePoller
        from lotabots import topology

        for spec in topology.FUNCTIONS:
            function = registry.get(spec.name)
            for trigger in spec.queues:
                if function is None:
                    log.error("queue %s has no consumer: %s is not loaded", trigger.queue, spec.name)
                    continue
                queue_url = os.environ[topology.queue(trigger.queue).env_var]
                poller = QueuePoller(
                    function,
                    trigger,
                    sqs=_own_client("sqs", read_timeout=30),
                    queue_url=queue_url,
                    region=region,
                    stop=self.stop_event,
                    retry_visibility_s=retry_s,
                )
                self._spawn(poller)

    def _start_schedules(self, registry: Any, region: str, speedup: float) -> None:
        from devstack.scheduler import ScheduleRunner, parse
        from lotabots import topology

        # Schedules left off (comma-separated names): e.g. the e2e suite's shared stack runs without
        # the AIOps schedules, whose findings would become alerts in other tests.
        disabled = {
            n.strip() for n in os.environ.get("LOTABOTS_DISABLED_SCHEDULES", "").split(",") if n.strip()
        }
        for spec in topology.FUNCTIONS:
            function = registry.get(spec.name)
            for trigger in spec.schedules:
                if trigger.name in disabled:
                    log.info("schedule %s disabled (LOTABOTS_DISABLED_SCHEDULES)", trigger.name)
                    continue
                if function is None:
                    log.error("schedule %s has no target: %s is not loaded", trigger.name, spec.name)
                    continue
                runner = ScheduleRunner(
                    function,
                    trigger.name,
                    parse(trigger.expression),
                    stop=self.stop_event,
                    region=region,
                    speedup=speedup,
                )
                self._spawn(runner)

    def _start_dlq_alarms(
        self, stage: str, region: str, bus: str, interval_s: float, delivery_lag_alarm_s: float
    ) -> None:
        from devstack.alarms import DeliveryLagAlarm, DlqAlarmWatcher
        from lotabots import topology

        sqs = _own_client("sqs")
        events = _own_client("events")
        dlqs = {q.name: sqs.get_queue_url(QueueName=f"{q.name}-dlq")["QueueUrl"] for q in topology.QUEUES}
        watcher = DlqAlarmWatcher(
            sqs=sqs,
            events=events,
            dlq_urls=dlqs,
            stage=stage,
            region=region,
            bus=bus,
            stop=self.stop_event,
            interval_s=interval_s,
            delivery_lag=DeliveryLagAlarm(
                events=events, stage=stage, region=region, bus=bus, threshold_s=delivery_lag_alarm_s
            ),
        )
        self._spawn(watcher)

    def _write_info(self, state_dir: Path) -> None:
        """`<state>/stack.json`: where the running stack's parts are (tools and e2e tests read it)."""
        from lotabots import topology

        self._info_path = state_dir / "stack.json"
        info = {
            "pid": os.getpid(),
            "url": self.url,
            "moto_url": self.moto_url,
            "parameters_extension_url": os.environ["PARAMETERS_EXTENSION_URL"],
            "queues": {q.name: os.environ[q.env_var] for q in topology.QUEUES},
            "slack_api_url": os.environ.get("SLACK_API_URL") if self._slack is not None else None,
        }
        self._info_path.write_text(json.dumps(info, indent=2))

    def _spawn(self, thread: threading.Thread) -> None:
        self._threads.append(thread)
        thread.start()

    # Shutdown ---------------------------------------------------------------------

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        for name, server in self._servers:
            try:
                server.shutdown()
                server.server_close()
            except Exception as exc:
                log.warning("stopping the %s: %s", name, exc)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s is still busy; leaving it behind", thread.name)
        if self._telemetry is not None:
            self._telemetry.stop()
        if self._registry is not None:
            started = time.monotonic()
            self._registry.close()
            log.info("function workers stopped (%.1f s)", time.monotonic() - started)
        if self._slack is not None:
            self._slack.stop()
        if self._moto is not None:
            self._moto.stop()
        if self._info_path is not None:
            self._info_path.unlink(missing_ok=True)

    def banner(self) -> str:
        login = (
            f"curl -s -X POST {self.url}/auth/login -H 'Content-Type: application/json' "
            f'-d \'{{"email":"{self.admin_email}","password":"{self.admin_password}"}}\''
        )
        return "\n".join(
            [
                "",
                "LotaBots local stack is up (local development only)",
                f"  API       {self.url}",
                f"  Docs      {self.url}/docs   (OpenAPI: {self.url}/openapi.json)",
                f"  moto      {self.moto_url}",
                *([f"  Slack     {self.slack_url}/messages   (mock)"] if self.slack_url else []),
                f"  admin     {self.admin_email} / {self.admin_password}",
                f"  log in    {login}",
                "  Ctrl-C stops everything.",
                "",
            ]
        )


def _own_client(service: str, read_timeout: int = 10) -> Any:
    """A client of its own for a long-lived thread (boto3 sessions are not thread-safe)."""
    import boto3
    from botocore.config import Config

    from lotabots import config

    settings = config.core()
    session: Any = boto3.session.Session()
    return session.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(read_timeout=read_timeout, retries={"mode": "standard", "max_attempts": 3}),
    )


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s  %(message)s", "%H:%M:%S"))
    root = logging.getLogger("devstack")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def main() -> int:
    _configure_logging()
    # Handlers that emit no metric of their own would print this on every invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stack = LocalStack()

    def _request_stop(signum: int, _frame: Any) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        stack.stop_event.set()

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    try:
        stack.start()
    except Exception:
        log.exception("the local stack could not start")
        stack.stop()
        return 1
    print(stack.banner(), file=sys.stderr, flush=True)
    while not stack.stop_event.wait(0.5):
        pass
    stack.stop()
    log.info("stopped")
    return 0
