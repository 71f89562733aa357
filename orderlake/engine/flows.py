"""Streaming flows of an update: each runs incrementally from its checkpoint (availableNow).

Every micro-batch write is idempotent, so a batch replayed after a crash changes nothing:
appends carry `txnAppId`/`txnVersion` = batch id, AUTO CDC merges are sequence-guarded.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from orderlake.engine.autocdc import apply_batch
from orderlake.engine.delta_log import is_delta_table
from orderlake.engine.expectations import QualityReport, enforce
from orderlake.engine.faults import kill_point
from orderlake.engine.graph import AutoCdcFlow, Dataset, Flow, PipelineGraph, QueryFlow
from orderlake.engine.interrupt import STOP


@dataclass
class FlowProgress:
    flow: str
    dataset: str
    batches: int = 0
    input_rows: int = 0
    output_rows: int = 0
    quality: QualityReport | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def as_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "status": "COMPLETED",
            "metrics": {"num_output_rows": self.output_rows, "num_input_rows": self.input_rows},
        }
        if self.quality is not None:
            details["data_quality"] = self.quality.as_details()
        details["metrics"].update(self.extra)
        return details


@dataclass
class FlowContext:
    spark: SparkSession
    graph: PipelineGraph
    app_id: str
    table_path: Callable[[str], Path]
    checkpoint_path: Callable[[str], Path]
    append: Callable[[DataFrame, Path, Dataset, str, int | None], None]
    # Makes `spark.readStream.table(name)` give this batch while the context is open.
    bind: Callable[[str, DataFrame], AbstractContextManager[None]]


def _checked_dataset(ctx: FlowContext, flow: Flow) -> Dataset:
    """The dataset whose expectations apply to a flow's input (an AUTO CDC flow's source view)."""
    return ctx.graph.dataset(flow.source if isinstance(flow, AutoCdcFlow) else flow.target)


def _input(ctx: FlowContext, flow: Flow) -> DataFrame:
    """A flow's streaming input: its query, or its AUTO CDC source view's."""
    if isinstance(flow, AutoCdcFlow):
        return ctx.graph.view_flow(flow.source).func()
    return flow.func()


def _write_batch(
    ctx: FlowContext,
    flow: Flow,
    frame: DataFrame,
    checked: Dataset,
    batch_id: int,
    progress: FlowProgress,
) -> None:
    """Expectations, then the flow's idempotent write, for one micro-batch of one flow."""
    target = ctx.graph.dataset(flow.target)
    kept, report = enforce(frame, checked.expectations, checked.name)
    if report.total == 0:
        return
    STOP.check()
    kill_point(f"before_write:{flow.name}")
    if isinstance(flow, AutoCdcFlow):
        result = apply_batch(
            ctx.spark,
            kept,
            flow,
            ctx.table_path(target.name),
            ctx.table_path(f"__{target.name}_tombstones"),
            target.table_properties,
        )
        for name in ("inserted", "updated", "deleted"):
            key = f"num_{name}_rows"
            progress.extra[key] = progress.extra.get(key, 0) + getattr(result, name)
    else:
        ctx.append(kept, ctx.table_path(target.name), target, flow.name, batch_id)
    kill_point(f"after_write:{flow.name}")
    progress.batches += 1
    progress.input_rows += report.total
    progress.output_rows += report.total - report.dropped
    assert progress.quality is not None
    progress.quality.merge(report)


def run_flows(ctx: FlowContext, flows: list[Flow], source: str | None) -> list[FlowProgress]:
    """Run flows from one checkpoint, in one streaming query.

    With `source` (the one table all of them read), the query streams that table and, for each
    micro-batch, evaluates every flow's query on the batch (the batch stands in for
    `spark.readStream.table(source)`): the new rows are read and cached once for all flows.
    Without it, the one flow's own streaming query runs as written.
    """
    checked = {f.name: _checked_dataset(ctx, f) for f in flows}
    progress = {
        f.name: FlowProgress(f.name, f.target, quality=QualityReport(checked[f.name].name, {}))
        for f in flows
    }
    if source is None:
        [only] = flows
        stream = _input(ctx, only)
    else:
        stream = ctx.spark.readStream.table(source)
    failure: list[BaseException] = []

    def each_batch(batch: DataFrame, batch_id: int) -> None:
        try:
            STOP.check()
            frames = _batch_frames(ctx, flows, source, batch)
            try:
                for flow in flows:
                    _write_batch(
                        ctx,
                        flow,
                        frames[flow.name],
                        checked[flow.name],
                        batch_id,
                        progress[flow.name],
                    )
            finally:
                for frame in frames.values():
                    frame.unpersist()
        except BaseException as exc:  # surfaced after the query stops, with its own type
            failure.append(exc)
            raise

    name = group_name(flows)
    query = (
        stream.writeStream.foreachBatch(each_batch)
        .option("checkpointLocation", str(ctx.checkpoint_path(name)))
        .queryName(f"orderlake_{name}")
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination()
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    for flow in flows:
        _ensure_table(ctx, flow, ctx.graph.dataset(flow.target))
        if not checked[flow.name].expectations:
            progress[flow.name].quality = None
    return [progress[f.name] for f in flows]


def _batch_frames(
    ctx: FlowContext, flows: list[Flow], source: str | None, batch: DataFrame
) -> dict[str, DataFrame]:
    """Each flow's input for this micro-batch, persisted: each is read more than once.

    AUTO CDC sources (views such as the parsed, typed rows) are persisted first. Spark's cache
    then serves that same sub-plan inside the other flows' plans (the quarantine flow parses
    the batch the same way), so the batch is read and parsed once for all flows.
    On local disk, not the heap: a first load is one micro-batch of any size, and the default
    in-memory cache of a 10M-row batch ran a 4 GB driver out of heap.
    """
    if source is None:
        [only] = flows
        return {only.name: batch.persist(StorageLevel.DISK_ONLY)}
    ordered = sorted(flows, key=lambda f: not isinstance(f, AutoCdcFlow))
    frames: dict[str, DataFrame] = {}
    with ctx.bind(source, batch):
        for flow in ordered:
            frames[flow.name] = _input(ctx, flow).persist(StorageLevel.DISK_ONLY)
    return frames


def group_name(flows: list[Flow]) -> str:
    """The checkpoint name of flows run together (changing the group needs a full refresh)."""
    return "+".join(sorted(f.name for f in flows))


def _ensure_table(ctx: FlowContext, flow: Flow, target: Dataset) -> None:
    """A streaming table exists after its first update, even when no rows came yet."""
    path = ctx.table_path(target.name)
    if is_delta_table(path):
        return
    empty = ctx.spark.createDataFrame([], _input(ctx, flow).schema)
    if isinstance(flow, AutoCdcFlow):
        tombstones = ctx.table_path(f"__{target.name}_tombstones")
        apply_batch(ctx.spark, empty, flow, path, tombstones, target.table_properties)
    else:
        ctx.append(empty, path, target, flow.name, None)  # no txn: batch ids start at 0


def query_flows(graph: PipelineGraph, ingest: set[str]) -> list[Flow]:
    """The table flows that are not cloudFiles ingestion, in definition order."""
    return [f for f in graph.table_flows() if f.name not in ingest]


__all__ = ["FlowContext", "FlowProgress", "QueryFlow", "group_name", "query_flows", "run_flows"]
