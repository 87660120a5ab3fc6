"""Who may call what: the route → roles map, in one place, deny by default.

Keys are `(METHOD, path template)` exactly as the route is declared in the function's
resolver. `PUBLIC` routes need no token (API Gateway has no authorizer on them either).
A request that no entry matches is refused before any handler runs (`lotabots.http` in
Lambda, the local gateway in `devstack`); `tests/unit/test_route_map.py` walks every route
every API function serves and fails when one is missing here.

Paths are canonicalised once, by `canonical_path`, and the same canonical string is what the
map is matched against and what the function's resolver routes: the two can never disagree
about which route a request is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from urllib.parse import unquote


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    MEMBER = "member"
    AUDITOR = "auditor"
    # A machine principal: an integration token that may only post alerts.
    INTEGRATION = "integration"


USER_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.MEMBER, Role.AUDITOR})
PUBLIC: frozenset[Role] = frozenset()
ANY_USER = USER_ROLES
WRITERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.MEMBER})
OPERATORS = frozenset({Role.ADMIN, Role.OPERATOR})
OPERATORS_AND_AUDITORS = frozenset({Role.ADMIN, Role.OPERATOR, Role.AUDITOR})
ADMINS = frozenset({Role.ADMIN})
AUDITORS = frozenset({Role.ADMIN, Role.AUDITOR})

ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {
    # platform
    ("GET", "/health"): PUBLIC,
    # AIOps results (the schedules write them; members see nothing)
    ("GET", "/aiops/health"): OPERATORS_AND_AUDITORS,
    ("GET", "/aiops/log-clusters"): OPERATORS_AND_AUDITORS,
    ("GET", "/aiops/anomalies"): OPERATORS_AND_AUDITORS,
    ("GET", "/aiops/forecasts"): OPERATORS_AND_AUDITORS,
    ("GET", "/aiops/reports/latest"): OPERATORS_AND_AUDITORS,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/{asset}"): PUBLIC,
    # auth
    ("POST", "/auth/register"): PUBLIC,
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/refresh"): PUBLIC,
    ("POST", "/auth/logout"): PUBLIC,
    ("GET", "/auth/me"): ANY_USER,
    ("GET", "/.well-known/jwks.json"): PUBLIC,
    ("GET", "/users"): ADMINS,
    ("PATCH", "/users/{user_id}"): ADMINS,
    # documents (object-level checks live in the documents service)
    ("POST", "/documents"): WRITERS,
    ("GET", "/documents"): ANY_USER,
    ("GET", "/documents/{document_id}"): ANY_USER,
    ("PATCH", "/documents/{document_id}"): WRITERS,
    ("DELETE", "/documents/{document_id}"): WRITERS,
    ("POST", "/documents/{document_id}/versions"): WRITERS,
    ("GET", "/documents/{document_id}/similar"): ANY_USER,
    # GPU jobs
    ("POST", "/jobs"): OPERATORS,
    ("GET", "/jobs"): OPERATORS_AND_AUDITORS,
    ("GET", "/jobs/{job_id}"): OPERATORS_AND_AUDITORS,
    ("POST", "/jobs/{job_id}/cancel"): OPERATORS,
    # alerting
    ("POST", "/alerts"): OPERATORS | {Role.INTEGRATION},
    ("GET", "/alerts"): OPERATORS_AND_AUDITORS,
    ("GET", "/alerts/{alert_id}"): OPERATORS_AND_AUDITORS,
    ("GET", "/alerts/{alert_id}/deliveries"): OPERATORS_AND_AUDITORS,
    ("POST", "/alerts/{alert_id}/ack"): OPERATORS,
    ("POST", "/alerts/{alert_id}/resolve"): OPERATORS,
    ("POST", "/silences"): OPERATORS,
    ("GET", "/silences"): OPERATORS_AND_AUDITORS,
    ("DELETE", "/silences/{silence_id}"): OPERATORS,
    # audit log (read-only; operators and members never see it)
    ("GET", "/audit"): AUDITORS,
    ("GET", "/audit/verify"): AUDITORS,
    # attestation: members see nothing, operators act, auditors read
    ("POST", "/attestations/hardware"): OPERATORS,
    ("POST", "/attestations/models"): OPERATORS,
    ("POST", "/attestations/inference"): OPERATORS,
    ("GET", "/attestations"): OPERATORS_AND_AUDITORS,
    ("GET", "/attestations/{attestation_id}"): OPERATORS_AND_AUDITORS,
    ("GET", "/attestations/{attestation_id}/evidence"): OPERATORS_AND_AUDITORS,
    ("GET", "/attestations/{attestation_id}/token"): OPERATORS_AND_AUDITORS,
    ("GET", "/attestation-policies"): OPERATORS_AND_AUDITORS,
    ("GET", "/attestation-policies/{name}"): OPERATORS_AND_AUDITORS,
    ("PUT", "/attestation-policies/{name}"): OPERATORS,
    ("GET", "/gpu-pools"): OPERATORS_AND_AUDITORS,
    ("GET", "/gpu-pools/{name}"): OPERATORS_AND_AUDITORS,
    ("PUT", "/gpu-pools/{name}"): OPERATORS,
    ("POST", "/models"): OPERATORS,
    ("GET", "/models"): OPERATORS_AND_AUDITORS,
    ("GET", "/models/{model_id}"): OPERATORS_AND_AUDITORS,
}


@dataclass(frozen=True)
class Principal:
    """The caller, as established by the authorizer."""

    user_id: str
    email: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def has_any(self, roles: frozenset[Role]) -> bool:
        return self.role in roles


@dataclass(frozen=True)
class RouteRule:
    method: str
    template: str
    pattern: re.Pattern[str]
    roles: frozenset[Role]

    @property
    def is_public(self) -> bool:
        return not self.roles


class NonCanonicalPath(ValueError):
    """A path no route can mean: dot segments, a malformed escape, control characters."""


# RFC 3986 unreserved characters: an escape of one of these means the character itself.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%(?P<hex>[0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def _normalise_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group("hex"), 16))
    return char if char in _UNRESERVED else "%" + match.group("hex").upper()


def canonical_path(raw: str) -> str:
    """The one form of a request path that the route map, the resolver and the gateway use.

    RFC 3986 normalisation: escapes of unreserved characters are decoded (`/us%65rs` is
    `/users`), other escapes are upper-cased and kept (so `%2F` never becomes a separator),
    empty segments are dropped (`//users//` is `/users`, as the resolver's trailing-slash
    rule already treats it). Dot segments, malformed escapes, control characters and
    backslashes have no meaning for any route: NonCanonicalPath.
    """
    if "%" in raw and re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        raise NonCanonicalPath("malformed percent-escape in the path")
    path = _ESCAPE.sub(_normalise_escape, raw)
    segments = [segment for segment in path.split("/") if segment]
    for segment in segments:
        if segment in (".", "..") or unquote(segment) in (".", ".."):
            raise NonCanonicalPath("dot segments are not allowed in the path")
        if _CONTROL.search(unquote(segment)):
            raise NonCanonicalPath("control characters or backslashes in the path")
    return "/" + "/".join(segments)


# One parameter of a route template: `{name}`, or greedy `{name+}` as API Gateway writes it.
TEMPLATE_PARAMETER = re.compile(r"\{[^/{}]+\}")


def example_path(template: str, value: str = "x") -> str:
    """A concrete path the template matches, every parameter replaced by `value`."""
    return TEMPLATE_PARAMETER.sub(value, template)


def compile_template(template: str) -> re.Pattern[str]:
    """A route template (`/documents/{document_id}`) as a regex over canonical paths; each
    `{name}` (or greedy `{name+}`, as API Gateway writes it) is one named segment."""
    parts = re.split(f"({TEMPLATE_PARAMETER.pattern})", template)
    regex = "".join(
        f"(?P<{part[1:-1].rstrip('+')}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


def path_parameters(template: str, path: str) -> dict[str, str] | None:
    """The named segments of a canonical `path` under `template`, or None if it does not match."""
    match = compile_template(template).match(path)
    return match.groupdict() if match and match.groupdict() else None


@cache
def _rules() -> tuple[RouteRule, ...]:
    rules = [RouteRule(m, t, compile_template(t), roles) for (m, t), roles in ROUTE_ROLES.items()]
    # Static routes win over templated ones, as in the resolver.
    return tuple(sorted(rules, key=lambda r: "{" in r.template))


def rule_for(method: str, path: str) -> RouteRule | None:
    """The rule for a CANONICAL path (see `canonical_path`), or None: the request is refused."""
    method = method.upper()
    for rule in _rules():
        if rule.method == method and rule.pattern.match(path):
            return rule
    return None


def methods_for(path: str) -> list[str]:
    """Methods some rule allows on a canonical path (for 405 answers and CORS preflights)."""
    return sorted({rule.method for rule in _rules() if rule.pattern.match(path)})


def public_routes() -> list[tuple[str, str]]:
    return [key for key, roles in ROUTE_ROLES.items() if not roles]
