"""The route → roles map: templates match concrete paths, static routes win."""

from lotabots import access
from lotabots.access import Role


def test_templated_route_matches_concrete_path() -> None:
    rule = access.rule_for("PATCH", "/users/0123abc")
    assert rule is not None
    assert rule.template == "/users/{user_id}"
    assert rule.roles == {Role.ADMIN}


def test_nested_template_does_not_match_parent() -> None:
    rule = access.rule_for("GET", "/documents/abc/similar")
    assert rule is not None and rule.template == "/documents/{document_id}/similar"
    rule = access.rule_for("GET", "/documents/abc")
    assert rule is not None and rule.template == "/documents/{document_id}"


def test_method_matters_and_unknown_routes_have_no_rule() -> None:
    assert access.rule_for("DELETE", "/users/abc") is None
    assert access.rule_for("GET", "/nope") is None


def test_public_routes_need_no_role() -> None:
    assert ("POST", "/auth/login") in access.public_routes()
    assert ("GET", "/.well-known/jwks.json") in access.public_routes()
    assert ("GET", "/users") not in access.public_routes()


def test_integration_role_may_only_post_alerts() -> None:
    allowed = [key for key, roles in access.ROUTE_ROLES.items() if Role.INTEGRATION in roles]
    assert allowed == [("POST", "/alerts")]
