"""The public REST API: API Gateway (regional), the REQUEST authorizer, per-route throttling,
JSON access logs, X-Ray, gateway responses in the platform's error shape, and a WAF.

The resource tree comes from `lotabots.topology` (which function serves which prefix) and
`lotabots.access.ROUTE_ROLES` (which routes exist and which are public):

- each public route gets its own resource and method, without an authorizer;
- every other route is served through its function's prefix: `ANY /<prefix>` when the route
  is the prefix itself, `ANY /<prefix>/{proxy+}` for the rest, both behind the authorizer;
- every resource also answers `OPTIONS` without an authorizer: CORS preflight requests carry
  no credentials, and the functions answer them (their resolvers add the CORS headers).

Paths that match no resource get API Gateway's "missing authentication token", which the
gateway responses turn into a 404 in the common error shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from lotabots import access, topology
from lotabots.http import SECURITY_HEADERS
from lotabots_infra.settings import StageSettings

# Short: a revocation must reach the edge within REVOCATION_BOUND_SECONDS (this + the
# authorizer's revocations cache + the Parameters extension's TTL).
AUTHORIZER_CACHE = Duration.seconds(10)
REVOCATIONS_CACHE = Duration.seconds(10)
# Brute-force targets: API Gateway throttles them far below the rest (per stage, all callers).
STRICT_ROUTES = (("POST", "/auth/login"), ("POST", "/auth/register"), ("POST", "/auth/refresh"))


@dataclass(frozen=True)
class MethodPlan:
    """One API Gateway method: where it is, which function serves it, whether it is public."""

    path: str
    method: str
    function: str
    public: bool


def _owner(template: str) -> tuple[topology.Function, str]:
    """The function serving a route template and the prefix it serves it under."""
    concrete = access.example_path(template)
    fn = topology.function_for_path(concrete)
    if fn is None:
        raise ValueError(f"route {template} in access.ROUTE_ROLES is served by no topology function")
    prefix = max((p for p in fn.routes if concrete == p or concrete.startswith(p.rstrip("/") + "/")), key=len)
    return fn, prefix


def plan_methods() -> list[MethodPlan]:
    """Every method the API has, derived from topology + the route map (no OPTIONS)."""
    plans: dict[tuple[str, str], MethodPlan] = {}
    for (method, template), roles in access.ROUTE_ROLES.items():
        fn, prefix = _owner(template)
        if not roles:
            plans[(template, method)] = MethodPlan(template, method, fn.name, public=True)
        elif template == prefix:
            plans[(prefix, "ANY")] = MethodPlan(prefix, "ANY", fn.name, public=False)
        else:
            path = prefix.rstrip("/") + "/{proxy+}"
            plans[(path, "ANY")] = MethodPlan(path, "ANY", fn.name, public=False)
    return sorted(plans.values(), key=lambda p: (p.path, p.method))


def _access_log_format() -> apigw.AccessLogFormat:
    f = apigw.AccessLogField
    fields = {
        "requestId": f.context_request_id(),
        "ip": f.context_identity_source_ip(),
        "userAgent": f.context_identity_user_agent(),
        "requestTime": f.context_request_time(),
        "httpMethod": f.context_http_method(),
        "resourcePath": f.context_resource_path(),
        "path": f.context_path(),
        "status": f.context_status(),
        "protocol": f.context_protocol(),
        "responseLength": f.context_response_length(),
        "responseLatency": f.context_response_latency(),
        "integrationLatency": f.context_integration_latency(),
        "integrationStatus": f.context_integration_status(),
        "principalId": f.context_authorizer_principal_id(),
        "authorizerError": f.context_authorizer_error(),
        "errorMessage": f.context_error_message(),
        "errorType": f.context_error_response_type(),
        "wafStatus": f.context_waf_status(),
        "xrayTraceId": f.context_xray_trace_id(),
    }
    return apigw.AccessLogFormat.custom(json.dumps(fields))


def _static_headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Gateway-response headers (static values are single-quoted; ones containing quotes are skipped)."""
    headers = {"Access-Control-Allow-Origin": "*", **SECURITY_HEADERS, **(extra or {})}
    return {name: f"'{value}'" for name, value in headers.items() if "'" not in value}


def error_template(code: str, message: str | None = None) -> str:
    """The common error shape `{"message","code","details","request_id"}` for a gateway response."""
    message_part = json.dumps(message) if message else "$context.error.messageString"
    return f'{{"message":{message_part},"code":"{code}","details":null,"request_id":"$context.requestId"}}'


GATEWAY_RESPONSES: tuple[tuple[str, apigw.ResponseType, str, str, str | None], ...] = (
    ("Unauthorized", apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized", "authentication required"),
    ("AccessDenied", apigw.ResponseType.ACCESS_DENIED, "403", "forbidden", None),
    ("WafFiltered", apigw.ResponseType.WAF_FILTERED, "403", "forbidden", "request blocked by the firewall"),
    (
        "MissingRoute",
        apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "404",
        "route_not_found",
        "no such route",
    ),
    ("Throttled", apigw.ResponseType.THROTTLED, "429", "too_many_requests", "too many requests, slow down"),
    ("TooLarge", apigw.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large", None),
    ("Default4xx", apigw.ResponseType.DEFAULT_4_XX, "", "bad_request", None),
    ("Default5xx", apigw.ResponseType.DEFAULT_5_XX, "", "internal_error", "internal error"),
)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        functions: Mapping[str, lambda_.IFunction],
        authorizer_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.RETAIN if settings.production else RemovalPolicy.DESTROY,
        )
        strict = apigw.MethodDeploymentOptions(
            throttling_rate_limit=settings.auth_rate_limit, throttling_burst_limit=settings.auth_burst_limit
        )
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=settings.name("api"),
            description="LotaBots Serverless API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            # The CloudWatch role is an account-wide API Gateway setting other APIs may rely on.
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=settings.api_stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
                throttling_rate_limit=settings.api_rate_limit,
                throttling_burst_limit=settings.api_burst_limit,
                method_options={f"{path}/{method}": strict for method, path in STRICT_ROUTES},
            ),
        )
        # Bodies are validated by the functions (their pydantic models are the contract); body
        # validation here applies to methods with a request model, which proxy methods have not.
        self.validator = self.api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            handler=authorizer_function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=AUTHORIZER_CACHE,
        )
        for response_id, response_type, status, code, message in GATEWAY_RESPONSES:
            extra = {"WWW-Authenticate": 'Bearer realm="lotabots"'} if status == "401" else None
            self.api.add_gateway_response(
                response_id,
                type=response_type,
                status_code=status or None,
                response_headers=_static_headers(extra),
                templates={"application/json": error_template(code, message)},
            )

        integrations = {
            name: apigw.LambdaIntegration(fn, proxy=True, scope_permission_to_method=False)
            for name, fn in functions.items()
        }
        self.plans = plan_methods()
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        resources_with_methods: dict[str, tuple[apigw.Resource, str]] = {}
        for plan in self.plans:
            resource = self.api.root.resource_for_path(plan.path)
            self.methods[(plan.path, plan.method)] = resource.add_method(
                plan.method,
                integrations[plan.function],
                authorization_type=(
                    apigw.AuthorizationType.NONE if plan.public else apigw.AuthorizationType.CUSTOM
                ),
                authorizer=None if plan.public else self.authorizer,
                request_validator=self.validator,
                request_parameters={"method.request.path.proxy": True} if "{proxy+}" in plan.path else None,
            )
            resources_with_methods[plan.path] = (resource, plan.function)
        for path, (resource, function_name) in sorted(resources_with_methods.items()):
            self.methods[(path, "OPTIONS")] = resource.add_method(
                "OPTIONS",
                integrations[function_name],
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=self.validator,
                request_parameters={"method.request.path.proxy": True} if "{proxy+}" in path else None,
            )

        self.web_acl = _web_acl(self, settings)
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            # WAF requires this prefix for log group destinations.
            log_group_name=f"aws-waf-logs-{settings.name('api')}",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.RETAIN if settings.production else RemovalPolicy.DESTROY,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[
                Stack.of(self).format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=waf_logs.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )


def _managed_rule(name: str, priority: int, excluded: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in excluded
                ]
                or None,
            )
        ),
        visibility_config=_visibility(name),
    )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _rate_rule(
    name: str, priority: int, limit: int, path_prefix: str | None = None
) -> wafv2.CfnWebACL.RuleProperty:
    scope_down = None
    if path_prefix:
        scope_down = wafv2.CfnWebACL.StatementProperty(
            byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                positional_constraint="CONTAINS",
                search_string=path_prefix,
                text_transformations=[
                    wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="LOWERCASE")
                ],
            )
        )
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                aggregate_key_type="IP",
                limit=limit,
                evaluation_window_sec=300,
                scope_down_statement=scope_down,
            )
        ),
        visibility_config=_visibility(name),
    )


def _web_acl(scope: Construct, settings: StageSettings) -> wafv2.CfnWebACL:
    return wafv2.CfnWebACL(
        scope,
        "WebAcl",
        name=settings.name("api"),
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(settings.name("api")),
        rules=[
            # Bodies up to LOTABOTS_MAX_BODY_BYTES (1 MiB) are valid here and checked by the
            # functions; the common rule set would block everything over 8 KiB.
            _managed_rule("AWSManagedRulesCommonRuleSet", 0, excluded=("SizeRestrictions_BODY",)),
            _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 1),
            _rate_rule("RatePerIp", 2, settings.waf_rate_limit),
            _rate_rule("AuthRatePerIp", 3, settings.waf_auth_rate_limit, path_prefix="/auth/"),
        ],
    )
