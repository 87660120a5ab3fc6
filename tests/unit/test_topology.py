"""The topology is self-consistent: every trigger names a declared queue, every function has code."""

from pathlib import Path

from lotabots import topology

ROOT = Path(__file__).resolve().parents[2]


def test_every_queue_trigger_and_rule_targets_a_declared_queue() -> None:
    names = {q.name for q in topology.QUEUES}
    for fn in topology.FUNCTIONS:
        for trigger in fn.queues:
            assert trigger.queue in names, (fn.name, trigger.queue)
    for rule in topology.EVENT_RULES:
        assert rule.queue in names, rule.name


def test_every_queue_has_exactly_one_consumer() -> None:
    consumers = [t.queue for fn in topology.FUNCTIONS for t in fn.queues]
    assert sorted(consumers) == sorted(q.name for q in topology.QUEUES)


def test_queue_visibility_covers_six_times_the_consumer_timeout() -> None:
    for fn in topology.FUNCTIONS:
        for trigger in fn.queues:
            assert topology.queue(trigger.queue).visibility_timeout_s >= 6 * fn.timeout_s, fn.name


def test_every_function_has_a_handler_module() -> None:
    for fn in topology.FUNCTIONS:
        assert (ROOT / fn.code_dir / "app.py").is_file(), fn.code_dir


def test_paths_route_to_the_longest_prefix() -> None:
    assert topology.function_for_path("/users/1").name == "auth"  # type: ignore[union-attr]
    assert topology.function_for_path("/.well-known/jwks.json").name == "auth"  # type: ignore[union-attr]
    assert topology.function_for_path("/documents/1/similar").name == "documents"  # type: ignore[union-attr]
    assert topology.function_for_path("/nowhere") is None
