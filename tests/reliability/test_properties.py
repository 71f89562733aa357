"""Property-based: random interleavings of new rows, updates, out-of-order, equal-sequence,
duplicate and invalid events, over several files and updates, against a plain SCD1 model.

All examples share one warehouse (a fresh one per example would cost a pipeline start each);
each example uses its own keys, so its slice of the tables is compared with its own model.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from .conftest import long_run
from .harness import HEADER, csv_line, make_volume

STATUSES = ["CREATED", "PICKED_UP", "IN_TRANSIT", "DELIVERED", "RETURNED"]
BASE = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

# One event: (key index, sequence step, status index, rendering, kind)
event = st.tuples(
    st.integers(0, 2),  # few keys: many collisions
    st.integers(0, 4),  # few instants: many ties and out-of-order arrivals
    st.integers(0, len(STATUSES) - 1),
    st.integers(0, 3),  # how the instant is written
    st.sampled_from(["ok"] * 8 + ["invalid", "duplicate"]),
)
files = st.lists(st.lists(event, min_size=1, max_size=6), min_size=1, max_size=3)


def updates(longer: bool) -> st.SearchStrategy:
    return st.lists(files, min_size=1, max_size=3 if longer else 2)


_examples = itertools.count(1)


def render(step: int, style: int) -> str:
    """The same instant written four ways (equal sequences in different text)."""
    instant = BASE + timedelta(hours=step)
    if style == 0:
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return (instant + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    if style == 2:
        return instant.strftime("%Y-%m-%d %H:%M:%S")  # no zone: UTC
    return instant.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module")
def shared(spark, tmp_path_factory):
    from orderlake.engine.run.runner import LocalPipeline

    volume = make_volume(tmp_path_factory.mktemp("properties"))
    return volume, LocalPipeline(volume.root, volume.warehouse, spark=spark)


def _run_example(shared: Any, plan: list[list[list[tuple]]]) -> None:
    volume, pipeline = shared
    spark = pipeline.spark
    example = next(_examples)
    prefix = f"P{example:04d}"
    model: dict[str, tuple[datetime, str]] = {}
    rows_written = invalid = 0
    for u, update in enumerate(plan):
        for f, events in enumerate(update):
            lines: list[str] = []
            last_invalid = False
            for k, step, status, style, kind in events:
                key = f"{prefix}K{k}XX"
                if kind == "duplicate" and lines:
                    # An exact repeat of the row before: the model is unchanged by it.
                    lines.append(lines[-1])
                    invalid += last_invalid
                    continue
                last_invalid = kind == "invalid"
                amount = "bad" if kind == "invalid" else f"{step}.{status}0"
                lines.append(
                    csv_line(
                        tracking_num=key,
                        status=STATUSES[status],
                        amount=amount,
                        last_updated=render(step, style),
                    )
                )
                if kind == "invalid":
                    invalid += 1
                    continue
                instant = BASE + timedelta(hours=step)
                if key not in model or instant >= model[key][0]:
                    model[key] = (instant, STATUSES[status], amount)
            rows_written += len(lines)
            volume.drop(f"{prefix}_u{u}_f{f}.csv", "\n".join([HEADER, *lines]) + "\n")
        pipeline.update()

    mine = F.col("tracking_num").startswith(prefix)
    target = pipeline.spark.read.format("delta").load(
        str(volume.warehouse / "tables/orders_target")
    )
    got = {
        r.tracking_num: (r.ts, r.status, str(r.amount))
        for r in target.where(mine)
        .select("tracking_num", F.unix_micros("last_updated").alias("ts"), "status", "amount")
        .collect()
    }
    want = {
        k: ((t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1), s, a)
        for k, (t, s, a) in model.items()
    }
    assert got == want
    tables = volume.warehouse / "tables"
    bronze = spark.read.format("delta").load(str(tables / "orders_bronze")).where(mine).count()
    assert bronze == rows_written
    quarantine = spark.read.format("delta").load(str(tables / "orders_quarantine"))
    assert quarantine.where(mine).count() == invalid


def test_random_interleavings_match_the_scd1_model(shared, request):
    longer = long_run(request.config)

    @settings(
        max_examples=40 if longer else 3,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(plan=updates(longer))
    def check(plan: list[list[list[tuple]]]) -> None:
        _run_example(shared, plan)

    check()
