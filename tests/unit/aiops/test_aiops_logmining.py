"""The template miner: masking, grouping, ids, state, and hostile input."""

from __future__ import annotations

import json

import pytest

from lotabots.aiops.logmining import StateError, TemplateMiner, mask, parse_lines


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("user 4123 logged in", "user <*> logged in"),
        ("from 10.0.12.7 port 22", "from <*> port <*>"),
        ("addr 0x7ffd3a2c ok", "addr <*> ok"),
        ("block deadbeefcafebabe lost", "block <*> lost"),
        ("job 123e4567-e89b-12d3-a456-426614174000 done", "job <*> done"),
        ("open /var/log/app/x.log failed", "open <*> failed"),
        ("at 2026-01-31T12:00:00Z retry", "at <*>:<*>:<*> retry"),
        ("size=42, took 3.5ms", "size=<*>, took <*>"),
        ("[client 1.2.3.4] denied", "[client <*>] denied"),
    ],
)
def test_masking_replaces_variables(message: str, expected: str) -> None:
    """Numbers, IPs, hex, UUIDs, paths, timestamps become <*>; words and delimiters stay."""
    assert mask(message) == expected


def test_similar_messages_share_a_template_and_a_stable_id() -> None:
    """Messages differing in a word join one template; the id is the same in a fresh run."""
    lines = ["Failed password for root from 1.2.3.4", "Failed password for admin from 5.6.7.8"]
    first, second = TemplateMiner(), TemplateMiner()
    a = [first.add(line) for line in lines]
    b = [second.add(line) for line in lines]
    assert a[0].is_new and not a[1].is_new
    assert a[1].template == "Failed password for <*> from <*>"
    assert a[0].template_id == a[1].template_id == b[1].template_id


def test_different_events_get_different_templates() -> None:
    """Messages that share too little are separate templates."""
    templates = parse_lines(
        ["Connection closed by 1.2.3.4", "Accepted publickey for bob", "disk full on sda"]
    )
    assert len(set(templates)) == 3


def test_flood_of_one_template_counts_without_growth() -> None:
    """A flood of one template is one template with the full count (and no new state per line)."""
    miner = TemplateMiner()
    for i in range(20_000):
        miner.add(f"heartbeat from worker {i} ok")
    [template] = miner.templates()
    assert template.count == 20_000
    assert len(json.dumps(miner.to_state())) < 500


def test_hostile_lines_never_raise() -> None:
    """Empty, binary, undecodable (surrogate-escaped) and 1 MB lines are all mined, never raised."""
    miner = TemplateMiner()
    hostile = ["", "   ", "\x00\x01\x02\xff", "caf\udcc3 \udca9", "a" * 1_000_000, "x " * 500_000, "<*> <*>"]
    for line in hostile:
        match = miner.add(line)
        assert isinstance(match.template, str)
        assert len(match.template) <= 5000
    json.dumps(miner.to_state())
    assert parse_lines([]) == []


def test_state_round_trip_keeps_ids_and_counts() -> None:
    """A restored miner has the same templates and keeps matching into them."""
    miner = TemplateMiner()
    for line in ["GET /a/1 200", "GET /a/2 200", "worker 3 crashed"]:
        miner.add(line)
    restored = TemplateMiner.from_state(json.loads(json.dumps(miner.to_state())))
    assert restored.templates() == miner.templates()
    match = restored.add("worker 9 crashed")
    assert not match.is_new
    assert match.template_id == next(t.template_id for t in miner.templates() if "crashed" in t.template)


@pytest.mark.parametrize(
    "state",
    [
        None,
        [],
        "text",
        {"kind": "other", "version": 1, "templates": []},
        {"kind": "lotabots.aiops.logmining", "version": 99, "templates": []},
        {"kind": "lotabots.aiops.logmining", "version": 1, "templates": "x"},
        {
            "kind": "lotabots.aiops.logmining",
            "version": 1,
            "templates": [{"id": "a", "tokens": [1], "count": 1}],
        },
        {
            "kind": "lotabots.aiops.logmining",
            "version": 1,
            "templates": [{"id": "a", "tokens": ["x"], "count": -1}],
        },
        {
            "kind": "lotabots.aiops.logmining",
            "version": 1,
            "templates": [{"id": "a", "tokens": ["x"], "count": 1}, {"id": "a", "tokens": ["y"], "count": 1}],
        },
    ],
)
def test_corrupt_state_raises_state_error(state: object) -> None:
    """Anything that is not a miner state of this version is a StateError (a ValueError)."""
    with pytest.raises(StateError):
        TemplateMiner.from_state(state)


@pytest.mark.parametrize(
    "line",
    [
        "user 4123 logged in",
        "job 123e4567-e89b-12d3-a456-426614174000 done at 2026-01-31T12:00:00Z",
        "open /var/log/app/x.log failed (errno=13) [client 1.2.3.4:80]",
        "block deadbeefcafebabe lost, DEADBEEF ok, deadbee kept",
        "Received block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
        "key=value k2:v2 'quoted 7' \"x\" <*> <*>x {a:1} relative/path/9 a/b/c",
    ],
)
def test_token_masking_equals_line_masking(line: str) -> None:
    """The miner masks token by token through caches and cheap paths; the result is `mask`'s."""
    miner = TemplateMiner()
    assert miner.add(line).template == mask(line)
    assert miner.add(line.replace("1", "7")).template == mask(line)  # the digit-shape cache path


def test_digits_never_merge_a_word_with_a_variable() -> None:
    """The digit-shape cache reads digits as 0, so a run with a digit stays a variable and a word stays
    a word: "code ab" and "code ab1" are masked differently in one miner."""
    miner = TemplateMiner()
    assert miner.add("code ab1 now").template == "code <*> now"
    assert miner.add("state ab now").template == "state ab now"
    assert miner.add("state ab1 now").template == "state <*> now"


def test_similarity_counts_constant_positions_only() -> None:
    """Masked values say nothing about the event: a user name varies and joins, while a message
    whose constant words mostly differ is another event even with the same variables."""
    templates = parse_lines(
        [
            "Received disconnect from 1.2.3.4: 11: Bye Bye [preauth]",
            "Received disconnect from 1.2.3.5: 11: Bye Bye [preauth]",
            "Received disconnect from 5.6.7.8: 11: disconnected by user",
            "Invalid user bob from 1.2.3.4",
            "Invalid user alice from 1.2.3.5",
        ]
    )
    assert templates[0] == templates[1] == "Received disconnect from <*>: <*>: Bye Bye [preauth]"
    assert templates[2] == "Received disconnect from <*>: <*>: disconnected by user"
    assert templates[3] == templates[4] == "Invalid user <*> from <*>"


def test_control_characters_and_surrogates_become_question_marks() -> None:
    """Templates are printable JSON-safe text whatever bytes a line held."""
    miner = TemplateMiner()
    assert miner.add("a\x00b 7 caf\udcc3").template == "a?b <*> caf?"
    json.dumps(miner.to_state())
