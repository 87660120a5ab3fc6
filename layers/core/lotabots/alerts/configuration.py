"""The alerting configuration document: routes, grouping, receivers, inhibition.

An Alertmanager-shaped YAML (or JSON) document, validated with pydantic. It is read from SSM
Parameter Store when `ALERTS_CONFIG_PARAMETER` is set (Powertools Parameters, cached for
`ALERTS_CONFIG_MAX_AGE_SECONDS`) and otherwise from `default_config.yaml` next to this module.
`ALERTS_GROUP_WAIT_SECONDS` / `_GROUP_INTERVAL_` / `_REPEAT_INTERVAL_` force the timings of
every route (the local stack and the e2e tests use them for short waits).

Routing follows Alertmanager: a child route inherits every setting it does not set; an alert
goes to the deepest matching routes, the first matching child stops the search unless it
has `continue: true`, and a route with no matching child is itself the match.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lotabots import config as settings_module
from lotabots.alerts.matchers import LABEL_NAME, Matcher, MatcherError
from lotabots.config import AlertSettings
from lotabots.observability import logger

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "default_config.yaml"
GROUP_BY_ALL = "..."
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class AlertsConfigError(ValueError):
    """The configuration document is not valid; the message says where."""


def parse_duration(value: Any) -> float:
    """Seconds from `30s`, `5m`, `1h30m`, `2d`, `500ms` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 4h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty duration")
        pos, seconds = 0, 0.0
        for part in _DURATION_PART.finditer(text):
            if part.start() != pos:
                break
            seconds += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
            pos = part.end()
        if pos != len(text):
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h30m, 2d") from None
    else:
        raise ValueError(f"invalid duration {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _matchers(specs: list[Any]) -> list[Matcher]:
    try:
        return [Matcher.from_any(spec) for spec in specs]
    except MatcherError as exc:
        raise ValueError(str(exc)) from None


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GlobalConfig(_Doc):
    # Alerts posted without ends_at resolve after this unless sent again (0: never).
    resolve_timeout: float = 300.0
    # Alerts listed one by one in a message; the rest are counted (Slack allows 50 blocks).
    max_alerts_per_message: int = Field(10, ge=1, le=40)

    @field_validator("resolve_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class ReceiverConfig(_Doc):
    name: str = Field(min_length=1, max_length=100)
    channel: str = Field(min_length=1, max_length=200, description="Slack channel ID or #name")
    send_resolved: bool = True


class RouteConfig(_Doc):
    receiver: str | None = None
    matchers: list[Any] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    continue_: bool = Field(False, alias="continue")
    routes: list[RouteConfig] = Field(default_factory=list)

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, value: list[Any]) -> list[Any]:
        _matchers(value)
        return value

    @field_validator("group_by")
    @classmethod
    def _valid_group_by(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if GROUP_BY_ALL in value and len(value) > 1:
            raise ValueError("group_by '...' (all labels) cannot be combined with other labels")
        for name in value:
            if name != GROUP_BY_ALL and not LABEL_NAME.match(name):
                raise ValueError(f"invalid label name {name!r} in group_by")
        if len(set(value)) != len(value):
            raise ValueError("group_by lists a label twice")
        return value

    @field_validator("group_wait", "group_interval", "repeat_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)


class InhibitRuleConfig(_Doc):
    source_matchers: list[Any] = Field(min_length=1)
    target_matchers: list[Any] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _valid_matchers(cls, value: list[Any]) -> list[Any]:
        _matchers(value)
        return value

    @field_validator("equal")
    @classmethod
    def _valid_equal(cls, value: list[str]) -> list[str]:
        for name in value:
            if not LABEL_NAME.match(name):
                raise ValueError(f"invalid label name {name!r} in equal")
        return value


class AlertsConfigDoc(_Doc):
    global_: GlobalConfig = Field(default_factory=lambda: GlobalConfig.model_validate({}), alias="global")
    route: RouteConfig
    receivers: list[ReceiverConfig] = Field(min_length=1)
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> AlertsConfigDoc:
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            raise ValueError("receiver names must be unique")
        root = self.route
        if not root.receiver:
            raise ValueError("the root route needs a receiver")
        if root.matchers:
            raise ValueError("the root route matches every alert: it cannot have matchers")
        if root.continue_:
            raise ValueError("the root route cannot have continue")

        def walk(route: RouteConfig, where: str) -> None:
            if route.receiver is not None and route.receiver not in names:
                raise ValueError(f"{where}: unknown receiver {route.receiver!r}")
            for label in ("group_interval", "repeat_interval"):
                if getattr(route, label) == 0:
                    raise ValueError(f"{where}: {label} must be greater than zero")
            for i, child in enumerate(route.routes):
                walk(child, f"{where}.routes[{i}]")

        walk(root, "route")
        return self


@dataclass(frozen=True)
class Route:
    """A route with every inherited setting filled in."""

    id: str
    receiver: str
    channel: str
    send_resolved: bool
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...] | None  # None: group by all labels
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool
    routes: tuple[Route, ...]

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        if not all(m.matches(labels) for m in self.matchers):
            return []
        found: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found.extend(hits)
            if hits and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by is None:
            return dict(sorted(labels.items()))
        return {name: labels[name] for name in sorted(self.group_by) if labels.get(name)}

    def group_key(self, group_labels: Mapping[str, str]) -> str:
        canonical = json.dumps([self.id, sorted(group_labels.items())], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True)
class AlertsConfig:
    root: Route
    routes_by_id: Mapping[str, Route]
    inhibit_rules: tuple[InhibitRule, ...]
    resolve_timeout: float
    max_alerts_per_message: int
    digest: str  # identifies the document the config was built from

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        return self.root.match(labels)

    def route(self, route_id: str) -> Route:
        """The route a group was made for; the root if the config no longer has it."""
        return self.routes_by_id.get(route_id, self.root)


Overrides = tuple[float | None, float | None, float | None]


def _overrides(settings: AlertSettings) -> Overrides:
    return (
        settings.group_wait_override_s,
        settings.group_interval_override_s,
        settings.repeat_interval_override_s,
    )


def _build(doc: AlertsConfigDoc, digest: str, forced: Overrides) -> AlertsConfig:
    receivers = {r.name: r for r in doc.receivers}
    overrides = dict(zip(("group_wait", "group_interval", "repeat_interval"), forced, strict=True))
    by_id: dict[str, Route] = {}

    def resolve(node: RouteConfig, parent: Route | None, route_id: str) -> Route:
        def inherit(name: str, default: float) -> float:
            forced = overrides[name]
            if forced is not None:
                return float(forced)
            own = getattr(node, name)
            if own is not None:
                return float(own)
            return float(getattr(parent, name)) if parent else default

        receiver_name = node.receiver or (parent.receiver if parent else "")
        receiver = receivers[receiver_name]
        if node.group_by is not None:
            group_by: tuple[str, ...] | None = (
                None if node.group_by == [GROUP_BY_ALL] else tuple(node.group_by)
            )
        else:
            group_by = parent.group_by if parent else ()
        shell = Route(
            id=route_id,
            receiver=receiver.name,
            channel=receiver.channel,
            send_resolved=receiver.send_resolved,
            matchers=tuple(_matchers(node.matchers)),
            group_by=group_by,
            group_wait=inherit("group_wait", 30.0),
            group_interval=inherit("group_interval", 300.0),
            repeat_interval=inherit("repeat_interval", 4 * 3600.0),
            continue_=node.continue_,
            routes=(),
        )
        children = tuple(resolve(c, shell, f"{route_id}/{i}") for i, c in enumerate(node.routes))
        route = Route(**{**shell.__dict__, "routes": children})
        by_id[route_id] = route
        return route

    root = resolve(doc.route, None, "root")
    rules = tuple(
        InhibitRule(
            source=tuple(_matchers(r.source_matchers)),
            target=tuple(_matchers(r.target_matchers)),
            equal=tuple(r.equal),
        )
        for r in doc.inhibit_rules
    )
    return AlertsConfig(
        root=root,
        routes_by_id=by_id,
        inhibit_rules=rules,
        resolve_timeout=doc.global_.resolve_timeout,
        max_alerts_per_message=doc.global_.max_alerts_per_message,
        digest=digest,
    )


def parse_document(text: str, settings: AlertSettings | None = None) -> AlertsConfig:
    """Validate a YAML/JSON document; raises AlertsConfigError naming each problem."""
    return _parse(text, _overrides(settings or settings_module.load(AlertSettings)))


def _parse(text: str, forced: Overrides) -> AlertsConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AlertsConfigError(f"alerts config is not valid YAML/JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise AlertsConfigError("alerts config must be a mapping with route and receivers")
    try:
        doc = AlertsConfigDoc.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors()
        )
        raise AlertsConfigError(f"invalid alerts config: {problems}") from None
    return _build(doc, hashlib.sha256(text.encode()).hexdigest(), forced)


_lock = threading.Lock()


@cache
def _parsed(text: str, forced: Overrides) -> AlertsConfig:
    return _parse(text, forced)


@cache
def _default_document() -> str:
    """The packaged document, read once per process (load() runs on every ingest and flush)."""
    return DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")


def _document_text(settings: AlertSettings) -> str:
    if not settings.config_parameter:
        return _default_document()
    from aws_lambda_powertools.utilities import parameters

    # Powertools caches the value for max_age; the document is YAML (JSON is a subset),
    # which Powertools has no transform for, so it is parsed here.
    value = parameters.get_parameter(settings.config_parameter, max_age=settings.config_max_age_s)
    return value if isinstance(value, str) else str(value)


_last_good: AlertsConfig | None = None


def load() -> AlertsConfig:
    """The current configuration (SSM parameter or the default document), validated once per text.

    An invalid document put in the parameter does not stop alerting: the last valid one stays
    in force (and every load logs the error) until the parameter is fixed.
    """
    global _last_good
    settings = settings_module.load(AlertSettings)
    text = _document_text(settings)
    with _lock:
        try:
            cfg = _parsed(text, _overrides(settings))
        except AlertsConfigError as exc:
            if _last_good is None:
                raise
            logger.error("alerts config rejected; keeping the last valid one", extra={"error": str(exc)})
            return _last_good
        _last_good = cfg
        return cfg


def reset() -> None:
    global _last_good
    _parsed.cache_clear()
    _default_document.cache_clear()
    _last_good = None
