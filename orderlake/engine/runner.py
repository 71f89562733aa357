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
from orderlake.engine.faults import kill_point
from orderlake.engine.flows import FlowContext, FlowProgress, query_flows, run_flows
from orderlake.engine.graph import Dataset, Flow, PipelineGraph, QueryFlow
from orderlake.engine.ingest import IngestContext, IngestResult, probe, run_ingest
from orderlake.engine.interrupt import STOP, Interrupted
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
        self.pipeline_id = ""  # read or created under the lock, by the first update
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
        try:
            return str(json.loads(marker.read_text(encoding="utf-8"))["pipeline_id"])
        except FileNotFoundError:
            pass
        pipeline_id = str(uuid.uuid4())
        write_atomic(marker, json.dumps({"pipeline_id": pipeline_id}))  # whole or absent
        return pipeline_id

    def _prepare(self) -> None:
        """What the first update creates, and what an interrupted one left: under the lock."""
        self.pipeline_id = self._pipeline_id()
        if (self.state_path / REFRESH_MARKER).exists():
            self._finish_refresh()
        _purge_trash(self.warehouse_path / "tables")
        _purge_trash(self.warehouse_path)
        for flow in self.ingest_flows:
            # Auto Loader targets exist from the start, so other flows can read them.
            if not is_delta_table(self.table_path(flow.target)):
                self._append(
                    flow.func().limit(0),
                    self.table_path(flow.target),
                    self.graph.dataset(flow.target),
                    flow.name,
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
        return None

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
        """Flows that read cloudFiles (probing them writes nothing)."""
        found = []
        for flow in self.graph.table_flows():
            if not isinstance(flow, QueryFlow):
                continue
            try:
                source = probe(flow, self.autoloader)
            except AnalysisException:
                continue  # reads a table that does not exist yet: not an ingest flow
            if source is not None:
                found.append(flow)
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
        lock = warehouse_lock(self.warehouse_path)
        with lock.acquired(wait_seconds, jvm_pid=spark_jvm_pid(self.spark)):
            return self._update(full_refresh)

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
            self._prepare()
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
            self.pipeline_id,
            Path(self.settings.rejected_path),
            self.progress,
        )
        for flow in self.ingest_flows:
            target = self.graph.dataset(flow.target)

            def write(frame: DataFrame, version: int, tag: str, flow=flow, target=target) -> None:
                self._append(frame, self.table_path(target.name), target, flow.name, version, tag)

            ingested = run_ingest(ingest_ctx, flow, self.table_path(target.name), update_id, write)
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
            STOP.check()
            for progress in self._run_wave(flow_ctx, wave):
                result.flows.append(progress)
                self.events.emit(
                    "flow_progress",
                    f"Flow '{progress.flow}' has COMPLETED.",
                    update_id=update_id,
                    flow_name=progress.flow,
                    details=progress.as_details(),
                )

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

    def _reset_downstream(self, update_id: int) -> None:
        """Full refresh: drop every table not fed by Auto Loader, and its checkpoints.

        The intent is written first, so a refresh cut short is finished by the next update
        (whatever command starts it) instead of leaving some tables dropped and some not."""
        self.progress("full refresh: rebuilding downstream tables from bronze")
        ingest_targets = {f.target for f in self.ingest_flows}
        tables = [
            name
            for name, dataset in self.graph.datasets.items()
            if dataset.kind == "table" and name not in ingest_targets
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
        # Every checkpoint belongs to a downstream flow (Auto Loader flows use the ledger).
        _trash(self.warehouse_path / "_checkpoints")
        for name in tables:
            self.spark.sql(f"DROP TABLE IF EXISTS `{name}`")
            _REGISTERED.pop(name, None)
            for folder in (name, f"__{name}_tombstones"):
                _trash(self.table_path(folder))
                kill_point("refresh_drop")
        marker.unlink()
        _purge_trash(self.warehouse_path / "tables")
        _purge_trash(self.warehouse_path)


REFRESH_MARKER = "refresh.json"
_TRASH_PREFIX = ".trash-"


def _trash(folder: Path) -> None:
    """Rename a folder out of the way, atomically; `_purge_trash` deletes it later."""
    try:
        folder.rename(folder.with_name(f"{_TRASH_PREFIX}{folder.name}-{uuid.uuid4().hex[:8]}"))
    except FileNotFoundError:
        pass


def _purge_trash(parent: Path) -> None:
    if not parent.is_dir():
        return
    for leftover in parent.glob(f"{_TRASH_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def spark_jvm_pid(spark: SparkSession) -> int | None:
    """The pid of the Spark JVM this process launched (None when it joined an existing one)."""
    gateway = getattr(spark.sparkContext, "_gateway", None)
    proc = getattr(gateway, "proc", None)
    return getattr(proc, "pid", None)


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
