"""Runs `sam local invoke` for several functions in one SAM CLI process (run by the SAM CLI
venv's python, not by pytest): the CLI is imported and the template parsed once per process
instead of once per function. Usage:

    python sam_invoke_driver.py <template> <config file> <logical id>=<event file> ...

An argument `DOCKER_HOST=<url>` switches the container runtime SAM talks to for the invocations
after it. Before each invocation the driver prints `=== <logical id>` to stderr, after it
`=== end <exception>`; everything SAM prints in between belongs to that invocation.
"""

from __future__ import annotations

import os
import sys

from samcli.cli.main import cli


def main(argv: list[str]) -> None:
    template, config_file, *pairs = argv
    for pair in pairs:
        logical_id, event = pair.split("=", 1)
        if logical_id == "DOCKER_HOST":
            os.environ["DOCKER_HOST"] = event
            continue
        print(f"=== {logical_id}", file=sys.stderr, flush=True)
        outcome = "returned"
        try:
            cli.main(
                [
                    "local",
                    "invoke",
                    logical_id,
                    "--template-file",
                    template,
                    "--event",
                    event,
                    "--config-file",
                    config_file,
                ],
                standalone_mode=False,
            )
        except BaseException as exc:  # SAM raises click/SystemExit/Docker errors: report, go on
            outcome = f"{type(exc).__name__}: {exc}"
        sys.stdout.flush()
        print(f"=== end {outcome}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
