"""Counts that add up, on generated data with known invalid rows, duplicates, changes older
than the target and updates: the update's figures, its event, `show` and `events` agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from orderlake.engine.run.accounting import accounted
from orderlake.synthetic import generate_order_files
from orderlake.views.history import event_log

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderlake.cli", *args], capture_output=True, text=True,
        timeout=300, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def _metrics(warehouse: Path, update: int, flow: str = "orders_target") -> dict:
    [event] = [
        e for e in event_log(warehouse).events()
        if e["event_type"] == "flow_progress" and e["origin"]["update_id"] == str(update)
        and e["origin"]["flow_name"] == flow
    ]
    return event["details"]["flow_progress"]["metrics"]


def test_rows_in_add_up_across_a_first_load_and_a_merge(tmp_path, make_pipeline, spark):
    source = tmp_path / "volume" / "source"
    first = generate_order_files(source, rows=400, files=2, invalid_ratio=0.05,
                                 duplicate_ratio=0.05, seed=1, name_prefix="a")
    pipeline = make_pipeline()
    one = pipeline.update().flow("orders_target")
    keys = sorted(first.expected)
    valid = 400 - first.counts["invalid"]
    assert first.counts["invalid"] > 0 and first.counts["duplicate"] > 0
    expected_one = {
        "num_input_rows": 400, "num_quarantined_rows": first.counts["invalid"],
        "num_collapsed_rows": valid - len(keys), "num_ignored_rows": 0,
        "num_inserted_rows": len(keys), "num_updated_rows": 0, "num_deleted_rows": 0,
    }
    logged = _metrics(pipeline.warehouse_path, 1)
    assert {k: logged[k] for k in expected_one} == expected_one
    assert {k: one.extra.get(k, one.input_rows) for k in expected_one} == expected_one
    assert accounted(logged) == 400

    # One update, two files: changes to half the keys dated before the first load (older than
    # the target holds: ignored) and to the other half dated after it (updates); new keys.
    half = len(keys) // 2
    older = generate_order_files(source, rows=200, files=1, invalid_ratio=0.05, seed=2,
                                 name_prefix="b", existing_keys=keys[:half],
                                 start=datetime(2025, 6, 1, tzinfo=UTC))
    newer = generate_order_files(source, rows=200, files=1, invalid_ratio=0.05, seed=3,
                                 name_prefix="c", existing_keys=keys[half:], start=first.end)
    pipeline.update()
    touched_old, touched_new = set(older.expected), set(newer.expected)
    ignored = touched_old & set(keys[:half])
    updated = touched_new & set(keys[half:])
    inserted = (touched_old - ignored) | (touched_new - updated)
    invalid = older.counts["invalid"] + newer.counts["invalid"]
    assert ignored and updated and inserted
    expected_two = {
        "num_input_rows": 400, "num_quarantined_rows": invalid,
        "num_collapsed_rows": 400 - invalid - len(touched_old) - len(touched_new),
        "num_ignored_rows": len(ignored), "num_inserted_rows": len(inserted),
        "num_updated_rows": len(updated), "num_deleted_rows": 0,
    }
    logged = _metrics(pipeline.warehouse_path, 2)
    assert {k: logged[k] for k in expected_two} == expected_two
    assert accounted(logged) == 400
    target = spark.read.format("delta").load(str(pipeline.table_path("orders_target")))
    assert target.count() == len(keys) + len(inserted)

    # show --json, show and events print the same buckets, never a dict
    where = ["--volume", str(tmp_path / "volume"), "--warehouse", str(tmp_path / "warehouse")]
    shown = json.loads(_cli("show", "--json", *where).stdout)
    [flow] = [f for f in shown["updates"][-1]["flows"] if f["flow"] == "orders_target"]
    assert flow["rows_went"] == {
        "quarantined": invalid, "collapsed into a later change": expected_two[
            "num_collapsed_rows"], "ignored as older": len(ignored),
        "inserted": len(inserted), "updated": len(updated), "deleted": 0,
    }
    line = (
        f"400 rows in = {invalid} quarantined + {expected_two['num_collapsed_rows']} collapsed "
        f"into a later change + {len(ignored)} ignored as older + {len(inserted)} inserted + "
        f"{len(updated)} updated + 0 deleted"
    )
    text = _cli("show", *where).stdout
    assert f"flow orders_target: {line}" in text and "{" not in text
    events = _cli("events", "--type", "flow_progress", "--update", "2",
                  "--warehouse", str(tmp_path / "warehouse")).stdout
    assert f"orders_target: {line}" in events and "{" not in events
