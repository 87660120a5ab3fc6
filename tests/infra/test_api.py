"""REST API: a method for every access.py route, authorizer on non-public ones, WAF, stage, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lotabots import access, topology
from lotabots.config import REVOCATION_BOUND_SECONDS
from tests.infra.conftest import Synth, env_of, functions_by_service, live_alias, mentions, ref_id

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _paths(synth: Synth) -> dict[str, str]:
    """API Gateway resource logical id → full path, rebuilt from ParentId/PathPart."""
    resources = synth.of_type("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            parent = props["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[logical_id] = f"{prefix}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def _methods(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(synth)
    methods = {}
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = ref_id(props["ResourceId"])
        path = paths.get(resource or "", "/")
        methods[(path, props["HttpMethod"])] = props
    return methods


def _served_by(
    methods: dict[tuple[str, str], dict[str, Any]], method: str, template: str
) -> dict[str, Any] | None:
    """The method API Gateway picks for `method template`: an exact resource wins over {proxy+}."""
    resource_paths = {path for path, _ in methods}
    if template in resource_paths:
        return methods.get((template, method)) or methods.get((template, "ANY"))
    prefix = template
    while prefix.count("/") > 1:
        prefix = prefix.rsplit("/", 1)[0]
        if (f"{prefix}/{{proxy+}}", "ANY") in methods:
            return methods[(f"{prefix}/{{proxy+}}", "ANY")]
    return None


def test_every_route_has_a_method_public_ones_without_authorizer_others_with_it(synth: Synth) -> None:
    """Each access.ROUTE_ROLES route reaches its topology function; public ⇔ no authorizer."""
    methods = _methods(synth)
    (authorizer_id,) = synth.of_type("AWS::ApiGateway::Authorizer")
    deployed = functions_by_service(synth)
    for (method, template), roles in access.ROUTE_ROLES.items():
        props = _served_by(methods, method, template)
        assert props is not None, f"{method} {template} has no API Gateway method"
        owner = topology.function_for_path(access.example_path(template))
        assert owner is not None
        assert mentions(props["Integration"]["Uri"], live_alias(synth, deployed[owner.name][0])), (
            method,
            template,
        )
        assert props["Integration"]["Type"] == "AWS_PROXY"
        if roles:
            assert props["AuthorizationType"] == "CUSTOM", (method, template)
            assert ref_id(props["AuthorizerId"]) == authorizer_id
        else:
            assert props["AuthorizationType"] == "NONE", (method, template)
            assert "AuthorizerId" not in props


def test_only_planned_methods_exist_and_every_resource_answers_cors_preflight_unauthenticated(
    synth: Synth,
) -> None:
    """No stray methods; OPTIONS everywhere without an authorizer (preflights carry no token)."""
    from lotabots_infra.api import plan_methods

    methods = _methods(synth)
    planned = {(p.path, p.method) for p in plan_methods()}
    assert {k for k in methods if k[1] != "OPTIONS"} == planned
    for path in {p for p, _ in planned}:
        assert methods[(path, "OPTIONS")]["AuthorizationType"] == "NONE"
    public_paths = {t for (m, t), roles in access.ROUTE_ROLES.items() if not roles}
    assert public_paths <= {p for p, _ in planned}


def test_request_authorizer_reads_the_authorization_header_and_caches_briefly(synth: Synth) -> None:
    (authorizer,) = synth.of_type("AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]
    assert props["Type"] == "REQUEST"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert 0 < props["AuthorizerResultTtlInSeconds"] <= 10
    assert mentions(props["AuthorizerUri"], live_alias(synth, functions_by_service(synth)["authorizer"][0]))


def test_a_revocation_reaches_the_authorizer_within_the_documented_bound(synth: Synth) -> None:
    """API Gateway's result cache + the authorizer's revocation list cache + the Parameters and
    Secrets extension's cache: a demoted or disabled user is refused at the edge within 30 s."""
    (authorizer,) = synth.of_type("AWS::ApiGateway::Authorizer").values()
    env = env_of(functions_by_service(synth)["authorizer"][1])
    total = (
        authorizer["Properties"]["AuthorizerResultTtlInSeconds"]
        + int(env["REVOCATIONS_CACHE_SECONDS"])
        + int(env["SSM_PARAMETER_STORE_TTL"])
    )
    assert total <= REVOCATION_BOUND_SECONDS


def test_stage_has_tracing_json_access_logs_metrics_and_stricter_auth_throttling(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "api"
    assert props["TracingEnabled"] is True
    fields = json.loads(props["AccessLogSetting"]["Format"])
    assert fields["requestId"] == "$context.requestId" and fields["status"] == "$context.status"
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in props["MethodSettings"]}
    default = settings[("/*", "*")]
    assert default["MetricsEnabled"] is True and default["LoggingLevel"] == "ERROR"
    assert default["DataTraceEnabled"] is False
    for path in ("/auth/login", "/auth/register", "/auth/refresh"):
        strict = settings[("/~1" + path[1:].replace("/", "~1"), "POST")]
        assert strict["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
        assert strict["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    assert synth.of_type("AWS::ApiGateway::Account"), "API Gateway needs its CloudWatch role"


@pytest.mark.parametrize(
    ("response_type", "status", "code"),
    [
        ("UNAUTHORIZED", "401", "unauthorized"),
        ("ACCESS_DENIED", "403", "forbidden"),
        ("THROTTLED", "429", "too_many_requests"),
        ("MISSING_AUTHENTICATION_TOKEN", "404", "route_not_found"),
        ("DEFAULT_4XX", None, "bad_request"),
        ("DEFAULT_5XX", None, "internal_error"),
    ],
)
def test_gateway_responses_use_the_common_error_shape(
    synth: Synth, response_type: str, status: str | None, code: str
) -> None:
    """Errors API Gateway answers itself look like the functions': message, code, details, request_id."""
    responses = {
        v["Properties"]["ResponseType"]: v["Properties"]
        for v in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }
    props = responses[response_type]
    assert props.get("StatusCode") == status
    template = props["ResponseTemplates"]["application/json"]
    # What API Gateway substitutes at runtime: messageString is already a quoted JSON string.
    rendered = template.replace("$context.error.messageString", '"Unauthorized"').replace(
        "$context.requestId", "req-1"
    )
    body = json.loads(rendered)
    assert set(body) == {"message", "code", "details", "request_id"}
    assert body["code"] == code and body["request_id"] == "req-1" and body["details"] is None
    headers = props["ResponseParameters"]
    assert headers["gatewayresponse.header.Strict-Transport-Security"].startswith("'max-age=")
    assert headers["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"


def test_waf_with_managed_rules_and_per_ip_rate_limits_is_associated_with_the_stage(synth: Synth) -> None:
    ((acl_id, acl),) = synth.of_type("AWS::WAFv2::WebACL").items()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in props["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    rate = [
        r["Statement"]["RateBasedStatement"] for r in props["Rules"] if "RateBasedStatement" in r["Statement"]
    ]
    assert {r["AggregateKeyType"] for r in rate} == {"IP"} and len(rate) == 2
    assert all("Block" in r["Action"] for r in props["Rules"] if "RateBasedStatement" in r["Statement"])
    (association,) = synth.of_type("AWS::WAFv2::WebACLAssociation").values()
    (stage_id,) = synth.of_type("AWS::ApiGateway::Stage")
    assert ref_id(association["Properties"]["WebACLArn"]) == acl_id
    assert mentions(association["Properties"]["ResourceArn"], stage_id)
    assert synth.of_type("AWS::WAFv2::LoggingConfiguration")


def test_api_docs_ships_the_merged_document_and_reaches_nothing_else(synth: Synth) -> None:
    """The OpenAPI document built at synth time travels in the api_docs function's own asset
    (what /openapi.json serves in every stage); the function is outside the VPC, no grants."""
    from lotabots import openapi
    from tests.infra.conftest import ROOT

    _, resource = functions_by_service(synth)["api_docs"]
    props = resource["Properties"]
    asset_dir = synth.outdir / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
    assert (asset_dir / "app.py").is_file()
    shipped = json.loads((asset_dir / "openapi.json").read_text())
    assert shipped == openapi.repository_document(ROOT)
    assert {(m, t) for (m, t) in access.ROUTE_ROLES} <= {
        (method.upper(), path) for path, item in shipped["paths"].items() for method in item
    }
    assert "VpcConfig" not in props
    role_id = ref_id(props["Role"])
    policies = [
        p
        for p in synth.of_type("AWS::IAM::Policy").values()
        if any(ref_id(r) == role_id for r in p["Properties"]["Roles"])
    ]
    actions = {
        action
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert not {a for a in actions if not a.startswith(("logs:", "xray:"))}, actions
