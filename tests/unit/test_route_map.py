"""Deny by default needs a complete map: every route every API function serves is in
`access.ROUTE_ROLES`, and every entry there is served by the function topology routes it to."""

from __future__ import annotations

import pytest

from lotabots import access, topology
from tests.support.api import load_function


def _served_routes() -> dict[tuple[str, str], str]:
    served: dict[tuple[str, str], str] = {}
    for spec in topology.api_functions():
        app = load_function(spec.name).app
        for route in app._static_routes + app._dynamic_routes:
            served[(route.method, route.openapi_path)] = spec.name
    return served


SERVED = _served_routes()


@pytest.mark.parametrize(("method", "template"), sorted(SERVED))
def test_every_served_route_is_in_the_route_map(method: str, template: str) -> None:
    assert (method, template) in access.ROUTE_ROLES, (
        f"{SERVED[(method, template)]} serves {method} {template}, which access.ROUTE_ROLES does not "
        "list: every request to it would be refused. Add it with the roles that may call it."
    )


@pytest.mark.parametrize(("method", "template"), sorted(access.ROUTE_ROLES))
def test_every_mapped_route_is_served_by_its_topology_function(method: str, template: str) -> None:
    owner = topology.function_for_path(template)
    assert owner is not None, f"no topology function has a prefix for {template}"
    assert SERVED.get((method, template)) == owner.name, (
        f"{method} {template} is in the route map but {owner.name} does not serve it"
    )


def test_an_example_path_of_every_template_is_matched_by_that_template() -> None:
    """One template parser: the path the CDK app and the access matrix derive from a template is
    one the map's own regex for that template accepts."""
    for _method, template in access.ROUTE_ROLES:
        assert access.path_parameters(template, access.example_path(template, "abc")) is not None or (
            "{" not in template and access.example_path(template) == template
        )
