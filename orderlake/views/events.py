"""`orderlake events`: the event log as a table, as Databricks' `event_log()` gives it.

The log is JSON Lines (`warehouse/_orderlake/event_log.jsonl`), one event per line with the
Databricks fields (id, timestamp, event_type, level, message, origin, details): read here with
`json` alone (no JVM), and by Spark as is (`spark.read.json(path)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orderlake.engine.run.accounting import sentence


def select(
    events: list[dict[str, Any]],
    update: str | None = None,
    event_type: str | None = None,
    flow: str | None = None,
    level: str | None = None,
) -> list[dict[str, Any]]:
    """The events matching every filter given, in log order."""
    found = []
    for event in events:
        origin = event.get("origin") or {}
        if update is not None and str(origin.get("update_id")) != str(update):
            continue
        if event_type is not None and event.get("event_type") != event_type:
            continue
        if flow is not None and origin.get("flow_name") != flow:
            continue
        if level is not None and str(event.get("level", "")).upper() != level.upper():
            continue
        found.append(event)
    return found


def _details(event: dict[str, Any]) -> dict[str, Any]:
    kind = event.get("event_type")
    return (event.get("details") or {}).get(kind) or {}


def summary(event: dict[str, Any]) -> str:
    """What an event says, in words: its figures spelled out, never a dict."""
    details = _details(event)
    kind = event.get("event_type")
    if kind == "flow_progress":
        metrics = details.get("metrics") or {}
        if "num_files_loaded" in metrics:
            return (
                f"{metrics.get('num_output_rows', 0):,} rows from "
                f"{metrics.get('num_files_loaded', 0)} file(s); "
                f"{metrics.get('num_files_empty', 0)} empty, "
                f"{metrics.get('num_files_rejected', 0)} rejected"
            )
        rows_in = metrics.get("num_input_rows")
        said = sentence(rows_in, metrics)
        if said:
            return said
        written = f"{metrics.get('num_output_rows', 0):,} written"
        return written if rows_in is None else f"{rows_in:,} rows in, {written}"
    if kind == "update_progress":
        state = details.get("state", "?")
        extra = details.get("error") or details.get("reason")
        seconds = details.get("seconds")
        timing = f" in {seconds:.1f}s" if isinstance(seconds, int | float) else ""
        return f"{state}{timing}" + (f": {extra}" if extra else "")
    if kind == "flow_definition":
        inputs = ", ".join(details.get("input_datasets") or [])
        return f"{details.get('flow_type', '?')} {inputs} -> {details.get('output_dataset', '?')}"
    if kind == "dataset_definition":
        return f"{details.get('dataset_name', '?')}: {details.get('dataset_type', '?')}"
    return str(event.get("message", ""))


def render(events: list[dict[str, Any]], total: int, out: Callable[[str], None]) -> None:
    if not events:
        out("no event matches")
        return
    out(f"{'timestamp (UTC)':23}  {'update':>6}  {'event_type':18}  {'level':5}  flow: what")
    for event in events:
        origin = event.get("origin") or {}
        stamp = str(event.get("timestamp", ""))[:23]
        flow = origin.get("flow_name")
        what = f"{flow}: {summary(event)}" if flow else summary(event)
        out(
            f"{stamp:23}  {origin.get('update_id') or '':>6}  "
            f"{event.get('event_type', '?'):18}  {event.get('level', ''):5}  {what}"
        )
    if total > len(events):
        out(f"({len(events)} of {total} events shown, the newest; --limit 0 shows all)")
