"""Count Spark jobs per timed phase from the event log (no JVM listener needed from Python)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

EVENT_LOG_CONF = ("spark.eventLog.enabled", "spark.eventLog.dir")


def _job_events(log_dir: Path) -> Iterator[dict]:
    """Every SparkListenerJobStart/JobEnd event in every event log under `log_dir`."""
    for path in log_dir.rglob("*"):  # v2 logs are folders of rolled files
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"SparkListenerJob' not in line:
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut short by a stopped run


def job_start_times(log_dir: Path) -> list[int]:
    """Submission times (epoch ms) of every job in every event log under `log_dir`."""
    return sorted(
        int(e["Submission Time"])
        for e in _job_events(log_dir)
        if e.get("Event") == "SparkListenerJobStart" and "Submission Time" in e
    )


def count_in(times: list[int], start_s: float, end_s: float) -> int:
    lo, hi = start_s * 1000, end_s * 1000
    return sum(lo <= t <= hi for t in times)


def job_spans(log_dir: Path) -> list[tuple[int, int, str]]:
    """(start ms, end ms, call site | last stage name) of every finished job."""
    starts: dict[int, tuple[int, str]] = {}
    spans: list[tuple[int, int, str]] = []
    for event in _job_events(log_dir):
        if event.get("Event") == "SparkListenerJobStart":
            props = event.get("Properties") or {}
            site = props.get("spark.job.description") or props.get("callSite.short") or ""
            stage = (event.get("Stage Infos") or [{}])[-1].get("Stage Name", "")
            starts[event["Job ID"]] = (event["Submission Time"], f"{site} | {stage}")
        elif event.get("Event") == "SparkListenerJobEnd" and event.get("Job ID") in starts:
            start, site = starts.pop(event["Job ID"])
            spans.append((start, event["Completion Time"], site))
    return sorted(spans)
