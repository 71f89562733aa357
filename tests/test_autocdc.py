"""AUTO CDC SCD1 on Delta: the MERGE semantics, on synthetic data."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from orderlake.engine.dp.graph import AutoCdcFlow
from orderlake.engine.run.autocdc import SEQUENCE_COLUMN, apply_batch


def _flow(**kwargs) -> AutoCdcFlow:
    spec = {
        "name": "t",
        "target": "t",
        "source": "s",
        "keys": ["k"],
        "sequence_by": F.col("seq"),
        "apply_as_deletes": None,
        "column_list": None,
        "except_column_list": None,
    }
    spec.update(kwargs)
    return AutoCdcFlow(**spec)


def _apply(spark, tmp: Path, rows: list[tuple], flow: AutoCdcFlow | None = None) -> dict:
    batch = spark.createDataFrame(rows, "k string, v string, seq int, op string")
    apply_batch(spark, batch, flow or _flow(), tmp / "target", tmp / "tombs", {})
    table = spark.read.format("delta").load(str(tmp / "target"))
    return {r["k"]: r.asDict() for r in table.collect()}


def test_latest_sequence_in_a_batch_wins(spark, tmp_path):
    state = _apply(spark, tmp_path, [("a", "v1", 1, "u"), ("a", "v3", 3, "u"), ("a", "v2", 2, "u")])
    assert state["a"]["v"] == "v3" and len(state) == 1


def test_older_change_arriving_later_never_overwrites(spark, tmp_path):
    _apply(spark, tmp_path, [("a", "new", 5, "u")])
    state = _apply(spark, tmp_path, [("a", "old", 4, "u"), ("b", "b1", 1, "u")])
    assert state["a"]["v"] == "new" and state["b"]["v"] == "b1"


def test_reapplying_a_batch_changes_nothing(spark, tmp_path):
    rows = [("a", "x", 1, "u"), ("b", "y", 2, "u")]
    _apply(spark, tmp_path, rows)
    version = spark.sql(f"DESCRIBE HISTORY delta.`{tmp_path / 'target'}`").count()
    state = _apply(spark, tmp_path, rows)
    assert {k: v["v"] for k, v in state.items()} == {"a": "x", "b": "y"}
    history = spark.sql(f"DESCRIBE HISTORY delta.`{tmp_path / 'target'}` LIMIT 1").first()
    metrics = history.operationMetrics
    assert history.version == version  # one more MERGE commit ...
    assert int(metrics["numTargetRowsUpdated"]) == 0 and int(metrics["numTargetRowsInserted"]) == 0


def test_deletes_remove_rows_and_keep_a_tombstone(spark, tmp_path):
    flow = _flow(apply_as_deletes=F.expr("op = 'D'"))
    _apply(spark, tmp_path, [("a", "x", 1, "u"), ("b", "y", 1, "u")], flow)
    state = _apply(spark, tmp_path, [("a", None, 2, "D")], flow)
    assert set(state) == {"b"}
    # An older upsert arriving after the delete must not bring the row back.
    state = _apply(spark, tmp_path, [("a", "late", 1, "u"), ("c", None, 5, "D")], flow)
    assert set(state) == {"b"}
    # A newer upsert does.
    state = _apply(spark, tmp_path, [("a", "back", 3, "u")], flow)
    assert state["a"]["v"] == "back"


def test_column_list_and_except_column_list(spark, tmp_path):
    only = _apply(spark, tmp_path / "one", [("a", "x", 1, "u")], _flow(column_list=["k", "v"]))
    assert set(only["a"]) == {"k", "v", SEQUENCE_COLUMN}
    without = _apply(
        spark, tmp_path / "two", [("a", "x", 1, "u")], _flow(except_column_list=["op"])
    )
    assert set(without["a"]) == {"k", "v", "seq", SEQUENCE_COLUMN}


def test_null_keys_are_skipped(spark, tmp_path):
    state = _apply(spark, tmp_path, [(None, "x", 1, "u"), ("a", "y", 1, "u")])
    assert set(state) == {"a"}


changes = st.lists(
    st.tuples(st.sampled_from("abcd"), st.integers(0, 5), st.integers(0, 20)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(changes, min_size=1, max_size=3))
def test_matches_a_plain_python_scd1_model(spark, tmp_path_factory, batches):
    tmp = tmp_path_factory.mktemp("prop")
    model: dict[str, tuple[int, int]] = {}  # key -> (seq, tiebreak)
    ingest = 0
    for batch in batches:
        rows = []
        for key, value, seq in batch:
            ingest += 1
            rows.append((key, f"{value}", seq, ingest))
            if key not in model or (seq, ingest) > model[key][:2]:
                model[key] = (seq, ingest, f"{value}")
        frame = spark.createDataFrame(rows, "k string, v string, seq int, n int")
        apply_batch(spark, frame, _flow(sequence_by=F.struct("seq", "n")), tmp / "t", tmp / "x", {})
    table = spark.read.format("delta").load(str(tmp / "t"))
    assert {r.k: r.v for r in table.collect()} == {k: v[2] for k, v in model.items()}


def test_every_change_lands_in_one_bucket(spark, tmp_path):
    """Where a batch's rows went adds up: a keyless row, a change collapsed into a later one
    of its key, an older change the target's row wins over, a delete (its row gone), a delete
    of a key the target never held, an insert and an update."""
    flow = _flow(apply_as_deletes=F.expr("op = 'D'"))
    schema = "k string, v string, seq int, op string"

    def apply(rows):
        return apply_batch(spark, spark.createDataFrame(rows, schema), flow, tmp_path / "t",
                           tmp_path / "x", {})

    first = apply([("a", "a1", 5, "u"), ("b", "b1", 5, "u"), ("c", "c1", 5, "u")])
    assert first.accounting()["num_inserted_rows"] == 3
    second = apply([
        (None, "n", 9, "u"),                        # no key
        ("a", "old", 4, "u"),                       # older than the stored a
        ("b", "b2", 6, "u"), ("b", "b3", 7, "u"),   # b2 collapses into b3, an update
        ("c", None, 6, "D"),                        # deletes c
        ("d", None, 6, "D"),                        # a delete of a key never held
        ("e", "e1", 1, "u"),                        # an insert
    ])
    assert second.accounting() == {
        "num_null_key_rows": 1, "num_truncated_rows": 0, "num_collapsed_rows": 1,
        "num_ignored_rows": 2, "num_inserted_rows": 1, "num_updated_rows": 1,
        "num_deleted_rows": 1,
    }
    assert second.rows == 7 == sum(second.accounting().values())
    # An upsert older than c's tombstone is ignored too, before the MERGE.
    third = apply([("c", "late", 5, "u")])
    assert (third.accounting()["num_ignored_rows"], third.rows) == (1, 1)


def test_the_direct_path_keeps_the_sessions_own_excluded_rules(spark):
    """Leaving out the empty-relation rule during an upsert adds it to the rules the user
    already left out, and names it once."""
    from orderlake.engine.run.autocdc import (
        _EMPTY_RELATION_RULE,
        _EXCLUDED_RULES,
        _empty_joins_kept,
    )

    key = _EXCLUDED_RULES
    mine = "org.apache.spark.sql.execution.adaptive.AQEOptimizer"  # any rule name
    spark.conf.set(key, mine)
    try:
        rules = _empty_joins_kept(spark)[key].split(",")
        assert rules == [mine, _EMPTY_RELATION_RULE]
        spark.conf.set(key, ",".join(rules))
        assert _empty_joins_kept(spark)[key].split(",") == rules
    finally:
        spark.conf.unset(key)
    assert _empty_joins_kept(spark)[key] == _EMPTY_RELATION_RULE
