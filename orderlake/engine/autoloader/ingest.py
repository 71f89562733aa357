"""The Auto Loader flow of an update: plan, reject, load once, commit, then archive.

Order of steps, and why it is crash-safe:
1. finish or forget any earlier update left unfinished (see `recover`);
2. list the source folder once: files arriving later belong to a later update;
3. write the plan (manifest) durably;
4. move unusable files to rejected/ (report first, then an atomic rename);
5. append the rows to bronze, the commit tagged with the update id (`userMetadata`);
6. mark the manifest committed, then move the loaded files to archive/ (atomic renames).
A file leaves source/ only after its rows are committed, and bronze never takes an update twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from orderlake.engine.autoloader.files import (
    Inspection,
    SourceFile,
    inspect_file,
    list_source,
    move,
    name_problem,
    stat_matches,
    unique_destination,
)
from orderlake.engine.autoloader.ledger import (
    COMMITTED,
    DONE,
    PLANNED,
    Ledger,
    Manifest,
    PlannedFile,
)
from orderlake.engine.autoloader.reader import CloudFilesSource, FileToRead, LocalAutoLoader
from orderlake.engine.delta_log import find_commit
from orderlake.engine.dp.graph import QueryFlow
from orderlake.engine.faults import kill_point
from orderlake.engine.interrupt import STOP
from orderlake.errors import ConfigurationError
from orderlake.storage.path import AnyPath, as_path


class IngestError(ConfigurationError, RuntimeError):
    """A flow reads cloudFiles in a way the local engine cannot ingest."""


@dataclass(frozen=True)
class FileRecord:
    """Where one file of an update went. Rows keep `_source_file` (its path when loaded, as
    Databricks' `_metadata.file_path` does); this answers where the file is now."""

    file: str  # relative to the source folder
    outcome: str  # loaded | empty | rejected | deferred (rewritten while read: still in source/)
    source: str  # its path when listed
    moved_to: str  # its path after the update: in archive/ or rejected/ (deferred: source)
    update_id: int  # the update that listed it (an earlier one when this update recovered it)


@dataclass
class IngestResult:
    flow: str
    loaded: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    deferred: list[str] = field(default_factory=list)  # changed while being read: next update
    rows: int = 0
    recovered_updates: list[int] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)


@dataclass
class IngestContext:
    spark: SparkSession
    autoloader: LocalAutoLoader
    ledger: Ledger
    rejected_path: AnyPath
    progress: Callable[[str], None]


def _metadata_tag(update_id: int) -> str:
    return f"orderlake update {update_id}"


def bronze_committed(spark: SparkSession, table: AnyPath, update_id: int) -> bool:
    """Did the bronze append of `update_id` commit? (Its commit carries the update id.)"""
    return find_commit(table, _metadata_tag(update_id)) is not None


def _rows_written(spark: SparkSession, table: AnyPath, update_id: int) -> int:
    info = find_commit(table, _metadata_tag(update_id)) or {}
    return int((info.get("operationMetrics") or {}).get("numOutputRows", 0))


def probe(flow: QueryFlow, autoloader: LocalAutoLoader) -> CloudFilesSource | None:
    """Call the flow with no files to learn the cloudFiles source it reads, if any."""
    autoloader.requests.clear()
    autoloader.probing = True
    flow.func()
    if not autoloader.requests:
        return None
    if len(autoloader.requests) > 1:
        raise IngestError(f"flow {flow.name}: one cloudFiles source per flow is supported locally")
    source = autoloader.requests[0]
    if source.archive_path is None:
        raise IngestError(
            f"flow {flow.name}: the local engine needs cloudFiles.cleanSource=MOVE with a "
            "moveDestination, so that a loaded file leaves the source folder"
        )
    return source


def _archive(manifest: Manifest, source: AnyPath, result: IngestResult) -> None:
    for planned in manifest.files:
        if planned.outcome not in ("load", "empty"):
            continue
        src = source / planned.relpath
        seen = SourceFile(planned.relpath, planned.size, planned.mtime_ns)
        if src.exists() and not stat_matches(src, seen):
            result.deferred.append(planned.relpath)  # rewritten since listing: load it again
            result.files.append(_record(manifest, planned, "deferred", str(src)))
            continue
        STOP.check()
        move(src, as_path(planned.dest))
        kill_point("archive_move")
        outcome = "loaded" if planned.outcome == "load" else "empty"
        result.files.append(_record(manifest, planned, outcome, planned.dest))


def _record(manifest: Manifest, planned: PlannedFile, outcome: str, now: str) -> FileRecord:
    source = str(as_path(manifest.source) / planned.relpath)
    return FileRecord(planned.relpath, outcome, source, now, manifest.update_id)


def recover(ctx: IngestContext, flow: QueryFlow, table: AnyPath, result: IngestResult) -> None:
    """Finish a committed-but-unarchived update; forget one that never committed."""
    for manifest in ctx.ledger.unfinished(flow.name):
        if manifest.state == COMMITTED or bronze_committed(ctx.spark, table, manifest.update_id):
            ctx.progress(f"recovering update {manifest.update_id}: archiving its committed files")
            _archive(manifest, as_path(manifest.source), result)
            manifest.state = DONE
            ctx.ledger.save(flow.name, manifest)
            result.recovered_updates.append(manifest.update_id)
        else:
            ctx.ledger.forget(flow.name, manifest.update_id)


def _plan(
    update_id: int, source: CloudFilesSource, rejected_path: AnyPath, listing: list[SourceFile]
) -> Manifest:
    columns = tuple(f.name for f in source.schema.fields if f.name != source.rescued_column)
    required = tuple(f.name for f in source.schema.fields if not f.nullable)
    tag = f"u{update_id}"
    planned = []
    taken: set = set()
    for seen in listing:
        STOP.check()
        problem = name_problem(seen.relpath)
        verdict = (
            Inspection("reject", reason=problem)
            if problem
            else inspect_file(
                source.path / seen.relpath, columns, required, source.reader_case_sensitive
            )
        )
        kill_point("after_inspect")
        folder = rejected_path if verdict.outcome == "reject" else source.archive_path
        dest = unique_destination(folder, seen.relpath, tag, taken)
        taken.add(dest)
        planned.append(
            PlannedFile(
                seen.relpath,
                seen.size,
                seen.mtime_ns,
                verdict.outcome,
                str(dest),
                reason=verdict.reason,
                header=list(verdict.header),
            )
        )
    return Manifest(update_id, PLANNED, str(source.path), planned)


def _reject(manifest: Manifest, source: AnyPath, update_id: int, result: IngestResult) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for planned in manifest.files:
        if planned.outcome != "reject":
            continue
        dest = as_path(planned.dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        report = dest.with_name(dest.name + ".error.txt")
        report.write_text(
            f"file: {planned.relpath}\nrejected: {planned.reason}\n"
            f"update: {update_id}\nat: {now}\nnothing of this file was loaded\n",
            encoding="utf-8",
        )
        move(source / planned.relpath, dest)
        kill_point("reject_move")
        result.rejected.append((planned.relpath, planned.reason))
        result.files.append(_record(manifest, planned, "rejected", str(dest)))


def run_ingest(
    ctx: IngestContext,
    flow: QueryFlow,
    source: CloudFilesSource,
    table: AnyPath,
    update_id: int,
    write: Callable,
) -> IngestResult:
    """One update of the cloudFiles flow that reads `source` (what `probe` found).

    `write(df, tag)` appends to bronze, tagging the commit."""
    result = IngestResult(flow.name)
    recover(ctx, flow, table, result)
    STOP.check()
    listing = list_source(source.path)
    if not listing:
        return result
    ctx.progress(f"{flow.name}: {len(listing)} new file(s) in {source.path}")
    manifest = _plan(update_id, source, ctx.rejected_path, listing)
    ctx.ledger.save(flow.name, manifest)
    kill_point("after_plan")
    STOP.check()
    _reject(manifest, source.path, update_id, result)
    to_load = [f for f in manifest.files if f.outcome == "load"]
    if to_load:
        ctx.autoloader.files = [
            FileToRead(source.path / f.relpath, tuple(f.header)) for f in to_load
        ]
        ctx.autoloader.probing = False
        try:
            frame = flow.func()
            STOP.check()
            kill_point("before_bronze_write")
            write(frame, _metadata_tag(update_id))
            kill_point("after_bronze_commit")
        finally:
            ctx.autoloader.files = []
            ctx.autoloader.probing = True
        result.rows = _rows_written(ctx.spark, table, update_id)
    manifest.state = COMMITTED
    ctx.ledger.save(flow.name, manifest)
    kill_point("after_commit_mark")
    _archive(manifest, source.path, result)
    kill_point("after_archive")
    manifest.state = DONE
    ctx.ledger.save(flow.name, manifest)
    result.loaded = [f.relpath for f in to_load if f.relpath not in result.deferred]
    result.empty = [f.relpath for f in manifest.files if f.outcome == "empty"]
    ctx.progress(
        f"{flow.name}: +{result.rows:,} rows from {len(result.loaded)} file(s); "
        f"{len(result.empty)} empty, {len(result.rejected)} rejected"
    )
    return result
