"""The alerting config document: validation, inheritance, Alertmanager routing, env overrides."""

from __future__ import annotations

import pytest

from lotabots import config
from lotabots.alerts import configuration
from lotabots.alerts.configuration import AlertsConfigError, parse_document, parse_duration

DOC = """
global: {resolve_timeout: 2m, max_alerts_per_message: 5}
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['team="db"']
      receiver: db
      group_by: ['...']
      routes:
        - matchers: ['severity="critical"']
          receiver: db-pager
          group_wait: 5s
    - matchers: ['severity=~"critical|warning"']
      receiver: oncall
      continue: true
    - matchers: [{name: service, value: api}]
      receiver: api
receivers:
  - {name: default, channel: "#alerts"}
  - {name: db, channel: "#db"}
  - {name: db-pager, channel: C0DBPAGER1, send_resolved: false}
  - {name: oncall, channel: "#oncall"}
  - {name: api, channel: "#api"}
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ALERTS_GROUP_WAIT_SECONDS",
        "ALERTS_GROUP_INTERVAL_SECONDS",
        "ALERTS_REPEAT_INTERVAL_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    config.reset()
    configuration.reset()


def _receivers(doc: str, labels: dict[str, str]) -> list[str]:
    return [r.receiver for r in parse_document(doc).match(labels)]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("500ms", 0.5),
        (90, 90),
        ("1w", 604800),
        ("0s", 0),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "m5", "", "-1s", "1x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_routing_follows_alertmanager() -> None:
    assert _receivers(DOC, {"alertname": "X"}) == ["default"]  # nothing matches: the root
    assert _receivers(DOC, {"team": "db", "severity": "critical"}) == [
        "db-pager"
    ]  # deepest match, first wins
    assert _receivers(DOC, {"team": "db", "severity": "warning"}) == ["db"]  # child missed: parent matches
    assert _receivers(DOC, {"severity": "warning", "service": "api"}) == ["oncall", "api"]  # continue
    assert _receivers(DOC, {"severity": "info", "service": "api"}) == ["api"]


def test_children_inherit_and_override() -> None:
    cfg = parse_document(DOC)
    [pager] = cfg.match({"team": "db", "severity": "critical"})
    assert pager.group_wait == 5 and pager.group_interval == 300 and pager.repeat_interval == 4 * 3600
    assert pager.group_by is None  # '...' inherited from the db route: every label
    assert pager.channel == "C0DBPAGER1" and pager.send_resolved is False
    [oncall, _] = cfg.match({"severity": "warning", "service": "api"})
    assert oncall.group_by == ("alertname",)
    assert cfg.resolve_timeout == 120 and cfg.max_alerts_per_message == 5
    assert cfg.route(pager.id) is pager and cfg.route("gone") is cfg.root


def test_group_keys_separate_routes_and_label_values() -> None:
    cfg = parse_document(DOC)
    [root] = cfg.match({"alertname": "A", "host": "1"})
    labels = root.group_labels({"alertname": "A", "host": "1"})
    assert labels == {"alertname": "A"}
    assert root.group_key(labels) == root.group_key({"alertname": "A"})
    assert root.group_key(labels) != root.group_key({"alertname": "B"})
    [db] = cfg.match({"team": "db", "x": "1"})
    assert db.group_labels({"team": "db", "x": "1"}) == {"team": "db", "x": "1"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("route: {receiver: nope}\nreceivers: [{name: a, channel: '#a'}]", "unknown receiver"),
        (
            "route: {receiver: a, matchers: ['x=\"1\"']}\nreceivers: [{name: a, channel: '#a'}]",
            "cannot have matchers",
        ),
        ("route: {receiver: a, group_wait: soon}\nreceivers: [{name: a, channel: '#a'}]", "invalid duration"),
        (
            "route: {receiver: a, routes: [{matchers: ['x=~\"(\"']}]}\nreceivers: [{name: a, channel: '#a'}]",
            "invalid regex",
        ),
        (
            "route: {receiver: a, group_by: ['bad-label']}\nreceivers: [{name: a, channel: '#a'}]",
            "invalid label name",
        ),
        (
            "route: {receiver: a, repeat_interval: 0s}\nreceivers: [{name: a, channel: '#a'}]",
            "greater than zero",
        ),
        ("route: {receiver: a}\nreceivers: [{name: a, channel: '#a'}, {name: a, channel: '#b'}]", "unique"),
        ("route: {receiver: a}\nreceivers: [{name: a, channel: '#a'}]\nsurprise: 1", "Extra inputs"),
        ("[1, 2]", "must be a mapping"),
        ("route: {receiver: a", "not valid YAML"),
    ],
)
def test_invalid_documents_name_the_problem(doc: str, message: str) -> None:
    with pytest.raises(AlertsConfigError, match=message):
        parse_document(doc)


def test_json_documents_are_accepted() -> None:
    cfg = parse_document('{"route": {"receiver": "a"}, "receivers": [{"name": "a", "channel": "#a"}]}')
    assert cfg.root.group_wait == 30 and cfg.root.group_by == ()


def test_default_document_is_valid_and_used_without_a_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERTS_CONFIG_PARAMETER", raising=False)
    cfg = configuration.load()
    assert cfg.root.receiver == "ops"
    assert [r.receiver for r in cfg.match({"severity": "critical", "alertname": "X"})] == ["ops-critical"]
    assert cfg.inhibit_rules


def test_env_overrides_force_every_route_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_GROUP_WAIT_SECONDS", "1")
    monkeypatch.setenv("ALERTS_GROUP_INTERVAL_SECONDS", "2")
    config.reset()
    cfg = configuration.load()
    for route in cfg.routes_by_id.values():
        assert (route.group_wait, route.group_interval) == (1, 2)
        assert route.repeat_interval >= 3600  # not overridden


def test_inhibition_sources_are_narrowed_by_pinned_severity_only() -> None:
    from lotabots.alerts.service import _source_severities

    assert _source_severities(parse_document(DOC)) == frozenset({"critical"})
    regex_source = DOC.replace(
        "source_matchers: ['severity=\"critical\"']", "source_matchers: ['severity=~\"crit.*\"']"
    )
    assert _source_severities(parse_document(regex_source)) is None


def test_config_comes_from_ssm_and_a_bad_update_keeps_the_last_valid_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    from lotabots import aws

    with mock_aws():
        aws.reset()
        parameters.clear_caches()
        monkeypatch.setenv("ALERTS_CONFIG_PARAMETER", "/lotabots/alerts/config")
        monkeypatch.setenv("ALERTS_CONFIG_MAX_AGE_SECONDS", "0")
        config.reset()
        configuration.reset()
        ssm = aws.client("ssm")
        ssm.put_parameter(Name="/lotabots/alerts/config", Value=DOC, Type="String")
        assert configuration.load().root.receiver == "default"
        ssm.put_parameter(Name="/lotabots/alerts/config", Value="route: {receiver: ghost}", Overwrite=True)
        assert configuration.load().root.receiver == "default"  # rejected, previous one kept
        configuration.reset()
        with pytest.raises(AlertsConfigError, match="receivers"):
            configuration.load()  # nothing valid to fall back on
        parameters.clear_caches()
    aws.reset()


@pytest.mark.parametrize(
    ("where", "matcher"),
    [
        ("route", "routes: [{matchers: ['alertname=~\"(a)\\\\1\"']}]"),  # backreference
        ("route", "routes: [{matchers: [{name: host, value: '(?=db)db.*', isRegex: true}]}]"),
        ("inhibit", "source_matchers: ['severity=~\"(?<!x)critical\"']"),
        ("inhibit", "target_matchers: ['severity!~\"x{2000}\"']"),
    ],
)
def test_routes_and_inhibit_rules_accept_only_re2_regexes(where: str, matcher: str) -> None:
    if where == "route":
        doc = f"route: {{receiver: a, {matcher}}}\nreceivers: [{{name: a, channel: '#a'}}]"
    else:
        rule = {"source_matchers": "['severity=\"critical\"']", "target_matchers": "['severity=\"warning\"']"}
        key = matcher.split(":", 1)[0]
        rule[key] = matcher.split(":", 1)[1].strip()
        body = ", ".join(f"{k}: {v}" for k, v in rule.items())
        doc = f"route: {{receiver: a}}\nreceivers: [{{name: a, channel: '#a'}}]\ninhibit_rules: [{{{body}}}]"
    with pytest.raises(AlertsConfigError, match=r"invalid regex .*RE2 syntax"):
        parse_document(doc)


def test_a_catastrophic_route_regex_routes_a_long_label_at_once() -> None:
    import time

    cfg = parse_document(
        "route: {receiver: a, routes: [{matchers: ['host=~\"(a+)+b\"'], receiver: b}]}\n"
        "receivers: [{name: a, channel: '#a'}, {name: b, channel: '#b'}]"
    )
    started = time.perf_counter()
    [route] = cfg.match({"alertname": "X", "host": "a" * 100_000})
    assert route.receiver == "a"
    assert time.perf_counter() - started < 0.05
