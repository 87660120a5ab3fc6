"""`python -m devstack` (what `make dev` runs): start the local stack until Ctrl-C."""

import os
import sys

from devstack import environment

# Before anything reads the environment (Powertools reads some of it at import time).
environment.apply_defaults(os.environ)

from devstack.stack import main  # noqa: E402

sys.exit(main())
