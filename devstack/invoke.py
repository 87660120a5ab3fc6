"""`python -m devstack.invoke SCHEDULE [...]`: run schedules of a running local stack now.

The schedules of `rate(1 hour)` or a daily cron are slow to wait for; this invokes a
schedule-triggered function at once, with the "Scheduled Event" its schedule would send, against
the running stack (its moto server, queues and database, found in `<state dir>/stack.json`), in
this process. Its output goes to the stack's CloudWatch Logs like any invocation's. Set the same
`LOTABOTS_STATE_DIR` and `DATABASE_URL` as for the stack (its mock Slack, if any, is found in stack.json).

    python -m devstack.invoke aiops-logs aiops-anomaly aiops-forecast aiops-report
    python -m devstack.invoke aiops_planner        # a function name: every schedule it has
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack import environment


def _attach(state_dir: Path) -> dict[str, Any]:
    info_path = state_dir / "stack.json"
    if not info_path.is_file():
        raise SystemExit(f"no running local stack: {info_path} does not exist (start it with `make dev`)")
    info: dict[str, Any] = json.loads(info_path.read_text())
    from lotabots import topology

    environment.point_at_moto(os.environ, info["moto_url"])
    for name, url in info.get("queues", {}).items():
        os.environ[topology.queue(name).env_var] = url
    if info.get("parameters_extension_url"):
        os.environ["PARAMETERS_EXTENSION_URL"] = info["parameters_extension_url"]
    if info.get("url"):
        os.environ.setdefault("AIOPS_API_URL", info["url"])
    if info.get("slack_api_url") and not os.environ.get("SLACK_BOT_TOKEN"):
        # The stack's mock Slack: reports sent from here land where the stack's alerts do.
        os.environ["SLACK_API_URL"] = info["slack_api_url"]
        os.environ["SLACK_BOT_TOKEN"] = "xoxb-local-mock"  # noqa: S105 (the mock accepts any token)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.invoke", description=__doc__.splitlines()[0])
    parser.add_argument(
        "schedules", nargs="+", help="schedule names (aiops-logs) or functions (aiops_planner)"
    )
    args = parser.parse_args(argv)
    environment.apply_defaults(os.environ)
    _attach(Path(os.environ["LOTABOTS_STATE_DIR"]))

    from devstack import runtime
    from devstack.scheduler import scheduled_event
    from devstack.stack import _own_client
    from devstack.telemetry import Telemetry
    from lotabots import aws, config, topology

    config.reset()
    aws.reset()
    runs: list[tuple[topology.Function, str]] = []  # (function, schedule name)
    for name in args.schedules:
        owners = [(fn, t.name) for fn in topology.FUNCTIONS for t in fn.schedules if t.name == name]
        if not owners:
            try:
                fn = topology.function(name)
            except KeyError:
                parser.error(f"{name} is neither a schedule nor a topology function")
            if not fn.schedules:
                parser.error(
                    f"{name} has no schedule (call API functions over HTTP, workers through their queue)"
                )
            owners = [(fn, t.name) for t in fn.schedules]
        runs += owners
    registry = runtime.load_all({fn.name: fn for fn, _ in runs}.values(), config.core().aws_region)
    for name, reason in registry.failures.items():
        print(f"{name} could not be loaded:\n{reason}", file=sys.stderr)
        return 1
    telemetry = Telemetry(_own_client("logs"), _own_client("cloudwatch"))
    telemetry.start()
    status = 0
    try:
        for spec, schedule in runs:
            event = scheduled_event(schedule, datetime.now(UTC), config.core().aws_region)
            try:
                result = registry.functions[spec.name].invoke(event)
            except Exception as exc:
                print(f"{schedule} ({spec.name}) failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                status = 1
                continue
            sys.stdout.flush()
            print(
                "\n"
                + json.dumps({"schedule": schedule, "function": spec.name, "result": result}, default=str)
            )
    finally:
        telemetry.flush()
        telemetry.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
