"""Remote operations: upload drops, run and follow an update, read metrics, list folders.

Each function takes a real WorkspaceClient and reports progress through `say`, so the CLI
prints and tests capture the same lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors

from orderlake.remote.errors import (
    NOT_FOUND,
    UNAVAILABLE,
    UPDATE_FAILED,
    USAGE,
    RemoteError,
    with_retries,
)

Say = Callable[[str], None]
TERMINAL = {"COMPLETED", "FAILED", "CANCELED"}


@dataclass(frozen=True)
class Target:
    """Where the deployed bundle lives: the pipeline's name and the volume's root path."""

    pipeline_name: str
    volume_path: str
    source_dir: str = "source"
    archive_dir: str = "archive"
    rejected_dir: str = "rejected"

    def folder(self, name: str) -> str:
        return f"{self.volume_path.rstrip('/')}/{name.strip('/')}"


def find_pipeline(w: WorkspaceClient, name: str, pipeline_id: str | None = None) -> str:
    """Resolve the deployed pipeline's id; development mode prefixes names, so match a suffix."""
    if pipeline_id:
        with_retries(lambda: w.pipelines.get(pipeline_id), f"pipeline {pipeline_id}")
        return pipeline_id
    found = with_retries(
        lambda: list(w.pipelines.list_pipelines(filter=f"name LIKE '%{name}'")),
        "listing pipelines",
    )
    matches = [p for p in found if p.name == name or (p.name or "").endswith(f"] {name}")]
    if not matches:
        raise RemoteError(
            f"pipeline {name!r} not found: deploy first (databricks bundle deploy -t <target>)",
            NOT_FOUND,
        )
    if len(matches) > 1:
        names = ", ".join(f"{p.name} ({p.pipeline_id})" for p in matches)
        raise RemoteError(f"several pipelines match {name!r}: {names}; pass --pipeline-id", USAGE)
    return str(matches[0].pipeline_id)


def upload(
    w: WorkspaceClient, target: Target, files: Iterable[Path], say: Say, overwrite: bool = False
) -> list[str]:
    """Upload local CSV files into the volume's source/ folder; return the remote paths."""
    uploaded = []
    for local in files:
        if not local.is_file():
            raise RemoteError(f"no such file: {local}", USAGE)
        remote = f"{target.folder(target.source_dir)}/{local.name}"

        def put(local: Path = local, remote: str = remote) -> None:
            with local.open("rb") as fh:
                w.files.upload(remote, fh, overwrite=overwrite)

        with_retries(put, f"uploading {local.name}")
        say(f"uploaded {local} -> {remote} ({local.stat().st_size} bytes)")
        uploaded.append(remote)
    return uploaded


def run_update(
    w: WorkspaceClient,
    pipeline_id: str,
    say: Say,
    *,
    full_refresh: bool = False,
    poll_seconds: float = 10.0,
    timeout_seconds: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Start an update and follow it to a terminal state; FAILED/CANCELED raise exit code 1."""
    # Only 429/503 are retried on start: the request was not processed, so no double start.
    started = with_retries(
        lambda: w.pipelines.start_update(pipeline_id, full_refresh=full_refresh),
        "starting the update",
        retry_on=(sdk_errors.TooManyRequests, sdk_errors.TemporarilyUnavailable),
        sleep=sleep,
    )
    update_id = str(started.update_id)
    say(f"started update {update_id} of pipeline {pipeline_id}")
    deadline = clock() + timeout_seconds
    last = None
    while True:
        got = with_retries(
            lambda: w.pipelines.get_update(pipeline_id, update_id),
            "polling the update",
            sleep=sleep,
        )
        state = got.update.state.value if got.update and got.update.state else "UNKNOWN"
        if state != last:
            say(f"update {update_id}: {state}")
            last = state
        if state in TERMINAL:
            break
        if clock() >= deadline:
            raise RemoteError(
                f"update {update_id} still {state} after {timeout_seconds:.0f}s; it keeps "
                f"running in the workspace (follow it with `orderlake remote metrics`)",
                UNAVAILABLE,
            )
        sleep(poll_seconds)
    if state != "COMPLETED":
        errors = update_errors(w, pipeline_id, update_id)
        detail = "".join(f"\n  {line}" for line in errors) or ""
        raise RemoteError(f"update {update_id} ended {state}{detail}", UPDATE_FAILED)
    return update_id


@dataclass
class UpdateReport:
    update_id: str
    state: str
    # (dataset, expectation) -> [passed, failed]
    expectations: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _events_of(
    w: WorkspaceClient, pipeline_id: str, update_id: str, limit: int = 5000
) -> list[dict[str, Any]]:
    """The update's events, newest first, as the REST API returns them.

    Read through the SDK's API client on the same path as `list_pipeline_events`, because the
    typed `PipelineEvent` drops `details`, where the expectation metrics are. The log is newest
    first, so paging stops once past the update (or after `limit` events).
    """
    path = f"/api/2.0/pipelines/{pipeline_id}/events"

    def read() -> list[dict[str, Any]]:
        mine: list[dict[str, Any]] = []
        query: dict[str, Any] = {"max_results": 250}
        scanned = 0
        while scanned < limit:
            page = w.api_client.do("GET", path, query=query)
            events = page.get("events") or []
            for event in events:
                if (event.get("origin") or {}).get("update_id") == update_id:
                    mine.append(event)
                elif mine:
                    return mine
            scanned += len(events)
            token = page.get("next_page_token")
            if not token or not events:
                break
            query = {"max_results": 250, "page_token": token}
        return mine

    return with_retries(read, "reading the event log")


def _error_lines(events: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for event in events:
        if event.get("level") != "ERROR":
            continue
        line = event.get("message") or "error"
        exceptions = (event.get("error") or {}).get("exceptions") or []
        if exceptions:
            line += ": " + "; ".join(
                e.get("message") or e.get("class_name") or "" for e in exceptions
            )
        lines.append(line)
    return lines


def update_errors(w: WorkspaceClient, pipeline_id: str, update_id: str) -> list[str]:
    try:
        return _error_lines(_events_of(w, pipeline_id, update_id))
    except RemoteError as err:
        return [f"(could not read the event log: {err})"]


def latest_report(w: WorkspaceClient, pipeline_id: str) -> UpdateReport:
    """Per-rule expectation metrics and errors of the pipeline's latest update."""
    pipeline = with_retries(lambda: w.pipelines.get(pipeline_id), f"pipeline {pipeline_id}")
    if not pipeline.latest_updates:
        raise RemoteError(f"pipeline {pipeline_id} has no updates yet", NOT_FOUND)
    latest = pipeline.latest_updates[0]
    update_id = str(latest.update_id)
    state = latest.state.value if latest.state else "UNKNOWN"
    events = _events_of(w, pipeline_id, update_id)
    report = UpdateReport(update_id=update_id, state=state, errors=_error_lines(events))
    for event in events:
        if event.get("event_type") != "flow_progress":
            continue
        details = event.get("details") or {}
        quality = (details.get("flow_progress") or {}).get("data_quality") or {}
        for rule in quality.get("expectations") or []:
            key = (str(rule.get("dataset", "")), str(rule.get("name", "")))
            counts = report.expectations.setdefault(key, [0, 0])
            counts[0] += int(rule.get("passed_records") or 0)
            counts[1] += int(rule.get("failed_records") or 0)
    return report


def format_report(report: UpdateReport) -> list[str]:
    lines = [f"update {report.update_id}: {report.state}"]
    if report.expectations:
        lines.append(f"{'dataset':<24} {'expectation':<32} {'passed':>10} {'failed':>10}")
        for (dataset, name), (passed, failed) in sorted(report.expectations.items()):
            lines.append(f"{dataset:<24} {name:<32} {passed:>10} {failed:>10}")
    else:
        lines.append("no expectation metrics in this update's event log")
    lines.extend(f"ERROR {line}" for line in report.errors)
    return lines


def list_folders(w: WorkspaceClient, target: Target, say: Say) -> dict[str, list[str]]:
    """List what waits in source/, what was archived and what was rejected."""
    out: dict[str, list[str]] = {}
    for name in (target.source_dir, target.archive_dir, target.rejected_dir):
        folder = target.folder(name)

        def listing(folder: str = folder) -> list[str]:
            return [
                f"{e.name}{'/' if e.is_directory else ''}\t{e.file_size or 0}"
                for e in w.files.list_directory_contents(folder)
            ]

        try:
            entries = with_retries(listing, f"listing {folder}")
        except RemoteError as err:
            if err.exit_code != NOT_FOUND:
                raise
            entries = []
            say(f"{folder}/: (does not exist yet)")
        else:
            say(f"{folder}/: {len(entries)} entries")
        for entry in entries:
            say(f"  {entry}")
        out[name] = entries
    return out
