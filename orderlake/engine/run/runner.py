"""LocalPipeline: one warehouse + one volume folder + the bundle's pipeline, run locally.

An update = Auto Loader flows (files -> bronze, exactly once) and then every streaming flow
(bronze -> quarantine, bronze -> checks -> AUTO CDC target), each from its checkpoint.
"""

from __future__ import annotations

import contextlib
import glob
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from orderlake.bundle_config import load_bundle
from orderlake.engine.autoloader.ingest import IngestContext, IngestResult, probe, run_ingest
from orderlake.engine.autoloader.ledger import Ledger, write_atomic
from orderlake.engine.autoloader.reader import CloudFilesSource, LocalAutoLoader
from orderlake.engine.delta_log import is_delta_table, latest_commit_info, latest_version
from orderlake.engine.dp.graph import (
    AutoCdcFlow,
    Dataset,
    Flow,
    GraphError,
    PipelineGraph,
    QueryFlow,
)
from orderlake.engine.dp.loader import DefinitionError, LocalSparkSession, load_definitions
from orderlake.engine.faults import kill_point
from orderlake.engine.interrupt import STOP, Interrupted
from orderlake.engine.lock import warehouse_lock
from orderlake.engine.run.accounting import sentence
from orderlake.engine.run.autocdc import empty_target
from orderlake.engine.run.eventlog import EventLog
from orderlake.engine.run.expectations import QualityReport, enforce
from orderlake.engine.run.flow_state import FlowStates
from orderlake.engine.run.flows import (
    FlowContext,
    FlowProgress,
    query_flows,
    run_flows,
    tombstone_table,
    written_tables,
)
from orderlake.engine.run.maintenance import Compaction, compact_due
from orderlake.engine.run.table_changes import read_appended, source_version
from orderlake.engine.session import get_spark, spark_jvm_pid
from orderlake.errors import ConfigurationError
from orderlake.settings import REPO_ROOT, PipelineSettings
from orderlake.storage.path import AnyPath, as_path, is_remote, remote_spark

# table name -> location registered in this process's session catalog (in-memory catalog)
_REGISTERED: dict[str, str] = {}


@dataclass
class UpdateResult:
    update_id: int
    ingest: list[IngestResult] = field(default_factory=list)
    flows: list[FlowProgress] = field(default_factory=list)
    seconds: float = 0.0
    full_refresh: bool = False
    compactions: list[Compaction] = field(default_factory=list)  # after the update

    @property
    def files_loaded(self) -> int:
        """Files that gave rows (an empty or header-only file is counted in `files_empty`)."""
        return sum(len(i.loaded) for i in self.ingest)

    @property
    def files_empty(self) -> int:
        return sum(len(i.empty) for i in self.ingest)

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
        wave = [f for f in pending if not (needs[f.name] & (writers - {f.target}))]
        if not wave:
            raise GraphError(
                "the flows form a cycle, none can run first: "
                + ", ".join(f"{f.name} reads {sorted(needs[f.name] & writers)}" for f in pending)
            )
        waves.append(wave)
        pending = [f for f in pending if f not in wave]
    return waves


# Pipeline source files Databricks runs that the local engine cannot: refused by name, since
# skipping one would run a different pipeline than the bundle deploys.
UNSUPPORTED_SOURCES = {".sql": "SQL", ".ipynb": "notebook"}


def definition_files(root: Path, libraries: list[str]) -> list[Path]:
    """The pipeline's `libraries` globs (relative to resources/), as Python files.

    Other files a glob matches (`__pycache__/`, READMEs) are not pipeline source; a SQL or
    notebook source is, and is refused."""
    found: set[Path] = set()
    for pattern in libraries:
        base = (root / "resources" / pattern).as_posix()
        for name in glob.glob(base, recursive=True):
            path = Path(name)
            if not path.is_file():
                continue
            if path.suffix.lower() in UNSUPPORTED_SOURCES:
                raise DefinitionError(
                    f"{path.resolve()}: {UNSUPPORTED_SOURCES[path.suffix.lower()]} pipeline "
                    "source is not supported by the local engine (Python definitions only)"
                )
            if path.suffix == ".py":
                found.add(path.resolve())
    return sorted(found)


class LocalPipeline:
    def __init__(
        self,
        volume_path: AnyPath | str,
        warehouse_path: AnyPath | str,
        spark: SparkSession | None = None,
        conf_overrides: dict[str, str] | None = None,
        bundle_root: Path | None = None,
        target: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.volume_path = as_path(volume_path).resolve()
        self.warehouse_path = as_path(warehouse_path).resolve()
        self.root = Path(bundle_root or REPO_ROOT)
        self.bundle = load_bundle(self.root, target)
        self.progress = progress or (lambda message: None)
        remote = is_remote(self.volume_path) or is_remote(self.warehouse_path)
        # A bucket needs the connector in the session: one with its settings, from the env.
        self.spark = spark or (remote_spark(str(self.warehouse_path)) if remote else get_spark())
        self.conf = self._configuration(conf_overrides or {})
        for key, value in self.conf.items():
            self.spark.conf.set(key, value)
        self.settings = PipelineSettings.from_conf(self.conf)
        self.state_path = self.warehouse_path / "_orderlake"
        self.ledger = Ledger(self.state_path / "updates")
        self.events = EventLog(self.state_path / "event_log.jsonl", self.bundle.pipeline_name)
        self.pipeline_id = ""  # read or created under the lock, by the first update
        self.autoloader = LocalAutoLoader(self.spark)
        self.session = LocalSparkSession(self.spark, self.autoloader)
        self.graph: PipelineGraph = load_definitions(
            definition_files(self.root, self.bundle.libraries), self.session
        )
        self.flow_states = FlowStates(self.state_path / "flows")
        self._sources: dict[str, set[str]] = {}
        self._batch_sources: dict[str, set[str]] = {}
        self._producing: list[str] = []
        self.session.stream_source = self._stream_source
        self.session.view_source = self._view_source
        self._view_hook: Callable[[str, DataFrame], DataFrame] | None = None
        self._all_reads: dict[str, set[str]] = {}
        self._register_tables()
        self._check_graph()
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
        try:
            return str(json.loads(marker.read_text(encoding="utf-8"))["pipeline_id"])
        except FileNotFoundError:
            pass
        pipeline_id = str(uuid.uuid4())
        write_atomic(marker, json.dumps({"pipeline_id": pipeline_id}))  # whole or absent
        return pipeline_id

    def _prepare(self, full_refresh: bool = False) -> None:
        """What the first update creates, and what an interrupted one left: under the lock."""
        self.pipeline_id = self._pipeline_id()
        legacy = self.warehouse_path / "_checkpoints"
        if legacy.is_dir() and not full_refresh and not self.flow_states.folder.is_dir():
            raise WarehouseFormatError(
                f"{self.warehouse_path} was written by an earlier orderlake (streaming "
                "checkpoints in _checkpoints/); run `orderlake refresh` once to rebuild its "
                "downstream tables from bronze in the current format"
            )
        if (self.state_path / REFRESH_MARKER).exists():
            self._finish_refresh()
        _purge_trash(self.warehouse_path / "tables")
        _purge_trash(self.warehouse_path)
        _purge_trash(self.state_path)
        for flow in self.ingest_flows:
            # Auto Loader targets exist from the start, so other flows can read them.
            if not is_delta_table(self.table_path(flow.target)):
                self._append(
                    flow.func().limit(0),
                    self.table_path(flow.target),
                    self.graph.dataset(flow.target),
                    None,
                )

    def pending_work(self) -> str | None:
        """Why an update must run even though no new file has arrived, or None."""
        if (self.state_path / REFRESH_MARKER).exists():
            return "a full refresh was interrupted"
        unfinished = [
            m.update_id for f in self.ingest_flows for m in self.ledger.unfinished(f.name)
        ]
        if unfinished:
            return f"update {unfinished[0]} did not finish"
        last = self.events.last_update_progress()
        state = last["details"]["update_progress"].get("state") if last else None
        if last and state != "COMPLETED":
            return f"update {last['origin']['update_id']} ended {state}"
        ingest = {f.name for f in self.ingest_flows}
        for flow in query_flows(self.graph, ingest):
            run = self.flow_states.last(flow.name)
            if run is not None and not run.done:
                return f"flow {flow.name} did not finish its run {run.run}"
            kind = self.graph.dataset(flow.target).kind
            read = self._tables_needed(flow) if kind == "materialized_view" else None
            for source in read if read is not None else self._tables_read(flow):
                start = run.next_start(source) if run else 0
                if source_version(self.table_path(source)) >= start:
                    return f"flow {flow.name} has not applied every row of {source} yet"
        return None

    def warm_up(self) -> None:
        """Work the next update would start with, done ahead while `watch` waits: the file
        list of every table a MERGE writes (Delta computes it per table version)."""
        for flow in self.graph.flows:
            if not isinstance(flow, AutoCdcFlow):
                continue
            path = self.table_path(flow.target)
            if is_delta_table(path):
                try:
                    self.spark.read.format("delta").load(str(path)).inputFiles()
                except Exception:  # only a head start: the update does it anyway
                    pass

    def _stream_source(self, name: str) -> DataFrame | None:
        """`readStream.table(name)` outside a flow run (learning what a flow reads): no rows,
        with the table's columns (from its log, or, before it exists, from the flow that will
        write it)."""
        if name not in self.graph.datasets or not self.graph.dataset(name).stored:
            return None
        path = self.table_path(name)
        if is_delta_table(path):
            return read_appended(self.spark, path, 0, -1).frame
        if name in self._producing:
            cycle = [*self._producing[self._producing.index(name) :], name]
            raise GraphError(
                f"the datasets form a cycle: {' -> '.join(cycle)} (each reads the next); "
                "a pipeline's graph must be acyclic"
            )
        writer = next((f for f in self.graph.flows if f.target == name), None)
        if writer is None:
            return None
        self._producing.append(name)
        # The writer's own sources are not the caller's: a flow reading a table that an ingest
        # flow writes is not an ingest flow itself, and reads only what it reads itself.
        requests = list(self.autoloader.requests)
        reads = (set(self.session.tables_read), set(self.session.batch_tables_read))
        try:
            if isinstance(writer, AutoCdcFlow):
                source = self.session.readStream.table(writer.source).limit(0)
                return empty_target(self.spark, source, writer)
            return writer.func().limit(0)
        finally:
            self._producing.pop()
            self.autoloader.requests[:] = requests
            self.session.tables_read, self.session.batch_tables_read = reads

    def _view_source(self, name: str) -> DataFrame | None:
        """A read of view `name`: its query, run where it is read (a view is not stored), with
        its expectations applied by the flow run reading it (`view_checks`)."""
        if not self.graph.is_view(name):
            return None
        if name in self._producing:
            cycle = [*self._producing[self._producing.index(name) :], name]
            raise GraphError(
                f"the datasets form a cycle: {' -> '.join(cycle)} (each reads the next); "
                "a pipeline's graph must be acyclic"
            )
        self._producing.append(name)
        try:
            frame = self.graph.view_flow(name).func()
        finally:
            self._producing.pop()
        hook = self._view_hook
        if hook is None or self.session.learning:
            return frame
        return hook(name, frame)

    @contextlib.contextmanager
    def view_checks(self, hook: Callable[[str, DataFrame], DataFrame]) -> Iterator[None]:
        """While open, every view a flow reads goes through `hook` (its expectations)."""
        saved, self._view_hook = self._view_hook, hook
        try:
            yield
        finally:
            self._view_hook = saved

    def stream_table(self, name: str) -> DataFrame:
        """`spark.readStream.table(name)` as the definitions see it (bound rows in a run)."""
        return self.session.readStream.table(name)

    def table_path(self, name: str) -> AnyPath:
        return self.warehouse_path / "tables" / name

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
            if dataset.stored:
                self._register(dataset.name)

    def _ingest_flows(self) -> list[QueryFlow]:
        """Flows that read cloudFiles (probing them writes nothing); their sources are kept."""
        found = []
        self.ingest_sources: dict[str, CloudFilesSource] = {}
        for flow in self.graph.table_flows():
            if not isinstance(flow, QueryFlow):
                continue
            try:
                source = probe(flow, self.autoloader)
            except AnalysisException:
                continue  # reads a table that does not exist yet: not an ingest flow
            if source is not None:
                checked = [
                    v
                    for v in sorted(self._all_reads.get(flow.name, ()))
                    if self.graph.is_view(v) and self.graph.dataset(v).expectations
                ]
                if checked:
                    raise GraphError(
                        f"flow {flow.name!r} reads cloudFiles through view(s) {checked} that "
                        "have expectations, which the local engine does not apply while "
                        "loading files: put the expectations on a flow reading the loaded table"
                    )
                found.append(flow)
                self.ingest_sources[flow.name] = source
        return found

    # --- writes --------------------------------------------------------------------------------

    def _overwrite(self, frame: DataFrame, path: AnyPath, dataset: Dataset, tag: str | None) -> int:
        """Replace a materialized view's rows (and columns) in one commit."""
        return self._append(frame, path, dataset, tag, mode="overwrite")

    def _append(
        self,
        frame: DataFrame,
        path: AnyPath,
        dataset: Dataset,
        tag: str | None,
        mode: str = "append",
    ) -> int:
        """Append, the commit carrying `tag` (how a replay finds it); returns the rows written.

        No Delta transaction id: looking one up reads the table's whole log state (three Spark
        jobs per write), and the tag in the log, read from Python, proves the same thing."""
        writer = frame.write.format("delta").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        if tag:
            writer = writer.option("userMetadata", tag)
        before = latest_version(path)
        if before is None:
            for key, value in dataset.table_properties.items():
                if key.startswith("delta."):
                    writer = writer.option(key, value)
        writer.save(str(path))
        self._register(dataset.name)
        if latest_version(path) == before:
            return 0
        info = latest_commit_info(path) or {}
        return int((info.get("operationMetrics") or {}).get("numOutputRows", 0))

    # --- updates -------------------------------------------------------------------------------

    def update(
        self, full_refresh: bool = False, wait_seconds: float = 0.0, lock_held: bool = False
    ) -> UpdateResult:
        """Run one triggered update, holding the warehouse lock (unless the caller holds it)."""
        if lock_held:
            return self._maintained(self._update(full_refresh))
        lock = warehouse_lock(self.warehouse_path)
        with lock.acquired(wait_seconds, jvm_pid=spark_jvm_pid(self.spark)):
            return self._maintained(self._update(full_refresh))

    def _maintained(self, result: UpdateResult) -> UpdateResult:
        """After a completed update, still under the lock: compact the tables whose small
        files have piled up (maintenance.py). A failure leaves the tables as they were and
        the update completed; a stop requested meanwhile is still a stop."""
        tables = {
            name: (name, self.table_path(name), self.graph.dataset(flow.target).table_properties)
            for flow in self.graph.flows
            if self.graph.dataset(flow.target).stored
            for name in written_tables(self.graph, flow)
        }
        try:
            result.compactions = compact_due(self.spark, tables.values(), self.progress)
        except Exception as exc:
            STOP.check()
            self.progress(f"compaction skipped: {error_text(exc)}")
        return result

    def _update(self, full_refresh: bool) -> UpdateResult:
        STOP.check()
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
            self._prepare(full_refresh)
            self._emit_definitions(update_id)
            if full_refresh:
                self._reset_downstream(update_id)
            self._run_update(update_id, result)
        except BaseException as exc:
            stopped = exc if isinstance(exc, Interrupted) else None
            if stopped is None and STOP.signum is not None:
                stopped = Interrupted(STOP.signum)  # a cancelled Spark job, a JVM gone
            if stopped is not None:
                stopped.update_id = update_id
                self.events.emit(
                    "update_progress",
                    f"Update canceled: {stopped}",
                    update_id=update_id,
                    level="WARN",
                    details={"state": "CANCELED", "reason": str(stopped)},
                )
                raise stopped from None
            self.events.emit(
                "update_progress",
                f"Update failed: {error_text(exc)}",
                update_id=update_id,
                level="ERROR",
                details={"state": "FAILED", "error": error_text(exc)},
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

    def _run_update(self, update_id: int, result: UpdateResult) -> None:
        ingest_ctx = IngestContext(
            self.spark,
            self.autoloader,
            self.ledger,
            as_path(self.settings.rejected_path),
            self.progress,
        )
        for flow in self.ingest_flows:
            target = self.graph.dataset(flow.target)
            quality: list[QualityReport] = []

            def write(frame: DataFrame, tag: str, target=target, quality=quality) -> None:
                # The table's expectations apply to the files' rows as they are appended (a
                # `fail` rule raises before the commit: the files stay in source/, retried).
                checked = enforce(frame, target.expectations, target.name, count_in_write=True)
                self._append(checked.kept, self.table_path(target.name), target, tag)
                quality.append(checked.report())

            ingested = run_ingest(
                ingest_ctx,
                flow,
                self.ingest_sources[flow.name],
                self.table_path(target.name),
                update_id,
                write,
            )
            result.ingest.append(ingested)
            self._emit_ingest(update_id, ingested, quality[0] if quality else None)
        flow_ctx = FlowContext(
            self.spark,
            self.graph,
            self.table_path,
            self.flow_states,
            self._append,
            self.session.bind,
            self._tables_read,
            self.view_checks,
            self.stream_table,
            self._batch_sources_of,
            self._overwrite,
        )
        flows = query_flows(self.graph, {f.name for f in self.ingest_flows})
        for wave in flow_waves(flows, self._tables_needed):
            STOP.check()
            self.progress(f"{', '.join(f.name for f in wave)}: applying new rows")
            for progress in run_flows(flow_ctx, wave):
                self._register(progress.dataset)
                result.flows.append(progress)
                added_up = sentence(progress.input_rows, progress.extra)
                self.progress(
                    f"{progress.flow}: {added_up}"
                    if added_up
                    else f"{progress.flow}: {progress.input_rows:,} rows in, "
                    f"{progress.output_rows:,} written"
                )
                self.events.emit(
                    "flow_progress",
                    f"Flow '{progress.flow}' has COMPLETED.",
                    update_id=update_id,
                    flow_name=progress.flow,
                    details=progress.as_details(),
                )

    def _emit_definitions(self, update_id: int) -> None:
        """The graph as Databricks logs it (`dataset_definition`, `flow_definition`), so
        `show` and `report` draw it from the log without loading the definitions."""
        ingest = {f.name: self.ingest_sources[f.name] for f in self.ingest_flows}
        for dataset in self.graph.datasets.values():
            dataset_type = {"table": "STREAMING_TABLE", "materialized_view": "MATERIALIZED_VIEW"}
            self.events.emit(
                "dataset_definition",
                f"Dataset '{dataset.name}' defined",
                update_id=update_id,
                details={
                    "dataset_name": dataset.name,
                    "dataset_type": dataset_type.get(dataset.kind, "VIEW"),
                    "expectations": [
                        {"name": e.name, "constraint": e.constraint, "action": e.action}
                        for e in dataset.expectations
                    ],
                },
            )
        for flow in self.graph.flows:
            if flow.name in ingest:
                inputs, flow_type = [f"cloudFiles:{ingest[flow.name].path}"], "APPEND"
            elif isinstance(flow, AutoCdcFlow):
                inputs, flow_type = [flow.source], "AUTO_CDC"
            else:
                self._tables_read(flow)
                inputs, flow_type = sorted(self._all_reads[flow.name]), "APPEND"
                kind = self.graph.dataset(flow.target).kind
                if kind == "view":
                    flow_type = "VIEW"
                elif kind == "materialized_view":
                    flow_type = "COMPLETE"
            self.events.emit(
                "flow_definition",
                f"Flow '{flow.name}' defined",
                update_id=update_id,
                flow_name=flow.name,
                details={
                    "output_dataset": flow.target,
                    "input_datasets": inputs,
                    "flow_type": flow_type,
                },
            )

    def _tables_read(self, flow: Flow) -> set[str]:
        """The tables a flow's query reads as a stream (calling it only builds a plan)."""
        if flow.name not in self._sources:
            self.session.tables_read.clear()
            self.session.batch_tables_read.clear()
            if isinstance(flow, QueryFlow):
                query = flow.func
            else:
                source = flow.source
                query = lambda: self.session.readStream.table(source)  # noqa: E731
            self.session.learning = True
            try:
                query()
            finally:
                self.session.learning = False
            streamed, whole = set(self.session.tables_read), set(self.session.batch_tables_read)
            # Views are read where they are used: what counts is the tables they read.
            self._all_reads[flow.name] = {t for t in streamed | whole if t in self.graph.datasets}
            self._sources[flow.name] = {t for t in streamed if self._stored(t)}
            self._batch_sources[flow.name] = {t for t in whole if self._stored(t)}
        return self._sources[flow.name]

    def _batch_sources_of(self, flow: Flow) -> set[str]:
        self._tables_read(flow)
        return self._batch_sources[flow.name]

    def _stored(self, name: str) -> bool:
        return name in self.graph.datasets and self.graph.dataset(name).stored

    def _tables_needed(self, flow: Flow) -> set[str]:
        """Every stored table a flow reads, as a stream or whole: it runs after their writers."""
        return self._tables_read(flow) | self._batch_sources[flow.name]

    def _check_read(self, name: str) -> None:
        """A flow may read a dataset of the pipeline or a table that exists outside it."""
        if name in self.graph.datasets or self.spark.catalog.tableExists(name):
            return
        raise GraphError(
            f"reads dataset {name!r}, which no definition file declares and which is not an "
            "existing table"
        )

    def _check_graph(self) -> None:
        """Validate the graph as Databricks does before an update: each flow's query builds
        (a read of an unknown dataset, an unsupported option is an error naming the file),
        and the datasets form no cycle."""
        self.session.check_read = self._check_read
        reads: dict[str, set[str]] = {}
        for flow in self.graph.flows:
            try:
                self.autoloader.requests.clear()
                self._tables_read(flow)
                reads[flow.name] = self._all_reads[flow.name]
                if self.autoloader.requests and isinstance(flow, AutoCdcFlow):
                    raise GraphError(
                        f"AUTO CDC source {flow.source!r} reads cloudFiles, which the local "
                        "engine loads only into a streaming table: land the files in a "
                        "streaming table and use it (or a view over it) as the source"
                    )
            except Interrupted:
                raise
            except Exception as exc:
                where = flow.source_file or "pipeline definitions"
                raise DefinitionError(f"{where}: flow {flow.name!r}: {error_text(exc)}") from exc
        self.graph.check_acyclic(reads)

    def _emit_ingest(
        self, update_id: int, ingested: IngestResult, quality: QualityReport | None
    ) -> None:
        details = {
            "status": "COMPLETED",
            "metrics": {
                "num_output_rows": ingested.rows,
                "num_files_loaded": len(ingested.loaded),
                "num_files_empty": len(ingested.empty),
                "num_files_rejected": len(ingested.rejected),
            },
            "rejected_files": [{"file": f, "reason": r} for f, r in ingested.rejected],
            "deferred_files": ingested.deferred,
            # where each file went: `_source_file` keeps the path it was loaded from
            "files": [asdict(f) for f in ingested.files],
        }
        if quality is not None and quality.counts:
            details["data_quality"] = quality.as_details()
        self.events.emit(
            "flow_progress",
            f"Flow '{ingested.flow}' has COMPLETED.",
            update_id=update_id,
            flow_name=ingested.flow,
            details=details,
        )

    def _reset_downstream(self, update_id: int) -> None:
        """Full refresh: drop every table not fed by Auto Loader, and its checkpoints.

        The intent is written first, so a refresh cut short is finished by the next update
        (whatever command starts it) instead of leaving some tables dropped and some not."""
        self.progress("full refresh: rebuilding downstream tables from bronze")
        ingest_targets = {f.target for f in self.ingest_flows}
        tables = [
            name
            for name, dataset in self.graph.datasets.items()
            if dataset.stored and name not in ingest_targets
        ]
        marker = {"update_id": update_id, "tables": tables}
        write_atomic(self.state_path / REFRESH_MARKER, json.dumps(marker))
        kill_point("refresh_planned")
        self._finish_refresh()

    def _finish_refresh(self) -> None:
        """Drop what the refresh marker names: each folder is renamed away first (atomic), so
        a crash never leaves a table half deleted."""
        marker = self.state_path / REFRESH_MARKER
        tables = json.loads(marker.read_text(encoding="utf-8"))["tables"]
        # Every flow state belongs to a downstream flow (Auto Loader flows use the ledger);
        # _checkpoints/ is where warehouses of earlier versions kept theirs.
        _trash(self.flow_states.folder)
        _trash(self.warehouse_path / "_checkpoints")
        for name in tables:
            self.spark.sql(f"DROP TABLE IF EXISTS `{name}`")
            _REGISTERED.pop(name, None)
            for folder in (name, tombstone_table(name)):
                _trash(self.table_path(folder))
                kill_point("refresh_drop")
        marker.unlink()
        _purge_trash(self.warehouse_path / "tables")
        _purge_trash(self.warehouse_path)
        _purge_trash(self.state_path)


REFRESH_MARKER = "refresh.json"


class WarehouseFormatError(ConfigurationError, RuntimeError):
    """The warehouse was written in a format this version does not run (refresh it)."""
_TRASH_PREFIX = ".trash-"


def _trash(folder: AnyPath) -> None:
    """Rename a folder out of the way, atomically; `_purge_trash` deletes it later.

    A bucket has no atomic folder rename (it copies object by object): the folder is deleted
    in place. Safe all the same, since the refresh marker is kept until every folder it names
    is gone, and a cut-short delete is redone by the next update."""
    if is_remote(folder):
        folder.storage.delete(str(folder))
        return
    try:
        folder.rename(folder.with_name(f"{_TRASH_PREFIX}{folder.name}-{uuid.uuid4().hex[:8]}"))
    except FileNotFoundError:
        pass


def _purge_trash(parent: AnyPath) -> None:
    if not parent.is_dir():
        return
    if is_remote(parent):
        for leftover in parent.glob(f"{_TRASH_PREFIX}*"):
            leftover.storage.delete(str(leftover))
        return
    for leftover in parent.glob(f"{_TRASH_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def error_text(exc: BaseException) -> str:
    """One line for an update's error: the message, not a Java stack trace."""
    text = str(exc).strip() or type(exc).__name__
    java = getattr(exc, "java_exception", None)
    if java is not None:  # Py4JJavaError: the Java exception's own message
        try:
            text = str(java.getMessage() or java.toString())
        except Exception:
            text = type(exc).__name__
    first = text.splitlines()[0] if text else type(exc).__name__
    return first
