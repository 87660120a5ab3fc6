"""Label matchers follow Alertmanager: anchored regexes, missing label reads as "", four operators."""

from __future__ import annotations

import time

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


# --- RE2: linear time, Alertmanager's (Go RE2) syntax and anchoring --------------------------

REDOS_PATTERNS = [r"(a+)+b", r"(a|aa)+c", r"(.*a){20}b", r"(\w+\s?)+$x", r"(a*)*b", r"^(a+)+$b"]


@pytest.mark.parametrize("pattern", REDOS_PATTERNS)
@pytest.mark.parametrize("is_equal", [True, False])
def test_catastrophic_patterns_run_in_linear_time_on_a_100k_label(pattern: str, is_equal: bool) -> None:
    matcher = Matcher.create("host", pattern, is_regex=True, is_equal=is_equal)
    # 24 first: a backtracking engine fails here in seconds instead of hanging on 100k.
    for length in (24, 100_000):
        label = "a" * length
        started = time.perf_counter()
        for _ in range(10):
            hit = matcher.matches({"host": label})
        per_match = (time.perf_counter() - started) / 10
        assert hit is not is_equal  # none of them matches a run of a's
        # Python's re needs seconds for 24 a's with (a+)+b (doubling with each one); RE2 is linear.
        assert per_match < 0.05, f"{pattern} on {length} a's: {per_match * 1000:.1f} ms per match"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("Disk", "Disk", True),
        ("Disk", "DiskFull", False),  # anchored at the end
        ("Disk", "MyDisk", False),  # and at the start
        ("a|b", "ab", False),  # the alternation is anchored as a whole: ^(?:a|b)$
        ("a|b", "b", True),
        ("abc", "abc\n", False),  # $ is the end of the text, as in Go (Python's $ allows a final \n)
        (".*", "line one\nline two", False),  # . does not match a newline (Go's default)
        ("(?s).*", "line one\nline two", True),
        ("^Disk$", "Disk", True),  # explicit anchors are harmless, as in Alertmanager
        ("", "", True),
        ("", "x", False),
    ],
)
def test_regexes_are_anchored_like_alertmanager(pattern: str, value: str, expected: bool) -> None:
    assert Matcher.create("n", pattern, is_regex=True).matches_value(value) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (".", "😀", True),  # one code point, not one UTF-8 byte
        ("..", "😀", False),
        (r"\p{Greek}+", "αβγ", True),  # RE2 Unicode classes (Python's re has none)
        (r"\p{Greek}+", "abc", False),
        ("(?i)équipe", "ÉQUIPE", True),
        ("gpu-[0-9]+", "gpu-٣", False),  # [0-9] is ASCII only
        (r"gpu-\d+", "gpu-٣", False),  # \d is ASCII in RE2, as in Go
        ("[^a]", "é", True),
        (".", "\ud800", True),  # a lone surrogate is matched as U+FFFD, never a crash
        ("\ufffd", "\ud800", True),
    ],
)
def test_unicode_semantics(pattern: str, value: str, expected: bool) -> None:
    assert Matcher.create("n", pattern, is_regex=True).matches_value(value) is expected


def test_equality_matchers_compare_exactly_even_with_lone_surrogates() -> None:
    assert Matcher.create("n", "\ud800").matches_value("\ud800")
    assert not Matcher.create("n", "\ufffd").matches_value("\ud800")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "invalid escape"),  # backreference
        (r"(?=a)a", "invalid perl operator"),  # lookahead
        (r"(?!a)b", "invalid perl operator"),
        (r"(?<=a)b", "invalid perl operator"),  # lookbehind
        (r"a{1001}", "invalid repetition size"),
        (r"((a{100}){100}){100}", "invalid repetition size"),
        (r"[\p{L}\p{N}]{1000}", "pattern too large"),  # over the memory budget
        (r"a)|(b", "unexpected )"),  # cannot break out of the anchoring group
        (r"(?P<x>a)(?P=x)", ""),
        ("\ud800", "lone surrogate"),
    ],
)
def test_patterns_re2_refuses_are_rejected_with_a_reason(pattern: str, reason: str) -> None:
    with pytest.raises(MatcherError) as refused:
        Matcher.create("alertname", pattern, is_regex=True)
    assert reason in str(refused.value)
    assert "'alertname'" in str(refused.value)


def test_string_form_uses_the_same_engine() -> None:
    with pytest.raises(MatcherError, match="invalid perl operator"):
        Matcher.parse('job=~"(?=api)api"')
    assert Matcher.parse(r'job=~"\\p{Greek}+"').matches({"job": "λ"})
