"""`show` and `quarantine` as a user runs them, on a warehouse real updates wrote: the figures
match what Spark reads from the same Delta tables, and no JVM (nor pyspark) is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "orderlake.cli", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )


def _where(built: dict) -> list[str]:
    return ["--volume", str(built["volume"]), "--warehouse", str(built["warehouse"])]


def test_show_json_counts_match_spark(built_warehouse, spark):
    shown = _cli("show", "--json", *_where(built_warehouse))
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    tables = built_warehouse["warehouse"] / "tables"
    counts = {t["name"]: t["rows"] for t in data["tables"]}
    for name in ("orders_bronze", "orders_quarantine", "orders_target"):
        assert counts[name] == spark.read.format("delta").load(str(tables / name)).count(), name
    # the second update's MERGE replaced TRK00000001 (a deletion vector hides the old row)
    assert counts["orders_target"] == 2
    assert data["files"] == {"source": 0, "archive": 3, "rejected": 1}
    assert [r["file"] for r in data["rejected_files"]] == ["broken.csv"]
    first, second = data["updates"]
    assert (first["state"], second["state"]) == ("COMPLETED", "COMPLETED")
    assert first["files_rejected"] == 1 and first["bronze_rows"] == 4
    volume = built_warehouse["volume"]
    assert {(f["file"], f["outcome"], f["moved_to"]) for f in first["files"]} == {
        ("day1.csv", "loaded", str(volume / "archive" / "day1.csv")),
        ("header_only.csv", "empty", str(volume / "archive" / "header_only.csv")),
        ("broken.csv", "rejected", str(volume / "rejected" / "broken.csv")),
    }
    [target] = [f for f in first["flows"] if f["flow"] == "orders_target"]
    assert target["rows_in"] == 4 and target["rows_went"]["quarantined"] == 2
    assert target["rows_went"]["inserted"] == 2 and sum(target["rows_went"].values()) == 4
    # header_only.csv is archived and counted as empty, not as loaded
    assert (first["files_loaded"], first["files_empty"]) == (1, 1)
    assert first["quarantined"] == 2 and second["quarantined"] == 1
    assert second["bronze_rows"] == 2 and second["seconds"] > 0
    rules = {
        r["name"]: (r["passed_records"], r["failed_records"])
        for f in second["flows"] for r in f["expectations"]
    }
    assert rules["order_id_present"] == (1, 1)
    reasons = data["quarantine_reasons"]
    assert (reasons["amount_not_negative"], reasons["order_id_present"]) == (1, 1)
    assert reasons["well_formed_row"] == 1


def test_show_text_names_tables_updates_and_rules(built_warehouse):
    shown = _cli("show", *_where(built_warehouse))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "orders_target                   2 rows" in out
    assert "rejected broken.csv:" in out
    assert "update 2: COMPLETED" in out
    assert "1 file(s) loaded, 1 empty, 1 rejected, 4 rows into bronze" in out
    archive = built_warehouse["volume"] / "archive"
    assert f"day2.csv: loaded, now {archive / 'day2.csv'}" in out
    # the last update's AUTO CDC flow: its rows in, bucket by bucket
    assert ("flow orders_target: 2 rows in = 1 quarantined + 0 collapsed into a later change"
            " + 0 ignored as older + 0 inserted + 1 updated + 0 deleted") in out
    assert "{" not in out
    assert "quarantined for amount_not_negative: 1" in out
    assert "order_id_present" in out and "failed        1" in out


def test_show_loads_no_spark(built_warehouse):
    """The look-up commands read files only: neither pyspark nor databricks-sdk is imported
    (so `events`, like `show`, answers in well under a second)."""
    code = (
        "import sys, io, contextlib\n"
        "from orderlake.cli import main\n"
        f"args = {_where(built_warehouse)!r}\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main(['show', *args]), main(['quarantine', '--warehouse', args[3]]),\n"
        "             main(['report', *args]), main(['events', '--warehouse', args[3]])]\n"
        "heavy = {'pyspark', 'py4j', 'databricks'}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "print(codes, heavy)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[0, 0, 0, 0] []"


def test_quarantine_lists_rows_as_sent(built_warehouse):
    listed = _cli("quarantine", "--json", "--warehouse", str(built_warehouse["warehouse"]))
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["total"] == 3
    by_key = {(r["file"], r["row"]): r for r in data["rows"]}
    negative = by_key[("day1.csv", 3)]
    assert negative["failed_rules"] == ["amount_not_negative"]
    assert negative["text"] == built_warehouse["lines"]["day1.csv"][2]
    # `path` is where the row was loaded from (`_source_file`); `now` where the file is today
    volume = built_warehouse["volume"]
    assert negative["path"].endswith("/source/day1.csv")
    assert negative["now"] == str(volume / "archive" / "day1.csv")
    assert by_key[("day2.csv", 2)]["now"] == str(volume / "archive" / "day2.csv")
    text = _cli("quarantine", "--file", "day2.csv", "--warehouse",
                str(built_warehouse["warehouse"])).stdout
    assert f"file now at {volume / 'archive' / 'day2.csv'}" in text
    assert "well_formed_row" in by_key[("day1.csv", 4)]["failed_rules"]
    assert by_key[("day2.csv", 2)]["failed_rules"] == ["order_id_present"]


def test_quarantine_filters_by_rule_and_file_and_limits(built_warehouse):
    where = ["--warehouse", str(built_warehouse["warehouse"])]
    by_rule = json.loads(_cli("quarantine", "--json", "--rule", "order_id_present", *where).stdout)
    assert [(r["file"], r["row"]) for r in by_rule["rows"]] == [("day2.csv", 2)]
    by_file = json.loads(_cli("quarantine", "--json", "--file", "day1.csv", *where).stdout)
    assert {r["file"] for r in by_file["rows"]} == {"day1.csv"} and by_file["total"] == 2
    limited = _cli("quarantine", "--limit", "1", *where)
    assert limited.returncode == 0
    assert "(1 of 3 rows shown; --limit N shows more)" in limited.stdout
    none = _cli("quarantine", "--rule", "no_such_rule", *where)
    assert none.returncode == 0 and "no quarantined row matches" in none.stdout
