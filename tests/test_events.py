"""`orderlake events`: the event log as a table, without a JVM; the same file is a table for
Spark too (`spark.read.json`), as Databricks' `event_log()` is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _events(built: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderlake.cli", "events", "--warehouse", str(built["warehouse"]),
         *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def test_events_filters_and_prints_json_lines_spark_reads_too(built_warehouse, spark):
    log = built_warehouse["warehouse"] / "_orderlake" / "event_log.jsonl"
    stored = [json.loads(line) for line in log.read_text().splitlines()]
    every = _events(built_warehouse, "--json", "--limit", "0")
    assert every.returncode == 0, every.stderr
    assert [json.loads(line) for line in every.stdout.splitlines()] == stored

    frame = spark.read.json(str(log))
    assert frame.count() == len(stored)
    progress = frame.where("event_type = 'flow_progress' AND origin.flow_name = 'orders_target'")
    assert sorted(
        (r.update_id, r.num_input_rows, r.num_updated_rows)
        for r in progress.select("origin.update_id", "details.flow_progress.metrics.*").collect()
    ) == [("1", 4, 0), ("2", 2, 1)]

    done = _events(built_warehouse, "--type", "update_progress", "--update", "2", "--json")
    states = [json.loads(line)["details"]["update_progress"]["state"]
              for line in done.stdout.splitlines()]
    assert states == ["RUNNING", "COMPLETED"]

    text = _events(built_warehouse, "--flow", "orders_bronze", "--type", "flow_progress")
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["timestamp", "(UTC)", "update", "event_type", "level", "flow:",
                                "what"]
    assert [line.split(None, 4)[1:4] for line in lines[1:]] == [
        ["1", "flow_progress", "INFO"], ["2", "flow_progress", "INFO"]
    ]
    assert lines[1].endswith("orders_bronze: 4 rows from 1 file(s); 1 empty, 1 rejected")
    last = _events(built_warehouse, "--limit", "1").stdout.splitlines()
    assert re.search(r"\s2\s+update_progress\s+INFO\s+COMPLETED in \d+\.\ds$", last[1]), last
    assert last[-1].startswith("(1 of ") and "--limit 0 shows all" in last[-1]
    none = _events(built_warehouse, "--update", "99")
    assert none.returncode == 0 and none.stdout.strip() == "no event matches"
