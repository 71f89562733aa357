"""Flows run after the flows that write what they read; independent flows share a wave."""

from __future__ import annotations

from orderlake.engine.graph import QueryFlow
from orderlake.engine.runner import flow_waves


def _flow(name: str) -> QueryFlow:
    return QueryFlow(name=name, target=name, func=lambda: None)


def test_independent_flows_share_a_wave_and_readers_wait_for_writers():
    quarantine, target, gold = _flow("quarantine"), _flow("target"), _flow("gold")
    reads = {"quarantine": {"bronze"}, "target": {"bronze"}, "gold": {"target", "quarantine"}}
    waves = flow_waves([gold, quarantine, target], lambda f: reads[f.name])
    assert [[f.name for f in wave] for wave in waves] == [["quarantine", "target"], ["gold"]]


def test_a_cycle_still_runs_every_flow_once():
    a, b = _flow("a"), _flow("b")
    waves = flow_waves([a, b], lambda f: {"b"} if f.name == "a" else {"a"})
    assert [[f.name for f in wave] for wave in waves] == [["a"], ["b"]]
