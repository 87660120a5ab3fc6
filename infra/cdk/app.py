"""CDK entry point: `make synth` (python app.py) or the CDK CLI (`make deploy`).

Writes the cloud assembly to `cdk.out/` at the repository root (or wherever the CDK CLI's
`--output` / `CDK_OUTDIR` points) and runs cdk-nag's AwsSolutions checks on synth.

`python app.py --sam-local` (`make sam-template`) writes the SAM-ready variant instead: never
deployed, so no cdk-nag; see `lotabots_infra.app.SAM_LOCAL_CONTEXT`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lotabots_infra.app import SAM_LOCAL_CONTEXT, build_app  # noqa: E402


def main(argv: list[str]) -> None:
    outdir = os.environ.get("CDK_OUTDIR") or str(HERE.parents[1] / "cdk.out")
    if "--sam-local" in argv:
        app = build_app(outdir=outdir, context=SAM_LOCAL_CONTEXT, nag=False)
    else:
        app = build_app(outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1:])
