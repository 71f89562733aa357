"""AUTO CDC (create_auto_cdc_flow) semantics, each test named after the documented behaviour.

The `users` example is the one of the Databricks CDC page (SCD type 1, SCD type 1 with a
TRUNCATE, SCD type 2, SCD type 2 tracking history on every column but `city`), applied by the
engine's own code (`run/autocdc.apply_batch`) to real Delta tables.

Checked against the docs: the input rows (`USERS`, `TRUNCATE`) and the four output tables are
the page's, row for row. https://docs.databricks.com/aws/en/ldp/cdc is the page; its example
section was compared in a stored copy of the same page's translation,
https://docs.databricks.com/pt/delta-live-tables/cdc.html (© 2025: "Gerar dados de teste",
"Processar atualizações do SCD tipo 1/2"), whose tables are language-free. The English page's
own example section was not among the stored copies.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from orderlake.engine.dp.graph import AutoCdcFlow
from orderlake.engine.run.autocdc import END_AT, START_AT, BatchSize, apply_batch

USERS_SCHEMA = "userId int, name string, city string, operation string, sequenceNum long"
# The page's input records, in its order (https://docs.databricks.com/aws/en/ldp/cdc).
USERS = [
    (124, "Raul", "Oaxaca", "INSERT", 1),
    (123, "Isabel", "Monterrey", "INSERT", 1),
    (125, "Mercedes", "Tijuana", "INSERT", 2),
    (126, "Lily", "Cancun", "INSERT", 2),
    (123, None, None, "DELETE", 6),
    (125, "Mercedes", "Guadalajara", "UPDATE", 6),
    (125, "Mercedes", "Mexicali", "UPDATE", 5),
    (123, "Isabel", "Chihuahua", "UPDATE", 5),
]
# The page's optional last record ("uncomment to test TRUNCATE").
TRUNCATE = (None, None, None, "TRUNCATE", 3)


def _users_flow(**options) -> AutoCdcFlow:
    spec = {
        "name": "target",
        "target": "target",
        "source": "users",
        "keys": ["userId"],
        "sequence_by": F.col("sequenceNum"),
        "apply_as_deletes": F.expr("operation = 'DELETE'"),
        "column_list": None,
        "except_column_list": ["operation", "sequenceNum"],
    }
    spec.update(options)
    return AutoCdcFlow(**spec)


def _apply(spark, tmp: Path, flow: AutoCdcFlow, rows: list[tuple], schema: str = USERS_SCHEMA):
    batch = spark.createDataFrame(rows, schema)
    # A size as the engine passes it: its MERGE broadcasts the changes (test_autocdc.py checks
    # the same semantics without the broadcast)
    size = BatchSize(rows=len(rows), size=0)
    return apply_batch(spark, batch, flow, tmp / "target", tmp / "tombstones", {}, None, size=size)


def _rows(spark, tmp: Path, columns: list[str]) -> set[tuple]:
    table = spark.read.format("delta").load(str(tmp / "target"))
    return {tuple(r) for r in table.select(*columns).collect()}


SCD1_COLUMNS = ["userId", "name", "city"]
SCD2_COLUMNS = ["userId", "name", "city", START_AT, END_AT]


def test_users_example_scd_type_1(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/cdc (SCD type 1: the latest change per key,
    deletes applied, the out-of-order changes at sequence 5 lose to those at 6). The expected
    rows are the page's output table after the SCD type 1 example (checked, see the top)."""
    result = _apply(spark, tmp_path, _users_flow(), USERS)
    assert _rows(spark, tmp_path, SCD1_COLUMNS) == {
        (124, "Raul", "Oaxaca"),
        (125, "Mercedes", "Guadalajara"),
        (126, "Lily", "Cancun"),
    }
    # Every change in one bucket: 123 and 125 have a later change in the batch (2 each
    # collapsed); 123's latest is a DELETE of a key the empty target does not hold (ignored).
    assert result.accounting() == {
        "num_null_key_rows": 0, "num_truncated_rows": 0, "num_collapsed_rows": 4,
        "num_ignored_rows": 1, "num_inserted_rows": 3, "num_updated_rows": 0,
        "num_deleted_rows": 0,
    }
    assert result.rows == len(USERS) == sum(result.accounting().values())


def test_users_example_scd_type_1_with_truncate(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/cdc (apply_as_truncates: a TRUNCATE at sequence 3
    empties the table; only the changes sequenced after it remain). The page: "records 124 and
    126 are truncated due to the TRUNCATE operation at sequenceNum=3", leaving 125 (checked)."""
    flow = _users_flow(apply_as_truncates=F.expr("operation = 'TRUNCATE'"))
    result = _apply(spark, tmp_path, flow, [*USERS, TRUNCATE])
    assert _rows(spark, tmp_path, SCD1_COLUMNS) == {(125, "Mercedes", "Guadalajara")}
    # the TRUNCATE and the four changes before it; then 123 and 125 collapse to one each
    accounting = result.accounting()
    assert (accounting["num_truncated_rows"], accounting["num_null_key_rows"]) == (5, 0)
    assert (accounting["num_collapsed_rows"], accounting["num_ignored_rows"]) == (2, 1)
    assert accounting["num_inserted_rows"] == 1 and result.rows == 9


def test_truncate_in_a_later_batch_removes_the_older_rows_in_one_commit(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (apply_as_truncates: the CDC event is treated as a full table TRUNCATE)."""
    flow = _users_flow(apply_as_truncates=F.expr("operation = 'TRUNCATE'"))
    _apply(spark, tmp_path, flow, USERS[:4])
    log = tmp_path / "target" / "_delta_log"
    before = len(list(log.glob("*.json")))
    result = _apply(spark, tmp_path, flow, [TRUNCATE, (127, "Ana", "Puebla", "INSERT", 4)])
    assert _rows(spark, tmp_path, SCD1_COLUMNS) == {(127, "Ana", "Puebla")}
    # the stored rows it removed are not rows of the batch: counted apart
    assert (result.rows, result.truncated, result.inserted) == (2, 1, 1)
    assert (result.deleted, result.target_truncated) == (0, 4)
    assert len(list(log.glob("*.json"))) == before + 1


def test_users_example_scd_type_2(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/cdc (SCD type 2: every version kept, __START_AT
    and __END_AT from sequenceNum; a delete closes the current version). The expected rows are
    the page's seven-row output table after the SCD type 2 example (checked)."""
    _apply(spark, tmp_path, _users_flow(scd_type=2), USERS)
    assert _rows(spark, tmp_path, SCD2_COLUMNS) == {
        (123, "Isabel", "Monterrey", 1, 5),
        (123, "Isabel", "Chihuahua", 5, 6),
        (124, "Raul", "Oaxaca", 1, None),
        (125, "Mercedes", "Tijuana", 2, 5),
        (125, "Mercedes", "Mexicali", 5, 6),
        (125, "Mercedes", "Guadalajara", 6, None),
        (126, "Lily", "Cancun", 2, None),
    }


def test_users_example_scd_type_2_tracking_history_on_all_columns_but_city(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/cdc (track_history_except_column_list=["city"]:
    a change to city alone updates the current version in place). The expected rows are the
    page's output table for this example, "without the additional TRUNCATE record" (checked)."""
    _apply(
        spark, tmp_path, _users_flow(scd_type=2, track_history_except_column_list=["city"]), USERS
    )
    assert _rows(spark, tmp_path, SCD2_COLUMNS) == {
        (123, "Isabel", "Chihuahua", 1, 6),
        (124, "Raul", "Oaxaca", 1, None),
        (125, "Mercedes", "Guadalajara", 2, None),
        (126, "Lily", "Cancun", 2, None),
    }


def test_scd_type_2_start_and_end_have_the_type_of_sequence_by(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (__START_AT and __END_AT have the same data type as the sequence_by fields)."""
    _apply(spark, tmp_path, _users_flow(scd_type=2), USERS)
    schema = spark.read.format("delta").load(str(tmp_path / "target")).schema
    assert schema[START_AT].dataType.simpleString() == "bigint"
    assert schema[END_AT].dataType.simpleString() == "bigint"


def test_scd_type_2_out_of_order_changes_land_in_the_right_place_of_history(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/cdc (the pipeline handles data that arrives out
    of order: the sequence-5 changes arriving after those at 6 give the same history)."""
    flow = _users_flow(scd_type=2)
    late = [r for r in USERS if r[4] == 5]
    _apply(spark, tmp_path, flow, [r for r in USERS if r[4] != 5])
    _apply(spark, tmp_path, flow, late)
    expected = tmp_path / "expected"
    _apply(spark, expected, flow, USERS)
    assert _rows(spark, tmp_path, SCD2_COLUMNS) == _rows(spark, expected, SCD2_COLUMNS)


def test_scd_type_2_reapplying_a_batch_changes_nothing(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/cdc (exactly-once processing of the change feed:
    a replayed batch must not add versions)."""
    flow = _users_flow(scd_type=2)
    _apply(spark, tmp_path, flow, USERS)
    again = _apply(spark, tmp_path, flow, USERS)
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    assert len(_rows(spark, tmp_path, SCD2_COLUMNS)) == 7


def test_track_history_column_list_opens_versions_only_for_those_columns(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (track_history_column_list: history is tracked for the listed columns only)."""
    flow = _users_flow(scd_type=2, track_history_column_list=["city"])
    rows = [
        (1, "Ana", "Puebla", "INSERT", 1),
        (1, "Ana M.", "Puebla", "UPDATE", 2),  # name is not tracked: in place
        (1, "Ana M.", "Leon", "UPDATE", 3),  # city is: a new version
    ]
    _apply(spark, tmp_path, flow, rows)
    assert _rows(spark, tmp_path, SCD2_COLUMNS) == {
        (1, "Ana M.", "Puebla", 1, 3),
        (1, "Ana M.", "Leon", 3, None),
    }


@pytest.mark.parametrize("scd_type", [1, 2])
def test_ignore_null_updates_keeps_the_stored_values_of_null_columns(spark, tmp_path, scd_type):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (ignore_null_updates: columns with a null retain their existing values in the target;
    without it they are overwritten with null)."""
    first = [(1, "Ana", "Puebla", "INSERT", 1)]
    update = [(1, None, "Leon", "UPDATE", 2)]
    kept, nulled = tmp_path / "kept", tmp_path / "nulled"
    _apply(spark, kept, _users_flow(scd_type=scd_type, ignore_null_updates=True), first)
    _apply(spark, kept, _users_flow(scd_type=scd_type, ignore_null_updates=True), update)
    _apply(spark, nulled, _users_flow(scd_type=scd_type), first)
    _apply(spark, nulled, _users_flow(scd_type=scd_type), update)
    current = f"{END_AT} IS NULL" if scd_type == 2 else "true"

    def now(path: Path) -> tuple:
        table = spark.read.format("delta").load(str(path / "target"))
        return tuple(table.where(current).select("name", "city").first())

    assert now(kept) == ("Ana", "Leon")
    assert now(nulled) == (None, "Leon")


def test_ignore_null_updates_within_one_batch(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (ignore_null_updates applies change by change, also to changes of one batch; a delete in
    between starts the key afresh)."""
    flow = _users_flow(ignore_null_updates=True)
    rows = [
        (1, "Ana", "Puebla", "INSERT", 1),
        (1, None, "Leon", "UPDATE", 2),
        (2, "Bo", "Lima", "INSERT", 1),
        (2, None, None, "DELETE", 2),
        (2, None, "Cusco", "INSERT", 3),
    ]
    _apply(spark, tmp_path, flow, rows)
    assert _rows(spark, tmp_path, SCD1_COLUMNS) == {(1, "Ana", "Leon"), (2, None, "Cusco")}


def test_column_list_selects_the_target_columns(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (column_list: the subset of columns to include in the target table)."""
    flow = _users_flow(except_column_list=None, column_list=["userId", "name"])
    _apply(spark, tmp_path, flow, USERS)
    table = spark.read.format("delta").load(str(tmp_path / "target"))
    assert [c for c in table.columns if not c.startswith("__")] == ["userId", "name"]


def test_scd_type_2_column_list_and_deletes(spark, tmp_path):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (apply_as_deletes with SCD type 2: the delete closes the version, no row is removed)."""
    flow = _users_flow(scd_type=2, except_column_list=None, column_list=["userId", "city"])
    _apply(spark, tmp_path, flow, [(1, "Ana", "Puebla", "INSERT", 1)])
    _apply(spark, tmp_path, flow, [(1, None, None, "DELETE", 4)])
    table = spark.read.format("delta").load(str(tmp_path / "target"))
    assert table.columns == ["userId", "city", START_AT, END_AT]
    assert {tuple(r) for r in table.collect()} == {(1, "Puebla", 1, 4)}


@pytest.fixture
def graph(spark):
    from orderlake.engine.dp import api
    from orderlake.engine.dp.graph import PipelineGraph

    found = PipelineGraph()
    token = api._ACTIVE.set(found)
    yield found
    api._ACTIVE.reset(token)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stored_as_scd_type": 2, "apply_as_truncates": "op = 'T'"}, "SCD type 1"),
        ({"track_history_column_list": ["city"]}, "SCD type 2 only"),
        ({"stored_as_scd_type": 3}, "1 or 2"),
        ({"once": True}, "once="),
        ({"ignore_null_updates_column_list": ["city"]}, "ignore_null_updates_column_list="),
        (
            {
                "stored_as_scd_type": 2,
                "track_history_column_list": ["a"],
                "track_history_except_column_list": ["b"],
            },
            "not both",
        ),
    ],
)
def test_options_the_engine_cannot_honour_are_refused_when_the_definitions_load(
    graph, options, message
):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes
    (apply_as_truncates is supported only for SCD type 1; track_history_* for SCD type 2):
    what the local engine would not honour is a ConfigurationError, never ignored."""
    from orderlake.engine.dp import api
    from orderlake.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        api.create_auto_cdc_flow(
            target="t", source="s", keys=["userId"], sequence_by="sequenceNum", **options
        )
    assert graph.flows == []


def test_keys_and_column_lists_may_be_col_objects(graph):
    """https://docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-apply-changes (keys:
    a list of strings or of Spark SQL col() functions)."""
    from orderlake.engine.dp import api

    api.create_auto_cdc_flow(
        target="t",
        source="s",
        keys=[F.col("userId")],
        sequence_by=F.col("sequenceNum"),
        stored_as_scd_type="2",
        track_history_except_column_list=[F.col("city")],
    )
    flow = graph.flows[0]
    assert flow.keys == ["userId"] and flow.track_history_except_column_list == ["city"]
    assert flow.scd_type == 2
