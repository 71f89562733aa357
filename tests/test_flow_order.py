"""Flows run after the flows that write what they read; independent flows share a wave."""

from __future__ import annotations

import pytest

from orderlake.engine.dp.graph import GraphError, QueryFlow
from orderlake.engine.run.runner import flow_waves


def _flow(name: str) -> QueryFlow:
    return QueryFlow(name=name, target=name, func=lambda: None)


def test_independent_flows_share_a_wave_and_readers_wait_for_writers():
    quarantine, target, gold = _flow("quarantine"), _flow("target"), _flow("gold")
    reads = {"quarantine": {"bronze"}, "target": {"bronze"}, "gold": {"target", "quarantine"}}
    waves = flow_waves([gold, quarantine, target], lambda f: reads[f.name])
    assert [[f.name for f in wave] for wave in waves] == [["quarantine", "target"], ["gold"]]


def test_a_cycle_is_an_error_naming_its_flows():
    """https://docs.databricks.com/aws/en/ldp/concepts/pipelines (a pipeline's datasets form a
    directed acyclic graph): a cycle is refused, not run in definition order."""
    a, b, c = _flow("a"), _flow("b"), _flow("c")
    reads = {"a": {"b"}, "b": {"a"}, "c": set()}
    with pytest.raises(GraphError, match=r"cycle.*a reads \['b'\].*b reads \['a'\]"):
        flow_waves([a, b, c], lambda f: reads[f.name])
