"""`orderlake show`: the volume's folders, the tables' row counts, the recent updates and their
checks, from files alone (event log, Delta logs): no JVM, so it answers in well under a second.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orderlake.engine.autoloader.files import list_source
from orderlake.engine.run.accounting import sentence
from orderlake.views.delta_snapshot import SnapshotError, read_rows, snapshot
from orderlake.views.history import updates

REPORT_SUFFIX = ".error.txt"


def rejected_files(volume: Path) -> list[dict[str, str]]:
    """Each file in rejected/ with the reason its report gives."""
    found = []
    for report in sorted((Path(volume) / "rejected").rglob(f"*{REPORT_SUFFIX}")):
        fields = {}
        for line in report.read_text(encoding="utf-8", errors="replace").splitlines():
            name, sep, value = line.partition(":")
            if sep and name in ("file", "rejected", "update", "at"):
                fields[name] = value.strip()
        found.append(
            {
                "file": fields.get("file", report.name[: -len(REPORT_SUFFIX)]),
                "reason": fields.get("rejected", "?"),
                "update": fields.get("update", ""),
                "at": fields.get("at", ""),
            }
        )
    return found


def folder_counts(volume: Path) -> dict[str, int]:
    counts = {}
    for folder in ("source", "archive", "rejected"):
        files = list_source(Path(volume) / folder)
        counts[folder] = sum(1 for f in files if not f.relpath.endswith(REPORT_SUFFIX))
    return counts


def tables(warehouse: Path) -> list[dict[str, Any]]:
    """Every Delta table under `warehouse/tables` with its live row count (from the log)."""
    found = []
    root = Path(warehouse) / "tables"
    if not root.is_dir():
        return found
    for path in sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] not in "_."):
        try:
            snap = snapshot(path)
        except SnapshotError as exc:
            found.append({"name": path.name, "rows": None, "version": None, "error": str(exc)})
            continue
        if snap is not None:
            found.append({"name": path.name, "rows": snap.rows, "version": snap.version})
    return found


def quarantine_reasons(warehouse: Path, table: str = "orders_quarantine") -> dict[str, int]:
    """Quarantined rows per failed rule (a row failing two rules counts for both)."""
    snap = snapshot(Path(warehouse) / "tables" / table)
    if snap is None:
        return {}
    counts: Counter[str] = Counter()
    for row in read_rows(snap, ["_failed_rules"]):
        counts.update(row.get("_failed_rules") or [])
    return dict(counts.most_common())


def collect(volume: Path, warehouse: Path, last: int = 5) -> dict[str, Any]:
    """Everything `show` prints, as JSON-ready data (`show --json` prints exactly this)."""
    history = updates(warehouse)
    return {
        "volume": str(volume),
        "warehouse": str(warehouse),
        "files": folder_counts(volume),
        "rejected_files": rejected_files(volume),
        "tables": tables(warehouse),
        "quarantine_reasons": quarantine_reasons(warehouse),
        "updates": [u.as_json() for u in history[-last:]] if last else [],
    }


def render(data: dict[str, Any], out: Callable[[str], None]) -> None:
    """The text form of `collect`."""
    out(f"volume {data['volume']}")
    for folder, count in data["files"].items():
        out(f"  {folder + '/':10} {count:6} file(s)")
    for rejected in data["rejected_files"]:
        out(f"    rejected {rejected['file']}: {rejected['reason']}")
    out(f"tables ({data['warehouse']})")
    if not data["tables"]:
        out("  no table yet")
    for table in data["tables"]:
        rows = "?" if table["rows"] is None else f"{table['rows']:,}"
        out(f"  {table['name']:20} {rows:>12} rows")
        if table["name"].endswith("quarantine"):
            for rule, count in data["quarantine_reasons"].items():
                out(f"    quarantined for {rule}: {count:,}")
    if not data["updates"]:
        out("no update has run yet")
        return
    out("updates")
    for update in data["updates"]:
        seconds = "" if update["seconds"] is None else f" in {update['seconds']:.1f}s"
        out(
            f"  update {update['update_id']}: {update['state']}{seconds}, "
            f"{update['files_loaded']} file(s) loaded, {update['files_empty']} empty, "
            f"{update['files_rejected']} rejected, "
            f"{update['bronze_rows']:,} rows into bronze, {update['quarantined']:,} quarantined"
        )
        if update["error"]:
            out(f"    error: {update['error']}")
    _checks(data["updates"][-1], out)


FILES_SHOWN = 10


def _files(update: dict[str, Any], out: Callable[[str], None]) -> None:
    """Where each file of the update went (rows keep the path they were loaded from)."""
    files = update.get("files") or []
    if not files:
        return
    out(f"last update ({update['update_id']}): files, and where they are now")
    for record in files[:FILES_SHOWN]:
        gone = "" if Path(record["moved_to"]).exists() else " (no longer there)"
        out(f"  {record['file']}: {record['outcome']}, now {record['moved_to']}{gone}")
    if len(files) > FILES_SHOWN:
        out(f"  ... {len(files) - FILES_SHOWN} more (show --json lists them all)")


def _checks(update: dict[str, Any], out: Callable[[str], None]) -> None:
    _files(update, out)
    out(f"last update ({update['update_id']}): flows and checks")
    for flow in update["flows"]:
        rows_in = "" if flow["rows_in"] is None else f"{flow['rows_in']:,} rows in, "
        written = f"{rows_in}{flow['rows_out']:,} written"
        said = sentence(flow["rows_in"], flow["metrics"]) or written
        out(f"  flow {flow['flow']}: {said}")
        if flow["dropped"] is not None:
            out(f"    dropped rows: {flow['dropped']:,}")
        for rule in flow["expectations"]:
            out(
                f"    {rule['name']:24} passed {rule['passed_records']:>10,}  "
                f"failed {rule['failed_records']:>8,}"
            )
