"""The REQUEST authorizer's answer (principal, policy, context) and API Gateway's result cache,
keyed by the identity source (the Authorization header)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class AuthorizerError(Exception):
    """The authorizer's answer could not be used (API Gateway answers 500)."""


@dataclass(frozen=True)
class AuthorizerResult:
    principal_id: str
    policy: dict[str, Any]
    context: dict[str, str]

    @classmethod
    def parse(cls, response: Any) -> AuthorizerResult:
        """Check the answer as API Gateway does; context values become strings."""
        if not isinstance(response, dict):
            raise AuthorizerError("authorizer returned no object")
        principal = response.get("principalId")
        policy = response.get("policyDocument")
        if not principal or not isinstance(policy, dict):
            raise AuthorizerError("authorizer response lacks principalId or policyDocument")
        context: dict[str, str] = {}
        for key, value in (response.get("context") or {}).items():
            if isinstance(value, bool):
                context[key] = str(value).lower()
            elif isinstance(value, str | int | float):
                context[key] = str(value)
            elif value is not None:
                raise AuthorizerError(f"authorizer context value {key!r} is not a string, number or boolean")
        return cls(str(principal), policy, context)


@dataclass
class AuthorizerCache:
    """Results per identity source value, like API Gateway's authorizer result cache."""

    ttl_seconds: float
    clock: Callable[[], float] = time.monotonic
    max_entries: int = 10_000
    _entries: dict[str, tuple[float, AuthorizerResult]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> AuthorizerResult | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: str, result: AuthorizerResult) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            now = self.clock()
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (now + self.ttl_seconds, result)
