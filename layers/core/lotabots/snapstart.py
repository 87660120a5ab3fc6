"""Lambda SnapStart runtime hooks: what must not be frozen into a snapshot.

With SnapStart, Lambda runs a function's initialisation once per published version, takes a
snapshot of the memory and resumes every new execution environment from it, possibly days
later and many times over. Whatever the snapshot holds is then shared by all of them:

- open connections (the database pool, keep-alive sockets of AWS clients) are dead or, worse,
  one connection seen by many environments;
- credentials cached by AWS clients and secrets cached by Powertools Parameters belong to the
  environment that initialised, and expire;
- the state of `random`, seeded once at import, would give every environment the same numbers.
  (`secrets`, `uuid.uuid4` and the crypto libraries read `os.urandom` and need nothing.)

So before the snapshot the database pool is emptied and the cached AWS clients and parameter
providers are dropped (they are re-created on first use), and after each restore `random` is
re-seeded from the OS and the pool dropped again without touching its sockets.

Every function imports this module (a test checks it): importing registers the hooks. The
hooks come from `snapshot_restore_py`, which only Lambda's managed Python runtime provides;
where it is absent (the local stack, tests without it) importing this module registers nothing.
It imports nothing heavy: modules a function never loaded (SQLAlchemy on the authorizer's
path) are left alone.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

Hook = Callable[[], None]


def _engine_module() -> Any:
    return sys.modules.get("lotabots.db.engine")


def release_connections() -> None:
    """Close the pooled database connections and drop cached AWS clients and parameter providers."""
    engine_module = _engine_module()
    if engine_module is not None and engine_module._engine is not None:
        engine_module._engine.dispose()
    aws = sys.modules.get("lotabots.aws")
    if aws is not None:
        aws.reset()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()


def reinitialise_after_restore() -> None:
    """Fresh randomness for this environment, and no connection inherited from the snapshot."""
    random.seed()
    engine_module = _engine_module()
    if engine_module is not None and engine_module._engine is not None:
        # close=False: the sockets in the snapshot may be shared with other restored copies;
        # forget them (as after a fork) instead of sending a goodbye on them.
        engine_module._engine.dispose(close=False)


def _register() -> bool:
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(release_connections)
    register_after_restore(reinitialise_after_restore)
    return True


REGISTERED = _register()
