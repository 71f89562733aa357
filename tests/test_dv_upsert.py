"""A small batch applied without MERGE (`run/dv_upsert.py`) leaves the target, the tombstones
and the counts exactly as a MERGE of the same batch does, on real Delta tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from orderlake.engine.delta_log import latest_version
from orderlake.engine.dp.graph import AutoCdcFlow
from orderlake.engine.run import autocdc, dv_upsert
from orderlake.engine.run.autocdc import BatchSize, apply_batch
from orderlake.engine.run.table_changes import commit_actions
from tests.test_autocdc import _flow as cdc_flow

DVS = {"delta.enableDeletionVectors": "true"}
SCHEMA = "k string, v string, w int, seq int, n int, op string"


def _flow(**options) -> AutoCdcFlow:
    """The flow of `test_autocdc`, with deletes and the operation column left out."""
    spec = {"apply_as_deletes": F.expr("op = 'D'"), "except_column_list": ["op"]}
    return cdc_flow(**{**spec, **options})


def _commit_info(table: Path, version: int) -> dict:
    return next(a["commitInfo"] for a in commit_actions(table, version) if "commitInfo" in a)


def _merges_run(table: Path) -> int:
    """Commits a Delta MERGE command made (it times its scan; the direct path has no scan)."""
    infos = [_commit_info(table, v) for v in range(latest_version(table) + 1)]
    return sum("scanTimeMs" in (i.get("operationMetrics") or {}) for i in infos)


def _rows(spark, table: Path) -> list[tuple]:
    return sorted(map(tuple, spark.read.format("delta").load(str(table)).collect()), key=repr)


def _apply_both(spark, tmp: Path, flow: AutoCdcFlow, batches: list[list[tuple]]) -> None:
    """Each batch into two targets: one by MERGE (no size known), one as a small batch. The
    tables and the counts must agree after every batch."""
    for rows in batches:
        frame = spark.createDataFrame(rows, SCHEMA)
        merged = apply_batch(spark, frame, flow, tmp / "merge", tmp / "merge_x", DVS)
        direct = apply_batch(
            spark, frame, flow, tmp / "direct", tmp / "direct_x", DVS, "tag",
            size=BatchSize(rows=len(rows), size=0),
        )
        assert direct.accounting() == merged.accounting(), rows
        assert _rows(spark, tmp / "direct") == _rows(spark, tmp / "merge"), rows
        if (tmp / "merge_x").exists():
            assert _rows(spark, tmp / "direct_x") == _rows(spark, tmp / "merge_x"), rows


changes = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", None]),
        st.sampled_from(["x", "y", None]),
        st.sampled_from([1, 2, None]),
        st.sampled_from([0, 1, 2, 3, None]),  # ties and NULL sequences
        st.integers(0, 3),
        st.sampled_from("UUUD"),
    ),
    min_size=1,
    max_size=10,
)


def _check_property(tmp: Path, spark, batches, ignore_nulls: bool, struct_sequence: bool,
                    compound: bool, few: bool):
    """`few`: the batch names its keys (a key lookup, DVs by the driver); otherwise the target
    is joined with the batch's keys and Delta's helper builds the DVs in a Spark job."""
    real = autocdc.KEY_FILTER_MAX_ROWS
    autocdc.KEY_FILTER_MAX_ROWS = real if few else 0
    try:
        _check_flow(tmp, spark, batches, ignore_nulls, struct_sequence, compound)
    finally:
        autocdc.KEY_FILTER_MAX_ROWS = real


def _check_flow(tmp: Path, spark, batches, ignore_nulls: bool, struct_sequence: bool,
                compound: bool):
    sequence = F.struct("seq", "n") if struct_sequence else F.col("seq")
    keys = ["k", "n"] if compound else ["k"]
    flow = _flow(keys=keys, sequence_by=sequence, ignore_null_updates=ignore_nulls,
                 except_column_list=["op", "seq"] if compound else ["op", "seq", "n"])
    _apply_both(spark, tmp, flow, batches)
    # Every batch after the first load went through the direct path, none through a MERGE;
    # both made a commit for the same batches (none for a batch that changes nothing).
    assert _merges_run(tmp / "direct") == 0
    assert latest_version(tmp / "direct") == latest_version(tmp / "merge")


# No shrinking: each example is a few Delta commits, and shrinking one took over five minutes.
_EXAMPLES = {"deadline": None, "suppress_health_check": list(HealthCheck),
             "phases": [Phase.explicit, Phase.reuse, Phase.generate]}
_CASES = {
    "batches": st.lists(changes, min_size=2, max_size=3),
    "ignore_nulls": st.booleans(),
    "struct_sequence": st.booleans(),
    "compound": st.booleans(),
    "few": st.booleans(),
}


@settings(max_examples=3, **_EXAMPLES)
@given(**_CASES)
def test_a_small_batch_without_merge_leaves_what_a_merge_leaves(
    spark, tmp_path_factory, batches, ignore_nulls, struct_sequence, compound, few
):
    tmp = tmp_path_factory.mktemp("dv")
    _check_property(tmp, spark, batches, ignore_nulls, struct_sequence, compound, few)


@pytest.mark.long
@settings(max_examples=60, **_EXAMPLES)
@given(**_CASES)
def test_many_small_batches_without_merge_leave_what_merges_leave(
    spark, tmp_path_factory, batches, ignore_nulls, struct_sequence, compound, few
):
    tmp = tmp_path_factory.mktemp("dv")
    _check_property(tmp, spark, batches, ignore_nulls, struct_sequence, compound, few)


@pytest.mark.parametrize("few", [True, False], ids=["driver DVs", "Spark DVs"])
def test_the_direct_commit_carries_the_tag_and_a_merges_history(
    spark, tmp_path, monkeypatch, few
):
    tmp_path = tmp_path / "a folder"  # file paths are URL-encoded in the log and in Spark
    if not few:
        monkeypatch.setattr(autocdc, "KEY_FILTER_MAX_ROWS", 0)
    flow = _flow()
    _apply_both(spark, tmp_path, flow, [
        [("a", "x", 1, 1, 0, "U"), ("b", "x", 1, 1, 0, "U"), ("c", "x", 1, 1, 0, "U")],
        [("a", "y", 2, 2, 0, "U"), ("b", None, None, 2, 0, "D"), ("d", "x", 1, 2, 0, "U"),
         ("c", "old", 1, 0, 0, "U")],
    ])
    table = tmp_path / "direct"
    assert (_merges_run(table), _merges_run(tmp_path / "merge")) == (0, 1)
    assert latest_version(table) == 1
    info = _commit_info(table, latest_version(table))
    assert info["operation"] == "MERGE" and info["userMetadata"] == "tag"
    metrics = info["operationMetrics"]
    assert (metrics["numTargetRowsInserted"], metrics["numTargetRowsUpdated"],
            metrics["numTargetRowsDeleted"], metrics["numSourceRows"]) == ("1", "1", "1", "4")
    # a and b were rows of stored files: those files now carry deletion vectors
    actions = commit_actions(table, latest_version(table))
    assert any((a.get("add") or {}).get("deletionVector") for a in actions)
    new_files = [a["add"] for a in actions if "add" in a and not a["add"].get("deletionVector")]
    assert len(new_files) == 1  # the new rows in one file, whatever the shuffle partitions


@pytest.mark.parametrize("few", [True, False], ids=["key lookup", "joined keys"])
def test_a_row_a_deletion_vector_removed_is_not_matched_again(spark, tmp_path, monkeypatch, few):
    """A key replaced twice keeps its first rows in their files, behind deletion vectors: a
    later change must meet only the live row (the key lookup reads the files themselves)."""
    if not few:
        monkeypatch.setattr(autocdc, "KEY_FILTER_MAX_ROWS", 0)
    _apply_both(spark, tmp_path, _flow(), [
        [("a", "x", 1, 1, 0, "U"), ("b", "x", 1, 1, 0, "U")],
        [("a", "y", 2, 2, 0, "U")],
        [("a", "z", 3, 3, 0, "U"), ("b", None, None, 3, 0, "D")],
        # older than the live row, newer than the replaced ones: changes nothing
        [("a", "older", 4, 2, 0, "U"), ("b", "older", 4, 2, 0, "U")],
    ])
    stored = spark.read.format("delta").load(str(tmp_path / "direct"))
    assert [(r.k, r.v) for r in stored.collect()] == [("a", "z")]


def test_a_batch_the_tombstones_drop_entirely_still_counts_its_rows(spark, tmp_path):
    """Found by the `--long` property test: the changes' cache filled by a join whose side
    came out empty, which adaptive execution replaced, losing the rows counted on the way."""
    batches = [[("a", "x", None, 2, 2, "D")], [("c", None, None, 3, 3, "U")],
               [("a", None, None, 1, 0, "U")]]  # older than a's tombstone
    _check_property(tmp_path, spark, batches, ignore_nulls=True, struct_sequence=False,
                    compound=False, few=False)


def test_a_batch_that_changes_nothing_makes_no_commit(spark, tmp_path):
    flow = _flow()
    rows = [("a", "x", 1, 5, 0, "U"), ("b", "x", 1, 5, 0, "U")]
    _apply_both(spark, tmp_path, flow, [rows])
    before = latest_version(tmp_path / "direct")
    _apply_both(spark, tmp_path, flow, [rows, [("a", "older", 1, 4, 0, "U")]])
    assert latest_version(tmp_path / "direct") == before


def test_a_target_without_deletion_vectors_is_left_to_a_merge(spark, tmp_path):
    flow = _flow()
    first = spark.createDataFrame([("a", "x", 1, 1, 0, "U")], SCHEMA)
    apply_batch(spark, first, flow, tmp_path / "t", tmp_path / "x", {})
    later = spark.createDataFrame([("a", "y", 1, 2, 0, "U")], SCHEMA)
    apply_batch(spark, later, flow, tmp_path / "t", tmp_path / "x", {}, size=BatchSize(1, 0))
    assert _merges_run(tmp_path / "t") == 1
    assert [r.v for r in spark.read.format("delta").load(str(tmp_path / "t")).collect()] == ["y"]


def test_a_target_whose_columns_differ_from_the_changes_is_left_to_a_merge(spark, tmp_path):
    """A MERGE casts the changes to the target's types; the direct path does not try."""
    flow = _flow(except_column_list=["op", "seq", "n"])
    first = spark.createDataFrame([("a", "x", 1, 1, 0, "U")], SCHEMA)
    apply_batch(spark, first, flow, tmp_path / "t", tmp_path / "x", DVS)
    wider = spark.createDataFrame([("a", "y", 7, 2, 0, "U")], SCHEMA.replace("w int", "w long"))
    changes = wider.select("k", "v", "w", F.col("seq").alias("__cdc_sequence"),
                           F.lit(False).alias("__cdc_delete"))
    applied = dv_upsert.upsert(spark, changes, ["k"], ["v", "w"], F.lit(True),
                               tmp_path / "t", "__cdc_sequence", "__cdc_delete", None)
    assert applied is None
    same = changes.withColumn("w", F.col("w").cast("int"))  # and with the target's types: applied
    assert dv_upsert.upsert(spark, same, ["k"], ["v", "w"], F.lit(True), tmp_path / "t",
                            "__cdc_sequence", "__cdc_delete", None) is not None
