"""Who may call what: the route → roles map, in one place.

Keys are `(METHOD, path template)` exactly as the route is declared in the function's
resolver. `PUBLIC` routes need no token (API Gateway has no authorizer on them either).
Every route any function serves must be listed here; a test enforces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache


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

ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {
    # platform
    ("GET", "/health"): PUBLIC,
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


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\{[^/{}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
    return re.compile(f"^{regex}/?$")


@cache
def _rules() -> tuple[RouteRule, ...]:
    rules = [RouteRule(m, t, _compile(t), roles) for (m, t), roles in ROUTE_ROLES.items()]
    # Static routes win over templated ones, as in the resolver.
    return tuple(sorted(rules, key=lambda r: "{" in r.template))


def rule_for(method: str, path: str) -> RouteRule | None:
    method = method.upper()
    for rule in _rules():
        if rule.method == method and rule.pattern.match(path):
            return rule
    return None


def public_routes() -> list[tuple[str, str]]:
    return [key for key, roles in ROUTE_ROLES.items() if not roles]
