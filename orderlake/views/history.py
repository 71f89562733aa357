"""The pipeline's updates as the event log tells them: state, duration, files, rows, checks.

`show`, `report` and `run --strict` all read the same summary, so they agree; no Spark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orderlake.engine.run.accounting import breakdown
from orderlake.engine.run.eventlog import EventLog


def event_log(warehouse: Path) -> EventLog:
    return EventLog(Path(warehouse) / "_orderlake" / "event_log.jsonl", "")


@dataclass
class FlowSummary:
    flow: str
    rows_in: int | None = None
    rows_out: int = 0
    metrics: dict[str, int] = field(default_factory=dict)
    dropped: int | None = None
    expectations: list[dict[str, Any]] = field(default_factory=list)
    # AUTO CDC: where the rows in went, label -> rows, adding up to rows_in (accounting.py)
    rows_went: dict[str, int] | None = None


@dataclass
class UpdateSummary:
    update_id: str
    state: str = "RUNNING"
    started: str | None = None
    ended: str | None = None
    seconds: float | None = None
    full_refresh: bool = False
    error: str | None = None
    files_loaded: int = 0
    files_empty: int = 0
    files_rejected: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    # each file the update listed: file, outcome, source (its path when loaded), moved_to
    files: list[dict[str, Any]] = field(default_factory=list)
    bronze_rows: int = 0
    quarantined: int = 0
    flows: list[FlowSummary] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def updates(warehouse: Path, events: list[dict[str, Any]] | None = None) -> list[UpdateSummary]:
    """Every update in the log, oldest first."""
    found: dict[str, UpdateSummary] = {}
    for event in event_log(warehouse).events() if events is None else events:
        update_id = (event.get("origin") or {}).get("update_id")
        if update_id is None:
            continue
        summary = found.setdefault(update_id, UpdateSummary(update_id))
        kind = event.get("event_type")
        details = (event.get("details") or {}).get(kind) or {}
        if kind == "update_progress":
            state = details.get("state", summary.state)
            if state == "RUNNING":
                summary.started = event.get("timestamp")
                summary.full_refresh = bool(details.get("full_refresh"))
            else:
                summary.ended = event.get("timestamp")
                summary.seconds = details.get("seconds") or _seconds(summary.started, summary.ended)
                summary.error = details.get("error") or details.get("reason")
            summary.state = state
        elif kind == "flow_progress":
            _add_flow(summary, event["origin"].get("flow_name") or "?", details)
    return sorted(found.values(), key=lambda u: int(u.update_id))


def _add_flow(summary: UpdateSummary, name: str, details: dict[str, Any]) -> None:
    metrics = dict(details.get("metrics") or {})
    quality = details.get("data_quality") or {}
    flow = FlowSummary(
        name,
        rows_in=metrics.get("num_input_rows"),
        rows_out=int(metrics.get("num_output_rows", 0)),
        metrics=metrics,
        dropped=quality.get("dropped_records"),
        expectations=list(quality.get("expectations") or []),
    )
    parts = breakdown(metrics)
    flow.rows_went = None if parts is None else dict(parts)
    summary.flows.append(flow)
    if "num_files_loaded" in metrics:  # an Auto Loader flow
        summary.files_loaded += int(metrics.get("num_files_loaded", 0))
        summary.files_empty += int(metrics.get("num_files_empty", 0))
        summary.files_rejected += int(metrics.get("num_files_rejected", 0))
        summary.bronze_rows += flow.rows_out
        summary.rejected.extend(details.get("rejected_files") or [])
        summary.files.extend(details.get("files") or [])
    if flow.dropped:
        summary.quarantined = max(summary.quarantined, int(flow.dropped))


def definitions(
    warehouse: Path, events: list[dict[str, Any]] | None = None
) -> tuple[dict[str, dict], list[dict]]:
    """(datasets, flows) as the newest update that recorded its graph declared them."""
    datasets: dict[str, dict] = {}
    flows: list[dict] = []
    newest = None
    for event in event_log(warehouse).events() if events is None else events:
        kind = event.get("event_type")
        if kind not in ("dataset_definition", "flow_definition"):
            continue
        update_id = event["origin"].get("update_id")
        if update_id != newest:  # a newer update's graph replaces the older one
            newest, datasets, flows = update_id, {}, []
        details = event["details"][kind]
        if kind == "dataset_definition":
            datasets[details["dataset_name"]] = details
        else:
            flows.append({"flow_name": event["origin"].get("flow_name"), **details})
    return datasets, flows
