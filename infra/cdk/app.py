"""CDK entry point: `make synth` (python app.py) or the CDK CLI (`make deploy`).

Writes the cloud assembly to `cdk.out/` at the repository root (or wherever the CDK CLI's
`--output` / `CDK_OUTDIR` points) and runs cdk-nag's AwsSolutions checks on synth.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lotabots_infra.app import build_app  # noqa: E402


def main() -> None:
    outdir = os.environ.get("CDK_OUTDIR") or str(HERE.parents[1] / "cdk.out")
    app = build_app(outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main()
