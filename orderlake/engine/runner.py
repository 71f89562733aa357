"""LocalPipeline: one warehouse + one volume folder + the bundle's pipeline, run locally.

An update = Auto Loader flows (files -> bronze, exactly once) and then every streaming flow
(bronze -> quarantine, bronze -> checks -> AUTO CDC target), each from its checkpoint.
"""

from __future__ import annotations

import glob
import json
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from orderlake.bundle_config import load_bundle
from orderlake.engine.autoloader import LocalAutoLoader
from orderlake.engine.delta_log import is_delta_table
from orderlake.engine.eventlog import EventLog
from orderlake.engine.flows import FlowContext, FlowProgress, query_flows, run_flows
from orderlake.engine.graph import Dataset, Flow, PipelineGraph, QueryFlow
from orderlake.engine.ingest import IngestContext, IngestResult, probe, run_ingest
from orderlake.engine.ledger import Ledger, write_atomic
from orderlake.engine.loader import LocalSparkSession, load_definitions
from orderlake.engine.lock import warehouse_lock
from orderlake.engine.session import get_spark
from orderlake.settings import REPO_ROOT, PipelineSettings

# table name -> location registered in this process's session catalog (in-memory catalog)
_REGISTERED: dict[str, str] = {}


@dataclass
class UpdateResult:
    update_id: int
    ingest: list[IngestResult] = field(default_factory=list)
    flows: list[FlowProgress] = field(default_factory=list)
    seconds: float = 0.0
    full_refresh: bool = False

    @property
    def files_loaded(self) -> int:
        return sum(len(i.loaded) + len(i.empty) for i in self.ingest)

    @property
    def files_rejected(self) -> int:
        return sum(len(i.rejected) for i in self.ingest)

    @property
    def bronze_rows(self) -> int:
        return sum(i.rows for i in self.ingest)

    def flow(self, name: str) -> FlowProgress | None:
        return next((f for f in self.flows if f.flow == name), None)


def flow_waves(flows: list[Flow], reads: Callable[[Flow], set[str]]) -> list[list[Flow]]:
    """Flows grouped so a flow runs only after every flow writing a table it reads."""
    pending = list(flows)
    needs = {flow.name: reads(flow) for flow in pending}
    waves: list[list[Flow]] = []
    while pending:
        writers = {flow.target for flow in pending}
        wave = [f for f in pending if not (needs[f.name] & (writers - {f.target}))] or pending[:1]
        waves.append(wave)
        pending = [f for f in pending if f not in wave]
    return waves


def definition_files(root: Path, libraries: list[str]) -> list[Path]:
    """The pipeline's `libraries` globs (relative to resources/), as Python files."""
    found: set[Path] = set()
    for pattern in libraries:
        base = (root / "resources" / pattern).as_posix()
        for name in glob.glob(base, recursive=True):
            path = Path(name)
            if path.is_file() and path.suffix == ".py":
                found.add(path.resolve())
    return sorted(found)


class LocalPipeline:
    def __init__(
        self,
        volume_path: Path,
        warehouse_path: Path,
        spark: SparkSession | None = None,
        conf_overrides: dict[str, str] | None = None,
        bundle_root: Path | None = None,
        target: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.volume_path = Path(volume_path).resolve()
        self.warehouse_path = Path(warehouse_path).resolve()
        self.root = Path(bundle_root or REPO_ROOT)
        self.bundle = load_bundle(self.root, target)
        self.progress = progress or (lambda message: None)
        self.spark = spark or get_spark()
        self.conf = self._configuration(conf_overrides or {})
        for key, value in self.conf.items():
            self.spark.conf.set(key, value)
        self.settings = PipelineSettings.from_conf(self.conf)
        self.state_path = self.warehouse_path / "_orderlake"
        self.ledger = Ledger(self.state_path / "updates")
        self.events = EventLog(self.state_path / "event_log.jsonl", self.bundle.pipeline_name)
        self.pipeline_id = self._pipeline_id()
        self.autoloader = LocalAutoLoader(self.spark)
        self.session = LocalSparkSession(self.spark, self.autoloader)
        self.graph: PipelineGraph = load_definitions(
            definition_files(self.root, self.bundle.libraries), self.session
        )
        self._register_tables()
        self.ingest_flows: list[QueryFlow] = self._ingest_flows()

    # --- set-up --------------------------------------------------------------------------------

    def _configuration(self, overrides: dict[str, str]) -> dict[str, str]:
        conf = dict(self.bundle.pipeline_configuration)
        conf["orders.volume_path"] = str(self.volume_path)
        conf["orders.expectations_path"] = str(self.root / "expectations" / "orders.yml")
        conf.update(overrides)
        return conf

    def _pipeline_id(self) -> str:
        marker = self.state_path / "pipeline.json"
        if marker.exists():
            return json.loads(marker.read_text())["pipeline_id"]
        pipeline_id = str(uuid.uuid4())
        write_atomic(marker, json.dumps({"pipeline_id": pipeline_id}))
        return pipeline_id

    def table_path(self, name: str) -> Path:
        return self.warehouse_path / "tables" / name

    def checkpoint_path(self, flow: str) -> Path:
        return self.warehouse_path / "_checkpoints" / flow

    def _register(self, name: str) -> None:
        """Name the table in the session catalog, so `spark.readStream.table(name)` finds it."""
        path = self.table_path(name)
        if _REGISTERED.get(name) == str(path):
            return
        if is_delta_table(path):
            # External table: dropping the name never touches the data.
            self.spark.sql(f"DROP TABLE IF EXISTS `{name}`")
            self.spark.sql(f"CREATE TABLE `{name}` USING DELTA LOCATION '{path}'")
            _REGISTERED[name] = str(path)

    def _register_tables(self) -> None:
        for dataset in self.graph.datasets.values():
            if dataset.kind == "table":
                self._register(dataset.name)

    def _ingest_flows(self) -> list[QueryFlow]:
        """Flows that read cloudFiles; their tables are created empty so others can read them."""
        found = []
        for flow in self.graph.table_flows():
            if not isinstance(flow, QueryFlow):
                continue
            try:
                source = probe(flow, self.autoloader)
            except AnalysisException:
                continue  # reads a table that does not exist yet: not an ingest flow
            if source is None:
                continue
            found.append(flow)
            if not is_delta_table(self.table_path(flow.target)):
                frame = flow.func()
                self._append(
                    frame.limit(0),
                    self.table_path(flow.target),
                    self.graph.dataset(flow.target),
                    flow.name,
                    None,
                )
        return found

    # --- writes --------------------------------------------------------------------------------

    def _append(
        self,
        frame: DataFrame,
        path: Path,
        dataset: Dataset,
        flow: str,
        version: int | None,
        user_metadata: str | None = None,
    ) -> None:
        """Idempotent append: Delta skips a (txnAppId, txnVersion) it has already committed."""
        writer = frame.write.format("delta").mode("append")
        if version is not None:
            writer = writer.option("txnAppId", f"{self.pipeline_id}:{flow}").option(
                "txnVersion", str(version)
            )
        if user_metadata:
            writer = writer.option("userMetadata", user_metadata)
        if not is_delta_table(path):
            for key, value in dataset.table_properties.items():
                if key.startswith("delta."):
                    writer = writer.option(key, value)
        writer.save(str(path))
        self._register(dataset.name)

    # --- updates -------------------------------------------------------------------------------

    def update(
        self, full_refresh: bool = False, wait_seconds: float = 0.0, lock_held: bool = False
    ) -> UpdateResult:
        """Run one triggered update, holding the warehouse lock (unless the caller holds it)."""
        if lock_held:
            return self._update(full_refresh)
        with warehouse_lock(self.warehouse_path).acquired(wait_seconds):
            return self._update(full_refresh)

    def _update(self, full_refresh: bool) -> UpdateResult:
        started = time.monotonic()
        update_id = max(self.ledger.last_update_id(), int(self.events.last_update_id() or 0)) + 1
        result = UpdateResult(update_id, full_refresh=full_refresh)
        self.events.emit(
            "update_progress",
            "Update started",
            update_id=update_id,
            details={"state": "RUNNING", "full_refresh": full_refresh},
        )
        try:
            if full_refresh:
                self._reset_downstream()
            ingest_ctx = IngestContext(
                self.spark,
                self.autoloader,
                self.ledger,
                self.pipeline_id,
                Path(self.settings.rejected_path),
                self.progress,
            )
            for flow in self.ingest_flows:
                target = self.graph.dataset(flow.target)

                def write(
                    frame: DataFrame, version: int, tag: str, flow=flow, target=target
                ) -> None:
                    self._append(
                        frame, self.table_path(target.name), target, flow.name, version, tag
                    )

                ingested = run_ingest(
                    ingest_ctx, flow, self.table_path(target.name), update_id, write
                )
                result.ingest.append(ingested)
                self._emit_ingest(update_id, ingested)
            flow_ctx = FlowContext(
                self.spark,
                self.graph,
                self.pipeline_id,
                self.table_path,
                self.checkpoint_path,
                self._append,
                self.session.bind,
            )
            flows = query_flows(self.graph, {f.name for f in self.ingest_flows})
            for wave in flow_waves(flows, self._tables_read):
                for progress in self._run_wave(flow_ctx, wave):
                    result.flows.append(progress)
                    self.events.emit(
                        "flow_progress",
                        f"Flow '{progress.flow}' has COMPLETED.",
                        update_id=update_id,
                        flow_name=progress.flow,
                        details=progress.as_details(),
                    )
        except BaseException as exc:
            self.events.emit(
                "update_progress",
                f"Update failed: {exc}",
                update_id=update_id,
                level="ERROR",
                details={"state": "FAILED", "error": str(exc)},
            )
            raise
        result.seconds = time.monotonic() - started
        self.events.emit(
            "update_progress",
            "Update completed",
            update_id=update_id,
            details={"state": "COMPLETED", "seconds": round(result.seconds, 3)},
        )
        return result

    def _tables_read(self, flow: Flow) -> set[str]:
        """The tables a flow's query reads (calling it only builds a plan)."""
        self.session.tables_read.clear()
        query = flow.func if isinstance(flow, QueryFlow) else self.graph.view_flow(flow.source).func
        query()
        return set(self.session.tables_read)

    def _run_wave(self, ctx: FlowContext, wave: list[Flow]) -> list[FlowProgress]:
        """Flows reading the same single table share one query; the groups run side by side."""
        by_source: dict[str, list[Flow]] = {}
        alone: list[tuple[str | None, list[Flow]]] = []
        for flow in wave:
            reads = self._tables_read(flow)
            if len(reads) == 1:
                by_source.setdefault(next(iter(reads)), []).append(flow)
            else:
                alone.append((None, [flow]))
        runs = [*by_source.items(), *alone]

        def one(source: str | None, flows: list[Flow]) -> list[FlowProgress]:
            names = ", ".join(f.name for f in flows)
            self.progress(f"{names}: applying new rows" + (f" of {source}" if source else ""))
            done = run_flows(ctx, flows, source)
            for progress in done:
                self._register(progress.dataset)
                self.progress(
                    f"{progress.flow}: {progress.input_rows:,} rows in, "
                    f"{progress.output_rows:,} kept"
                )
            return done

        if len(runs) == 1:
            return one(*runs[0])
        with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="flow") as pool:
            futures = [pool.submit(one, source, flows) for source, flows in runs]
        return [p for future in futures for p in future.result()]  # re-raises a failure

    def _emit_ingest(self, update_id: int, ingested: IngestResult) -> None:
        self.events.emit(
            "flow_progress",
            f"Flow '{ingested.flow}' has COMPLETED.",
            update_id=update_id,
            flow_name=ingested.flow,
            details={
                "status": "COMPLETED",
                "metrics": {
                    "num_output_rows": ingested.rows,
                    "num_files_loaded": len(ingested.loaded),
                    "num_files_empty": len(ingested.empty),
                    "num_files_rejected": len(ingested.rejected),
                },
                "rejected_files": [{"file": f, "reason": r} for f, r in ingested.rejected],
                "deferred_files": ingested.deferred,
            },
        )

    def _reset_downstream(self) -> None:
        """Full refresh: drop every table not fed by Auto Loader, and its checkpoints."""
        self.progress("full refresh: rebuilding downstream tables from bronze")
        ingest_targets = {f.target for f in self.ingest_flows}
        # Every checkpoint belongs to a downstream flow (Auto Loader flows use the ledger).
        shutil.rmtree(self.warehouse_path / "_checkpoints", ignore_errors=True)
        for dataset in self.graph.datasets.values():
            if dataset.kind != "table" or dataset.name in ingest_targets:
                continue
            self.spark.sql(f"DROP TABLE IF EXISTS `{dataset.name}`")
            _REGISTERED.pop(dataset.name, None)
            for name in (dataset.name, f"__{dataset.name}_tombstones"):
                shutil.rmtree(self.table_path(name), ignore_errors=True)
