"""Label matchers with Alertmanager semantics, on a linear-time regex engine.

A matcher is `{name, value, isRegex, isEqual}`: `=`, `!=`, `=~`, `!~`. A missing label reads as
the empty string, so `env=""` matches alerts without an `env` label. Matchers are written
either as objects or as Alertmanager strings such as `severity="critical"` or
`alertname=~"Disk.*"`.

Regexes are RE2 (`google-re2`), the syntax and engine Alertmanager itself uses (Go's
`regexp`), anchored at both ends as Alertmanager anchors them (`^(?:value)$`, where `$` is the
end of the text, never "before a trailing newline"). RE2 runs in time linear in the label's
length whatever the pattern, so a silence or route such as `(a+)+b` cannot stall a request
or a flush (Python's backtracking `re` took seconds on a few thousand characters). Patterns
RE2 refuses (backreferences, lookaround, repetitions over 1000, programs over the memory
budget) are rejected when the matcher is created: a 422 for a silence, an invalid alerts
config document for routes and inhibition rules. A label value holding a lone surrogate (it
is not UTF-8) is matched as Go would see it after JSON decoding: with U+FFFD in its place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import re2

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_STRING_FORM = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')
MAX_REGEX_LENGTH = 1024
# Memory RE2 may use for one compiled pattern (its default is 8 MiB); larger programs are refused.
REGEX_MAX_MEMORY = 2 << 20


class MatcherError(ValueError):
    """A matcher that cannot be used (bad label name, bad regex, bad syntax)."""


def _options() -> Any:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEMORY
    options.log_errors = False  # the error is raised (and shown to the caller), not printed
    # Only "does it match" is asked: without capture groups RE2 answers with its DFA, about
    # 300x faster than its NFA on nested patterns such as `(.*a){20}` over 100k characters.
    options.never_capture = True
    return options


def _reason(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


@lru_cache(maxsize=1024)
def compile_regex(value: str) -> Any:
    """The anchored RE2 program for a matcher value; MatcherError if RE2 refuses it.

    The value is first compiled alone, so that text such as `a)|(b` cannot close the anchoring
    group and match unanchored.
    """
    if len(value) > MAX_REGEX_LENGTH:
        raise MatcherError(f"regex is longer than {MAX_REGEX_LENGTH} characters")
    try:
        value.encode("utf-8")
        re2.compile(value, _options())
        return re2.compile(f"^(?:{value})$", _options())
    except UnicodeEncodeError:
        raise MatcherError("regex is not valid Unicode (lone surrogate)") from None
    except re2.error as exc:
        raise MatcherError(
            f"invalid regex {value[:100]!r}: {_reason(exc)} (RE2 syntax, as Alertmanager: "
            "no backreferences or lookaround)"
        ) from None


def _as_utf8_text(value: str) -> str:
    """`value` with any lone surrogate replaced by U+FFFD (RE2 matches UTF-8 only)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _pattern: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, name: str, value: str, *, is_regex: bool = False, is_equal: bool = True) -> Matcher:
        if not LABEL_NAME.match(name or ""):
            raise MatcherError(f"invalid label name {name!r}: use letters, digits and underscores")
        pattern = None
        if is_regex:
            try:
                pattern = compile_regex(value)
            except MatcherError as exc:
                raise MatcherError(f"matcher {name!r}: {exc}") from None
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
        if self._pattern is not None:
            hit = self._pattern.match(_as_utf8_text(value)) is not None
        else:
            hit = value == self.value
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
