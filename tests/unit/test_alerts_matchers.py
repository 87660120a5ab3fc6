"""Label matchers follow Alertmanager: anchored regexes, missing label reads as "", four operators."""

from __future__ import annotations

import pytest

from lotabots.alerts.matchers import Matcher, MatcherError


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "warning"}, False),
        ('severity!="critical"', {"severity": "warning"}, True),
        ('severity!="critical"', {}, True),
        ('alertname=~"Disk.*"', {"alertname": "DiskFull"}, True),
        ('alertname=~"Disk"', {"alertname": "DiskFull"}, False),  # anchored at both ends
        ('alertname=~"Disk"', {"alertname": "MyDisk"}, False),
        ('alertname!~"Disk.*"', {"alertname": "CPU"}, True),
        ('env=""', {}, True),  # a missing label is the empty string
        ('env=""', {"env": "prod"}, False),
        ("env=prod", {"env": "prod"}, True),  # quotes are optional
        (r'msg="say \"hi\""', {"msg": 'say "hi"'}, True),
        ('team="équipe"', {"team": "équipe"}, True),
    ],
)
def test_string_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


def test_object_form_equals_string_form() -> None:
    as_object = Matcher.from_any({"name": "job", "value": "api|web", "isRegex": True, "isEqual": False})
    assert as_object == Matcher.parse('job!~"api|web"')
    assert str(as_object) == 'job!~"api|web"'
    assert as_object.as_dict() == {"name": "job", "value": "api|web", "isRegex": True, "isEqual": False}


@pytest.mark.parametrize("text", ['bad-name="x"', "noop", 'x=~"(unclosed"', '1abc="x"', ""])
def test_invalid_matchers_raise(text: str) -> None:
    with pytest.raises(MatcherError):
        Matcher.parse(text)


def test_regex_length_is_bounded() -> None:
    with pytest.raises(MatcherError, match="longer than"):
        Matcher.create("a", "x" * 2000, is_regex=True)
