"""Streaming flows of an update: each runs incrementally from its checkpoint (availableNow).

Every micro-batch write is idempotent, so a batch replayed after a crash changes nothing:
appends carry `txnAppId`/`txnVersion` = batch id, AUTO CDC merges are sequence-guarded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from orderlake.engine.autocdc import apply_batch
from orderlake.engine.expectations import QualityReport, enforce
from orderlake.engine.faults import kill_point
from orderlake.engine.graph import AutoCdcFlow, Dataset, Flow, PipelineGraph, QueryFlow


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


def _source_for(ctx: FlowContext, flow: Flow) -> tuple[DataFrame, Dataset]:
    """The streaming input of a flow and the dataset whose expectations apply to it."""
    if isinstance(flow, AutoCdcFlow):
        return ctx.graph.view_flow(flow.source).func(), ctx.graph.dataset(flow.source)
    return flow.func(), ctx.graph.dataset(flow.target)


def run_flow(ctx: FlowContext, flow: Flow) -> FlowProgress:
    target = ctx.graph.dataset(flow.target)
    stream, checked = _source_for(ctx, flow)
    progress = FlowProgress(flow.name, target.name, quality=QualityReport(checked.name, {}))
    failure: list[BaseException] = []

    def each_batch(batch: DataFrame, batch_id: int) -> None:
        try:
            batch = batch.persist()
            try:
                kept, report = enforce(batch, checked.expectations, checked.name)
                total = report.total
                if total == 0:
                    return
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
                progress.input_rows += total
                progress.output_rows += total - report.dropped
                assert progress.quality is not None
                progress.quality.merge(report)
            finally:
                batch.unpersist()
        except BaseException as exc:  # surfaced after the query stops, with its own type
            failure.append(exc)
            raise

    query = (
        stream.writeStream.foreachBatch(each_batch)
        .option("checkpointLocation", str(ctx.checkpoint_path(flow.name)))
        .queryName(f"orderlake_{flow.name}")
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination()
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    _ensure_table(ctx, flow, target, stream)
    if not checked.expectations:
        progress.quality = None
    return progress


def _ensure_table(ctx: FlowContext, flow: Flow, target: Dataset, stream: DataFrame) -> None:
    """A streaming table exists after its first update, even when no rows came yet."""
    path = ctx.table_path(target.name)
    if (path / "_delta_log").is_dir():
        return
    empty = ctx.spark.createDataFrame([], stream.schema)
    if isinstance(flow, AutoCdcFlow):
        tombstones = ctx.table_path(f"__{target.name}_tombstones")
        apply_batch(ctx.spark, empty, flow, path, tombstones, target.table_properties)
    else:
        ctx.append(empty, path, target, flow.name, None)  # no txn: batch ids start at 0


def query_flows(graph: PipelineGraph, ingest: set[str]) -> list[Flow]:
    """The table flows that are not cloudFiles ingestion, in definition order."""
    return [f for f in graph.table_flows() if f.name not in ingest]


__all__ = ["FlowContext", "FlowProgress", "QueryFlow", "query_flows", "run_flow"]
