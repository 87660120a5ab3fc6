"""Label matchers with Alertmanager semantics.

A matcher is `{name, value, isRegex, isEqual}`: `=`, `!=`, `=~`, `!~`. Regexes are anchored
at both ends, as in Alertmanager. A missing label reads as the empty string, so `env=""`
matches alerts without an `env` label. Matchers are written either as objects or as
Alertmanager strings such as `severity="critical"` or `alertname=~"Disk.*"`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_STRING_FORM = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')
MAX_REGEX_LENGTH = 1024


class MatcherError(ValueError):
    """A matcher that cannot be used (bad label name, bad regex, bad syntax)."""


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, name: str, value: str, *, is_regex: bool = False, is_equal: bool = True) -> Matcher:
        if not LABEL_NAME.match(name or ""):
            raise MatcherError(f"invalid label name {name!r}: use letters, digits and underscores")
        pattern = None
        if is_regex:
            if len(value) > MAX_REGEX_LENGTH:
                raise MatcherError(f"regex for {name!r} is longer than {MAX_REGEX_LENGTH} characters")
            try:
                pattern = re.compile(f"^(?:{value})$")
            except re.error as exc:
                raise MatcherError(f"invalid regex for {name!r}: {exc}") from None
        return cls(name, value, is_regex, is_equal, pattern)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"` (quotes optional)."""
        found = _STRING_FORM.match(text)
        if not found:
            raise MatcherError(f'invalid matcher {text!r}: expected name="value", !=, =~ or !~')
        name, op, quoted, bare = found.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        return cls.create(name, value, is_regex="~" in op, is_equal=not op.startswith("!"))

    @classmethod
    def from_any(cls, spec: Any) -> Matcher:
        if isinstance(spec, Matcher):
            return spec
        if isinstance(spec, str):
            return cls.parse(spec)
        if isinstance(spec, Mapping):
            return cls.create(
                str(spec.get("name", "")),
                str(spec.get("value", "")),
                is_regex=bool(spec.get("isRegex", spec.get("is_regex", False))),
                is_equal=bool(spec.get("isEqual", spec.get("is_equal", True))),
            )
        raise MatcherError(f"invalid matcher {spec!r}")

    def matches_value(self, value: str) -> bool:
        hit = self._pattern.match(value) is not None if self._pattern is not None else value == self.value
        return hit if self.is_equal else not hit

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.matches_value(labels.get(self.name, ""))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    def __str__(self) -> str:
        op = ("=" if self.is_equal else "!") + ("~" if self.is_regex else "")
        if op == "!":
            op = "!="
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{op}"{escaped}"'
