"""Count Spark jobs per timed phase from the event log (no JVM listener needed from Python)."""

from __future__ import annotations

import json
from pathlib import Path

EVENT_LOG_CONF = ("spark.eventLog.enabled", "spark.eventLog.dir")


def job_start_times(log_dir: Path) -> list[int]:
    """Submission times (epoch ms) of every job in every event log under `log_dir`."""
    times: list[int] = []
    for path in log_dir.rglob("*"):  # v2 logs are folders of rolled files
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"SparkListenerJobStart"' not in line:
                    continue
                try:
                    times.append(int(json.loads(line)["Submission Time"]))
                except (ValueError, KeyError):
                    continue
    return sorted(times)


def count_in(times: list[int], start_s: float, end_s: float) -> int:
    lo, hi = start_s * 1000, end_s * 1000
    return sum(lo <= t <= hi for t in times)


def job_spans(log_dir: Path) -> list[tuple[int, int, str]]:
    """(start ms, end ms, call site) of every finished job, for a per-job timeline."""
    starts: dict[int, tuple[int, str]] = {}
    spans: list[tuple[int, int, str]] = []
    for path in log_dir.rglob("*"):
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"SparkListenerJob' not in line:
                    continue
                event = json.loads(line)
                if event["Event"] == "SparkListenerJobStart":
                    props = event.get("Properties") or {}
                    site = props.get("callSite.short") or ""
                    stages = event.get("Stage Infos") or [{}]
                    name = stages[-1].get("Stage Name", "")
                    starts[event["Job ID"]] = (event["Submission Time"], f"{site} | {name}")
                elif event["Event"] == "SparkListenerJobEnd" and event["Job ID"] in starts:
                    start, site = starts.pop(event["Job ID"])
                    spans.append((start, event["Completion Time"], site))
    return sorted(spans)
