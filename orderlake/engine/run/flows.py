"""The incremental flows of an update: each takes the rows its sources gained since its last run.

No streaming query: a flow's run reads the rows its source tables appended since its last run
(their Delta commits, `table_changes`) as one batch. The run is planned (its source versions and
the versions of the tables it writes) before it writes and marked done after (`flow_state`);
its commits carry the run as `userMetadata`, so a crash in between replays the same run and
skips the writes whose commits are already there.

Flows that read the same source over the same versions share one read: each flow's input is
persisted on local disk, AUTO CDC sources first, so Spark's cache serves the parsed rows to the
other flows' plans as well.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from orderlake.engine.delta_log import (
    committed_since,
    data_file_bytes,
    is_delta_table,
    latest_version,
)
from orderlake.engine.dp.graph import AutoCdcFlow, Dataset, Flow, PipelineGraph, QueryFlow
from orderlake.engine.faults import kill_point
from orderlake.engine.interrupt import STOP
from orderlake.engine.run.autocdc import BatchSize, CdcResult, apply_batch, create_target
from orderlake.engine.run.expectations import Checked, QualityReport, enforce
from orderlake.engine.run.flow_state import FlowRun, FlowStates
from orderlake.engine.run.spark_settings import spark_settings
from orderlake.engine.run.table_changes import read_appended, source_version


@dataclass
class FlowProgress:
    flow: str
    dataset: str
    batches: int = 0
    input_rows: int = 0
    output_rows: int = 0
    quality: QualityReport | None = None
    extra: dict[str, int] = field(default_factory=dict)
    recovered: bool = False  # a run an earlier update planned and did not finish
    # The expectations of the views the flow's query read (view name -> counts).
    view_quality: dict[str, QualityReport] = field(default_factory=dict)

    def as_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "status": "COMPLETED",
            "metrics": {"num_output_rows": self.output_rows, "num_input_rows": self.input_rows},
        }
        reports = [q for q in (self.quality, *self.view_quality.values()) if q is not None]
        if reports:
            quality = reports[0].as_details()
            for other in reports[1:]:
                more = other.as_details()
                quality["dropped_records"] += more["dropped_records"]
                quality["expectations"].extend(more["expectations"])
            details["data_quality"] = quality
        details["metrics"].update(self.extra)
        return details


Append = Callable[[DataFrame, Path, Dataset, str | None], int]


@dataclass
class FlowContext:
    spark: SparkSession
    graph: PipelineGraph
    table_path: Callable[[str], Path]
    states: FlowStates
    append: Append  # (frame, path, dataset, tag) -> the rows it wrote
    # `spark.readStream.table(name)` gives `frame` while the returned context is open.
    bind: Callable[[dict[str, DataFrame]], Any]
    sources: Callable[[Flow], set[str]]  # the stored tables a flow reads as a stream
    # While open, each view a flow reads goes through the given (view, frame) -> frame.
    view_checks: Callable[[Callable[[str, DataFrame], DataFrame]], Any]
    stream_table: Callable[[str], DataFrame]  # `spark.readStream.table(name)`, bound rows
    batch_sources: Callable[[Flow], set[str]]  # the stored tables a flow reads whole
    overwrite: Append  # (frame, path, dataset, tag) -> rows: replaces the table, one commit


@dataclass
class _Planned:
    flow: Flow
    run: FlowRun
    recovered: bool

    def key(self) -> tuple:
        return tuple(sorted((s, tuple(r)) for s, r in self.run.ranges.items()))


def _checked_dataset(ctx: FlowContext, flow: Flow) -> Dataset:
    """The dataset whose expectations apply to a flow's input: its target, or an AUTO CDC
    flow's source view (a source table's rules applied when that table was written)."""
    if isinstance(flow, AutoCdcFlow):
        source = ctx.graph.dataset(flow.source)
        return source if source.kind == "view" else Dataset(source.name, "view")
    return ctx.graph.dataset(flow.target)


def _input(ctx: FlowContext, flow: Flow) -> DataFrame:
    """A flow's input: its query, or its AUTO CDC source's rows (a view's query)."""
    if isinstance(flow, AutoCdcFlow):
        if ctx.graph.is_view(flow.source):
            return ctx.graph.view_flow(flow.source).func()
        return ctx.stream_table(flow.source)
    return flow.func()


def _view_checker(
    ctx: FlowContext, progress: FlowProgress
) -> Callable[[str, DataFrame], DataFrame]:
    """Applies a view's expectations where a flow reads it: `fail` rules stop the run before
    anything is written, `drop` rules filter, every rule is counted in the flow's progress."""

    def check(name: str, frame: DataFrame) -> DataFrame:
        rules = ctx.graph.dataset(name).expectations
        if not rules:
            return frame
        checked = enforce(frame, rules, name)
        report = progress.view_quality.setdefault(name, QualityReport(name, {}))
        report.merge(checked.report())
        return checked.kept

    return check


def _plan(ctx: FlowContext, flow: Flow) -> _Planned | None:
    """This update's run of `flow`: the one an earlier update left unfinished, or the versions
    its sources gained since its last run (None: nothing new)."""
    last = ctx.states.last(flow.name)
    if last is not None and not last.done:
        return _Planned(flow, last, recovered=True)
    ranges = {}
    for source in sorted(ctx.sources(flow)):
        start = last.next_start(source) if last else 0
        end = source_version(ctx.table_path(source))
        ranges[source] = [start, max(end, start - 1)]
    if not any(end >= start for start, end in ranges.values()):
        return None
    written = {t: _version(ctx.table_path(t)) for t in written_tables(ctx.graph, flow)}
    run = FlowRun((last.run if last else 0) + 1, ranges, written=written)
    ctx.states.save(flow.name, run)
    kill_point(f"planned:{flow.name}")
    return _Planned(flow, run, recovered=False)


def tombstone_table(target: str) -> str:
    """The table where an AUTO CDC target's deletes leave their tombstones."""
    return f"__{target}_tombstones"


def written_tables(graph: PipelineGraph, flow: Flow) -> list[str]:
    """The tables a flow writes: its target, and an AUTO CDC target's tombstones."""
    target = graph.dataset(flow.target).name
    return [target, tombstone_table(target)] if isinstance(flow, AutoCdcFlow) else [target]


def _version(path: Path) -> int:
    version = latest_version(path)
    return -1 if version is None else version


def run_flows(ctx: FlowContext, flows: list[Flow]) -> list[FlowProgress]:
    """Run `flows` (none reads another's target): each over what its sources gained."""
    progress = {
        f.name: FlowProgress(
            f.name, f.target, quality=QualityReport(_checked_dataset(ctx, f).name, {})
        )
        for f in flows
    }
    for flow in flows:
        if ctx.graph.dataset(flow.target).kind == "materialized_view":
            STOP.check()
            _refresh_materialized_view(ctx, flow, progress[flow.name])
    flows_in = flows
    flows = [f for f in flows if ctx.graph.dataset(f.target).kind != "materialized_view"]
    due = flows
    while due:
        planned = [p for p in (_plan(ctx, f) for f in due) if p is not None]
        groups: dict[tuple, list[_Planned]] = {}
        for item in planned:
            groups.setdefault(item.key(), []).append(item)
        for group in groups.values():
            STOP.check()
            _run_group(ctx, group, progress)
        # A run an earlier update left unfinished covers only what its sources held then:
        # what they gained since (this update's ingest, say) is this update's next run.
        due = [p.flow for p in planned if p.recovered]
    for flow in flows:
        _ensure_table(ctx, flow)
    for flow in flows_in:
        if not _checked_dataset(ctx, flow).expectations:
            progress[flow.name].quality = None
    return [progress[f.name] for f in flows_in]


def _run_group(ctx: FlowContext, group: list[_Planned], progress: dict[str, FlowProgress]) -> None:
    """Flows that take the same versions of the same sources: one read, shared."""
    ranges = group[0].run.ranges
    increments, counts, size = {}, [], 0
    for source, (start, end) in ranges.items():
        appended = read_appended(ctx.spark, ctx.table_path(source), start, end)
        increments[source] = appended.frame
        counts.append(appended.rows)
        size += appended.size
    rows_in = sum(c or 0 for c in counts)
    known = BatchSize(rows_in, size) if None not in counts else None  # every count known
    ordered = sorted(group, key=lambda p: not isinstance(p.flow, AutoCdcFlow))
    small = known is not None and rows_in < SMALL_BATCH_ROWS
    frames: dict[str, DataFrame] = {}
    with ExitStack() as cleanup:
        cleanup.enter_context(ctx.bind(increments))
        if small:
            conf = batch_conf(rows_in, _merged_bytes(ctx, group))
            cleanup.enter_context(spark_settings(ctx.spark, conf))
        try:
            for item in ordered:
                with ctx.view_checks(_view_checker(ctx, progress[item.flow.name])):
                    frame = _input(ctx, item.flow)
                # Caching a flow's input pays only when other flows share it and it is big.
                cache = CACHE_SHARED_INPUTS and not small and len(ordered) > 1
                frames[item.flow.name] = frame.persist(CACHE_LEVEL) if cache else frame
            for item in ordered:
                STOP.check()
                # Count the rules in the write itself when an unfinished run (which may skip
                # its writes) is not being replayed.
                count_in_write = known is not None and not item.recovered
                _write_run(
                    ctx,
                    item,
                    frames[item.flow.name],
                    rows_in,
                    progress[item.flow.name],
                    count_in_write,
                    known,
                )
        finally:
            for frame in frames.values():
                frame.unpersist()


# Small runs are mostly fixed cost, and Spark's speed-ups for big data cost more than they save
# there: below SMALL_BATCH_ROWS input rows adaptive execution (a job per query stage) and
# caching the input, below TINY_BATCH_ROWS also compiling each query to Java (Janino: a few
# hundred ms per MERGE phase; interpreting a few thousand rows is quicker). A MERGE reads its
# target's keys whatever the batch, so compiling stays on when an AUTO CDC target holds
# TINY_TARGET_BYTES or more (interpreted, 100 rows into a 2.2M-row target took 3.8 s to find
# the matches, compiled 1.05 s). Measured in docs/performance.md.
SMALL_BATCH_ROWS = 100_000
TINY_BATCH_ROWS = 5_000
TINY_TARGET_BYTES = 16 * 2**20
CACHE_SHARED_INPUTS = True
CACHE_LEVEL = StorageLevel.DISK_ONLY
_SMALL_BATCH_CONF = {"spark.sql.adaptive.enabled": "false"}
_TINY_BATCH_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    # One task per shuffle: one new file per table an update writes, not four (a 50-row update
    # into the 220k-row target: 1.84-1.97 s against 1.89-2.45 s, and a quarter of the files
    # that compaction then packs).
    "spark.sql.shuffle.partitions": "1",
}
# Into a big target a tiny batch keeps the shuffle partitions (a SCD2 or TRUNCATE batch shuffles
# the target), and Delta's optimized writes pack its MERGE's output instead: one new file per
# update, not four, at the same speed (100 rows into the 2.2M-row target, two rounds of six each
# way: 3.7-5.2 s against 4.0-6.4 s to the commit), so compaction comes a quarter as often.
_TINY_INTO_BIG_CONF = {"spark.databricks.delta.optimizeWrite.enabled": "true"}


def batch_conf(rows: int, merged_bytes: float) -> dict[str, str]:
    """The Spark settings for a run of `rows` input rows that MERGEs into AUTO CDC targets of
    `merged_bytes` bytes (0: none; the settings are Spark's defaults for big runs)."""
    if rows >= SMALL_BATCH_ROWS:
        return {}
    conf = dict(_SMALL_BATCH_CONF)
    if rows < TINY_BATCH_ROWS:
        conf.update(_TINY_BATCH_CONF if merged_bytes < TINY_TARGET_BYTES else _TINY_INTO_BIG_CONF)
    return conf


def _merged_bytes(ctx: FlowContext, group: list[_Planned]) -> float:
    """The bytes of the AUTO CDC targets the group's flows MERGE into (their data files)."""
    cdc = [p.flow for p in group if isinstance(p.flow, AutoCdcFlow)]
    sizes = [data_file_bytes(ctx.table_path(ctx.graph.dataset(f.target).name)) for f in cdc]
    return sum(float("inf") if size is None else size for size in sizes)


def _write_run(
    ctx: FlowContext,
    item: _Planned,
    frame: DataFrame,
    rows_in: int,
    progress: FlowProgress,
    count_in_write: bool,
    size: BatchSize | None,
) -> None:
    """Expectations, then the flow's idempotent write; then the run is marked done.
    `size` is the input's size when every source's row count is known."""
    flow, run = item.flow, item.run
    checked = _checked_dataset(ctx, flow)
    target = ctx.graph.dataset(flow.target)
    rules = enforce(frame, checked.expectations, checked.name, count_in_write=count_in_write)
    kept = rules.kept
    kill_point(f"before_write:{flow.name}")
    tag = run.tag(flow.name)
    done = frozenset(
        ctx.table_path(t)
        for t, before in run.written.items()
        if item.recovered and committed_since(ctx.table_path(t), before, tag)
    )
    if isinstance(flow, AutoCdcFlow):
        result = apply_batch(
            ctx.spark,
            kept,
            flow,
            ctx.table_path(target.name),
            ctx.table_path(tombstone_table(target.name)),
            target.table_properties,
            tag,
            done,
            size=size,
        )
        for key, value in _accounting(item, rules, progress, rows_in, result).items():
            progress.extra[key] = progress.extra.get(key, 0) + value
        written = result.inserted + result.updated
    elif ctx.table_path(target.name) in done:
        written = 0
        progress.view_quality.clear()  # counted by the run that wrote it
    else:
        written = ctx.append(kept, ctx.table_path(target.name), target, tag)
    kill_point(f"after_write:{flow.name}")
    run.done = True
    ctx.states.save(flow.name, run)
    progress.batches += 1
    progress.recovered = progress.recovered or item.recovered
    progress.input_rows += rows_in
    progress.output_rows += written
    if progress.quality is not None and ctx.table_path(target.name) not in done:
        progress.quality.merge(rules.report())


def _accounting(
    item: _Planned, rules: Checked, progress: FlowProgress, rows_in: int, result: CdcResult
) -> dict[str, int]:
    """Where the run's input rows went, bucket by bucket (`accounting.py`): the rules'
    drops, then what the AUTO CDC made of the rest. Counts the run already has (the rules'
    observation, the MERGE's metrics, the CDC's observations), no job of their own."""
    changed = {"num_inserted_rows": result.inserted, "num_updated_rows": result.updated,
               "num_deleted_rows": result.deleted}
    if result.target_truncated:
        changed["num_target_rows_truncated"] = result.target_truncated
    cdc = result.accounting()
    if cdc is None:
        replayed = item.recovered and result.rows is None and not any(changed.values())
        if replayed and isinstance(item.flow, AutoCdcFlow) and item.flow.scd_type != 2:
            # The interrupted update wrote this run; its counts were never logged.
            return {**changed, **dict.fromkeys(_ZEROS, 0), "num_replayed_rows": rows_in}
        return changed  # a figure is missing: no claim that the rows add up
    views = sum(q.dropped for q in progress.view_quality.values())
    dropped = rules.report().dropped + views
    return {
        **changed,
        **cdc,
        "num_quarantined_rows": dropped,
        "num_filtered_rows": rows_in - dropped - (result.rows or 0),
    }


_ZEROS = ("num_quarantined_rows", "num_collapsed_rows", "num_ignored_rows")


def _refresh_materialized_view(ctx: FlowContext, flow: Flow, progress: FlowProgress) -> None:
    """Recompute a materialized view from the current rows of what it reads, and replace its
    rows in one Delta commit (an overwrite): a reader sees the old rows or the new, never a
    mix, and a run cut short is simply recomputed by the next update.

    Its query reads tables whole (`spark.read.table`); a view it reads that streams a table
    (`spark.readStream.table`) gets that table's current rows too."""
    assert isinstance(flow, QueryFlow)
    target = ctx.graph.dataset(flow.target)
    path = ctx.table_path(target.name)
    streamed = ctx.sources(flow)
    read = sorted(streamed | ctx.batch_sources(flow))
    last = ctx.states.last(flow.name)
    versions = {s: [source_version(ctx.table_path(s))] * 2 for s in read}
    run = FlowRun((last.run if last else 0) + 1, versions, written={target.name: _version(path)})
    ctx.states.save(flow.name, run)
    kill_point(f"planned:{flow.name}")
    whole = {s: ctx.spark.read.format("delta").load(str(ctx.table_path(s))) for s in streamed}
    with ctx.bind(whole), ctx.view_checks(_view_checker(ctx, progress)):
        frame = flow.func()
    rules = enforce(frame, target.expectations, target.name)
    kill_point(f"before_write:{flow.name}")
    written = ctx.overwrite(rules.kept, path, target, run.tag(flow.name))
    kill_point(f"after_write:{flow.name}")
    run.done = True
    ctx.states.save(flow.name, run)
    progress.batches += 1
    progress.output_rows += written
    progress.input_rows += rules.report().total if target.expectations else 0
    if progress.quality is not None:
        progress.quality.merge(rules.report())


def _ensure_table(ctx: FlowContext, flow: Flow) -> None:
    """A streaming table exists after its first update, even when no rows came yet."""
    target = ctx.graph.dataset(flow.target)
    path = ctx.table_path(target.name)
    if is_delta_table(path):
        return
    with ctx.bind({s: _empty(ctx, s) for s in ctx.sources(flow)}):
        empty = _input(ctx, flow)
    if isinstance(flow, AutoCdcFlow):
        create_target(ctx.spark, empty, flow, path, target.table_properties)
    else:
        ctx.append(empty.limit(0), path, target, None)


def _empty(ctx: FlowContext, source: str) -> DataFrame:
    return read_appended(ctx.spark, ctx.table_path(source), 0, -1).frame


def query_flows(graph: PipelineGraph, ingest: set[str]) -> list[Flow]:
    """The table flows that are not cloudFiles ingestion, in definition order."""
    return [f for f in graph.table_flows() if f.name not in ingest]


__all__ = ["FlowContext", "FlowProgress", "QueryFlow", "query_flows", "run_flows"]
