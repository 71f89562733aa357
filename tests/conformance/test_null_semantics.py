"""A constraint that evaluates to NULL counts as failed, the same way on every path."""

from __future__ import annotations

from orderlake.engine.dp.graph import Expectation
from orderlake.engine.run.expectations import enforce
from orderlake.rules import null_fails
from orderlake.transforms import passes


def test_a_null_constraint_result_counts_as_failed_everywhere(spark):
    """https://docs.databricks.com/aws/en/ldp/expectations (a constraint is a SQL boolean
    expression; this project counts a NULL result as failed, and hands Databricks the same
    wrapped SQL, so a row with a NULL amount fails `amount > 0` locally and on Databricks)."""
    rows = spark.createDataFrame([(1, None), (2, 5)], "id INT, amount INT")
    constraint = "amount > 0"

    # the SQL handed to dp.expect_all* (rules.py)
    as_sql = rows.selectExpr("id", f"{null_fails(constraint)} AS ok").collect()
    assert {r.id: r.ok for r in as_sql} == {1: False, 2: True}

    # the quarantine's rule columns (transforms.py)
    as_column = rows.select("id", passes(constraint).alias("ok")).collect()
    assert {r.id: r.ok for r in as_column} == {1: False, 2: True}
    # wrapping twice (rules.drop is wrapped already) changes nothing
    twice = rows.select("id", passes(null_fails(constraint)).alias("ok")).collect()
    assert {r.id: r.ok for r in twice} == {1: False, 2: True}

    # the local engine's expectations (engine/run/expectations.py)
    checked = enforce(rows, [Expectation("positive", constraint, "drop")], "t")
    assert [r.id for r in checked.kept.collect()] == [2]
    assert checked.report().counts == {"positive": (1, 1)}
    assert checked.report().dropped == 1
