"""`orderlake quarantine`: the rows the drop rules held back, as the client sent them.

Read from the quarantine table's Parquet files with pyarrow (the table is append-only: no
deletion vectors to apply), so a look takes no JVM.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orderlake.views.delta_snapshot import read_rows, snapshot
from orderlake.views.history import event_log
from orderlake.views.locations import file_moves, move_of, where_now

QUARANTINE_TABLE = "orders_quarantine"


def row_text(row: dict[str, Any], columns: list[str]) -> str:
    """The row as text: the rescued line when it did not parse, else its fields as CSV
    (in the contract's column order; the client's own order is not stored)."""
    if row.get("_rescued_data"):
        return str(row["_rescued_data"]).rstrip("\r\n")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(
        ["" if row.get(c) is None else row[c] for c in columns]
    )
    return buffer.getvalue()


def _contract_columns(schema: dict[str, Any] | None) -> list[str]:
    """The text-as-sent columns, in table order: every column not starting with `_` (the
    table's own; importing the contract would load pyspark)."""
    return [f["name"] for f in (schema or {}).get("fields", []) if not f["name"].startswith("_")]


def _file_name(source: str | None) -> str:
    return (source or "?").rsplit("/", 1)[-1]


def quarantined(
    warehouse: Path,
    rule: str | None = None,
    file: str | None = None,
    limit: int | None = None,
    events: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Quarantined rows, oldest load first: file, row number (1 = first row after the
    header), failed rules, text as sent, and where the file went (`moved_to`, as the event
    log recorded it) and is now (`now`: that path while the file is there, else None). `file`
    matches the file name or its full path."""
    snap = snapshot(Path(warehouse) / "tables" / QUARANTINE_TABLE)
    if snap is None:
        return []
    moves = file_moves(event_log(warehouse).events() if events is None else events)
    sent = _contract_columns(snap.schema)
    columns = [*sent, "_rescued_data", "_failed_rules", "_source_file", "_row_position",
               "_ingested_at"]
    found = []
    for row in read_rows(snap, columns):
        rules = list(row.get("_failed_rules") or [])
        source = row.get("_source_file") or ""
        if rule is not None and rule not in rules:
            continue
        if file is not None and file not in (source, _file_name(source)) and not source.endswith(
            "/" + file.lstrip("/")
        ):
            continue
        position = row.get("_row_position")
        move = move_of(moves, source, row.get("_ingested_at"))
        found.append(
            {
                "file": _file_name(source),
                "path": source,
                "moved_to": move.moved_to if move else None,
                "now": where_now(move),
                "row": None if position is None else int(position) + 1,
                "failed_rules": rules,
                "text": row_text(row, sent),
                "ingested_at": None if row.get("_ingested_at") is None
                else row["_ingested_at"].isoformat(),
            }
        )
    found.sort(key=lambda r: (r["ingested_at"] or "", r["path"], r["row"] or 0))
    return found if limit is None else found[:limit]


def render(rows: list[dict[str, Any]], total: int, out: Callable[[str], None]) -> None:
    if not rows:
        out("no quarantined row matches")
        return
    for row in rows:
        out(f"{row['file']} row {row['row']}: failed {', '.join(row['failed_rules'])}")
        out(f"  {row['text']}")
        if row["now"]:
            out(f"  file now at {row['now']}")
        elif row["moved_to"]:
            out(f"  file moved to {row['moved_to']}, no longer there (moved or deleted since)")
    if total > len(rows):
        out(f"({len(rows)} of {total} rows shown; --limit N shows more)")
