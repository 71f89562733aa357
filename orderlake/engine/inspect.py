"""`orderlake show`: what is in the volume folders, the tables, and the last update's checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orderlake.engine.eventlog import EventLog
from orderlake.engine.files import list_source


def _files(volume: Path, out: Callable[[str], None]) -> None:
    for folder in ("source", "archive", "rejected"):
        files = [f for f in list_source(volume / folder) if not f.relpath.endswith(".error.txt")]
        out(f"  {folder + '/':10} {len(files):6} file(s)")
    for report in sorted((volume / "rejected").rglob("*.error.txt")):
        reason = next(
            (line[10:] for line in report.read_text().splitlines() if line.startswith("rejected:")),
            "?",
        )
        out(f"    rejected {report.name[: -len('.error.txt')]}: {reason.strip()}")


def _last_update(events: EventLog, out: Callable[[str], None]) -> None:
    update_id = events.last_update_id()
    if update_id is None:
        out("  no update has run yet")
        return
    mine = [e for e in events.events() if e["origin"]["update_id"] == update_id]
    state = next(
        (
            e["details"]["update_progress"]["state"]
            for e in reversed(mine)
            if e["event_type"] == "update_progress"
        ),
        "?",
    )
    out(f"  update {update_id}: {state}")
    for event in mine:
        if event["event_type"] == "update_progress" and event["level"] == "ERROR":
            out(f"    error: {event['details']['update_progress'].get('error')}")
        if event["event_type"] != "flow_progress":
            continue
        details = event["details"]["flow_progress"]
        metrics = details.get("metrics", {})
        out(f"    flow {event['origin']['flow_name']}: {metrics}")
        quality = details.get("data_quality")
        if quality:
            out(f"      dropped rows: {quality['dropped_records']}")
            for rule in quality["expectations"]:
                out(
                    f"      {rule['name']:24} passed {rule['passed_records']:>10,}  "
                    f"failed {rule['failed_records']:>8,}"
                )


def show(volume: Path, warehouse: Path, rows: int, out: Callable[[str], None]) -> None:
    from pyspark.sql import functions as F

    from orderlake.engine.delta_log import is_delta_table
    from orderlake.engine.session import get_spark

    out(f"volume {volume}")
    _files(volume, out)
    out(f"last update ({warehouse})")
    _last_update(EventLog(warehouse / "_orderlake" / "event_log.jsonl", ""), out)
    spark = get_spark()
    tables = warehouse / "tables"
    out("tables")
    for path in sorted(p for p in tables.glob("*") if not p.name.startswith("__")):
        if not is_delta_table(path):
            continue
        frame = spark.read.format("delta").load(str(path))
        out(f"  {path.name:20} {frame.count():>12,} rows")
        if "_failed_rules" in frame.columns:
            reasons = (
                frame.select(F.explode("_failed_rules").alias("rule"))
                .groupBy("rule")
                .count()
                .orderBy(F.desc("count"))
                .collect()
            )
            for reason in reasons:
                out(f"    quarantined for {reason['rule']}: {reason['count']:,}")
        if rows and path.name.endswith("target"):
            visible = [c for c in frame.columns if not c.startswith("__")]
            for row in frame.select(*visible).orderBy(F.desc("last_updated")).limit(rows).collect():
                out(
                    "    " + ", ".join(f"{k}={v}" for k, v in row.asDict().items() if v is not None)
                )
