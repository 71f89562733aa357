"""What the report shows, gathered from files alone: event log, Delta logs, the quarantine
table's Parquet files and the volume's rejected/ folder (no JVM)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orderlake.views.history import definitions, event_log, updates
from orderlake.views.quarantine import quarantined
from orderlake.views.show import rejected_files, tables

SAMPLES_PER_RULE = 5
MAX_UPDATES = 200


def _graph(events: list[dict], warehouse: Path, last: dict[str, Any] | None) -> dict[str, Any]:
    """Datasets (kind, rows) and edges (flow, kind, last update's rows in/out)."""
    datasets, flows = definitions(warehouse, events)
    rows = {t["name"]: t["rows"] for t in tables(warehouse)}
    flow_rows = {f["flow"]: f for f in (last or {}).get("flows", [])}
    nodes = [
        {"name": name, "kind": d.get("dataset_type", "?"), "rows": rows.get(name)}
        for name, d in datasets.items()
    ]
    edges = []
    for flow in flows:
        for source in flow.get("input_datasets") or []:
            if source.startswith("cloudFiles:"):
                name = "source files"
                if not any(n["name"] == name for n in nodes):
                    nodes.insert(0, {"name": name, "kind": "FILES", "rows": None,
                                     "path": source.split(":", 1)[1]})
                source = name
            progress = flow_rows.get(flow["flow_name"]) or {}
            edges.append(
                {
                    "source": source,
                    "target": flow["output_dataset"],
                    "flow": flow["flow_name"],
                    "kind": flow.get("flow_type", "?"),
                    "rows_in": progress.get("rows_in"),
                    "rows_out": progress.get("rows_out") if progress else None,
                }
            )
    return {"nodes": nodes, "edges": edges}


def _expectations(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Each rule's passed/failed per update: {"updates": [ids], "rules": {name: {...}}}."""
    ids = [u["update_id"] for u in history]
    rules: dict[str, dict[str, list[int | None]]] = defaultdict(
        lambda: {"passed": [None] * len(ids), "failed": [None] * len(ids)}
    )
    for i, update in enumerate(history):
        for flow in update["flows"]:
            for rule in flow["expectations"]:
                entry = rules[rule["name"]]
                entry["passed"][i] = (entry["passed"][i] or 0) + int(rule["passed_records"])
                entry["failed"][i] = (entry["failed"][i] or 0) + int(rule["failed_records"])
    return {"updates": ids, "rules": dict(rules)}


def _quarantine(warehouse: Path, events: list[dict]) -> dict[str, Any]:
    rows = quarantined(warehouse, events=events)
    reasons: dict[str, int] = defaultdict(int)
    samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        for rule in row["failed_rules"]:
            reasons[rule] += 1
            if len(samples[rule]) < SAMPLES_PER_RULE:
                samples[rule].append(row)
    ordered = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"total": len(rows), "reasons": ordered, "samples": dict(samples)}


def collect(volume: Path, warehouse: Path) -> dict[str, Any]:
    """Everything the page needs, JSON-ready."""
    events = event_log(warehouse).events()
    history = [u.as_json() for u in updates(warehouse, events)][-MAX_UPDATES:]
    last = history[-1] if history else None
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "volume": str(volume),
        "warehouse": str(warehouse),
        "graph": _graph(events, warehouse, last),
        "tables": tables(warehouse),
        "updates": history,
        "expectations": _expectations(history),
        "quarantine": _quarantine(warehouse, events),
        "rejected_files": rejected_files(volume),
    }
