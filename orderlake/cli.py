"""`orderlake`: run the orders pipeline locally, watch for files, look at the tables.

Exit codes: 0 ok; 1 the update failed (a `fail` rule, an error in a flow); 2 usage or
configuration error (bad option, missing folder, bad rules, bundle, Java); 3 `run --strict`:
the update rejected files or quarantined rows; 75 another update holds the lock (try later);
130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM: the next update finishes what it left.
The `remote` commands (Databricks workspace) have their own codes, see `orderlake remote -h`.

Only the commands that run the pipeline start Spark; `show`, `quarantine`, `events`,
`report`, `conf` and `samples` read files alone and answer in about a second.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from orderlake.errors import (  # noqa: F401
    EXIT_BUSY,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STRICT,
    ConfigurationError,
)
from orderlake.storage.path import as_path, is_remote, remote_spark

_START = time.monotonic()

EPILOG = """exit codes:
  0    ok
  1    the update failed (a `fail` rule, an error in a flow)
  2    usage or configuration error (bad option, missing folder, rules, bundle, Java)
  3    run --strict: the update rejected files or quarantined rows
  75   another update holds the warehouse lock (try later, or --wait S)
  130  stopped by SIGINT (Ctrl-C); 143 stopped by SIGTERM (the next update finishes the work)
"""


class UsageError(ConfigurationError):
    """A bad option or folder: one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _say(message: str) -> None:
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", flush=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orderlake")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


# --- options --------------------------------------------------------------------------------


def _conf_item(text: str) -> tuple[str, str]:
    from orderlake.settings import DEFAULTS, PREFIX

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    if key.startswith(PREFIX) and key not in DEFAULTS:
        raise argparse.ArgumentTypeError(f"unknown key {key!r} (`orderlake conf` lists them)")
    return key, value


def _non_negative(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} is negative")
        return value

    parse.__name__ = kind.__name__
    return parse


def _positive_int(text: str) -> int:
    value = _non_negative(int)(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _ratio(text: str) -> float:
    value = _non_negative(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def _volume_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--volume",
        type=as_path,
        default=as_path(os.environ.get("ORDERLAKE_VOLUME", "local/volume")),
        help="folder laid out like the volume: source/, archive/, rejected/ "
        "(default: $ORDERLAKE_VOLUME or local/volume)",
    )


def _warehouse_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse",
        type=as_path,
        default=as_path(os.environ.get("ORDERLAKE_WAREHOUSE", "local/warehouse")),
        help="folder for the Delta tables, flow state and the event log "
        "(default: $ORDERLAKE_WAREHOUSE or local/warehouse)",
    )


def _pipeline_options(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that load and run the pipeline."""
    _volume_option(parser)
    _warehouse_option(parser)
    parser.add_argument("--target", default=None, help="bundle target whose settings to use")
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        metavar="DIR",
        help="the bundle to run: a folder with databricks.yml and resources/ "
        "(default: this repository's orders bundle)",
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        type=_conf_item,
        metavar="KEY=VALUE",
        help="override a pipeline configuration key (repeatable; `orderlake conf` lists them)",
    )
    parser.add_argument(
        "--create",
        action="store_true",
        help="create the volume folder if it does not exist (else a missing --volume is an "
        "error, so a typo does not run an empty pipeline)",
    )


def _check_volume(args: argparse.Namespace) -> None:
    """Usage errors a command can find before it locks, creates or starts anything."""
    bundle = getattr(args, "bundle", None)
    if bundle is not None and not (bundle / "databricks.yml").is_file():
        raise UsageError(f"--bundle {bundle}: no databricks.yml there")
    volume: Path = args.volume
    warehouse = getattr(args, "warehouse", None)
    if is_remote(volume) or is_remote(warehouse):
        # A bucket is looked at through Spark: start the session now, with its warehouse.
        remote_spark(str(warehouse) if warehouse is not None else None)
    if volume.exists() and not volume.is_dir():
        raise UsageError(f"--volume {volume} is a file, not a folder")
    if not volume.exists() and not getattr(args, "create", False):
        raise UsageError(f"no volume folder at {volume} (pass --create to make one)")
    warehouse: Path | None = getattr(args, "warehouse", None)
    if warehouse is not None and warehouse.exists() and not warehouse.is_dir():
        raise UsageError(f"--warehouse {warehouse} is a file, not a folder")


def _existing_warehouse(args: argparse.Namespace) -> Path:
    warehouse: Path = args.warehouse
    if is_remote(warehouse) or is_remote(getattr(args, "volume", None)):
        # The views read _delta_log and the event log with pathlib/pyarrow, without a JVM.
        raise UsageError(
            "show, quarantine and report read local folders only: copy the warehouse and the "
            "volume from the bucket first (e.g. `gcloud storage cp -r`), or query the tables "
            "with Spark"
        )
    if warehouse.exists() and not warehouse.is_dir():
        raise UsageError(f"--warehouse {warehouse} is a file, not a folder")
    if not warehouse.is_dir():
        raise UsageError(f"no warehouse at {warehouse} (nothing has run yet: `orderlake run`)")
    return warehouse


# --- pipeline commands ----------------------------------------------------------------------


def _pipeline(args: argparse.Namespace, lock: Any = None) -> Any:
    from orderlake.engine.interrupt import STOP, install_handlers, note_jvm
    from orderlake.engine.run.runner import LocalPipeline
    from orderlake.engine.session import spark_jvm_pid

    overrides = dict(args.conf)
    for folder in ("source", "archive", "rejected"):
        (args.volume / folder).mkdir(parents=True, exist_ok=True)
    _say(f"starting Spark and loading the pipeline (volume {args.volume})")
    bundle = getattr(args, "bundle", None)
    pipeline = LocalPipeline(
        args.volume,
        args.warehouse,
        conf_overrides=overrides,
        bundle_root=bundle.resolve() if bundle is not None else None,
        target=args.target,
        progress=_say,
    )
    # pyspark installed its own SIGINT handler while starting: put ours back.
    install_handlers()
    jvm = spark_jvm_pid(pipeline.spark)
    note_jvm(jvm)
    if lock is not None:
        lock.note_jvm(jvm)
    STOP.on_request(pipeline.spark.sparkContext.cancelAllJobs)
    STOP.check()  # a signal that came while Spark was starting
    graph = pipeline.graph
    _say(f"pipeline loaded: {len(graph.datasets)} datasets, {len(graph.flows)} flows")
    return pipeline


def _report(result: Any) -> None:
    _say(
        f"update {result.update_id} done in {result.seconds:.1f}s: {result.files_loaded} file(s) "
        f"loaded, {result.files_empty} empty, {result.files_rejected} rejected, "
        f"{result.bronze_rows:,} rows into bronze"
    )
    for ingested in result.ingest:
        for name, reason in ingested.rejected:
            _say(f"  rejected {name}: {reason}")
        for name in ingested.deferred:
            _say(f"  {name} changed while it was read: left in source/ for the next update")


def _quarantined(result: Any) -> int:
    return max((f.quality.dropped for f in result.flows if f.quality is not None), default=0)


def cmd_run(args: argparse.Namespace) -> int:
    from orderlake.engine.lock import warehouse_lock

    _check_volume(args)
    # Take the lock before starting Spark: a second loader is told at once, not after 20 s.
    with warehouse_lock(args.warehouse).acquired(args.wait) as lock:
        pipeline = _pipeline(args, lock)
        result = pipeline.update(full_refresh=args.full_refresh, lock_held=True)
        _report(result)
    if getattr(args, "strict", False):
        quarantined = _quarantined(result)
        if result.files_rejected or quarantined:
            print(
                f"orderlake: --strict: update {result.update_id} rejected "
                f"{result.files_rejected} file(s) and quarantined {quarantined:,} row(s)",
                file=sys.stderr,
            )
            return EXIT_STRICT
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from orderlake.engine.interrupt import Interrupted
    from orderlake.engine.lock import Busy
    from orderlake.engine.watch import TriggerTimings, watch

    _check_volume(args)
    pipeline = _pipeline(args)
    bundle = pipeline.bundle
    timings = TriggerTimings(
        args.wait_after_last_change
        if args.wait_after_last_change is not None
        else bundle.wait_after_last_change_seconds,
        args.min_between_triggers
        if args.min_between_triggers is not None
        else bundle.min_time_between_triggers_seconds,
        args.poll,
    )

    def run_update() -> None:
        try:
            _report(pipeline.update(wait_seconds=3600))
        except (Interrupted, Busy):
            raise
        except Exception as exc:  # a failed update: say why, and keep watching (as the job
            # trigger does: the next arrival starts a new update, which retries it)
            if _fatal(exc):
                raise
            _say(f"update failed: {_one_line(exc)}")
        if args.report:
            _write_report(args.volume, args.warehouse)

    watch(
        as_path(pipeline.settings.source_path),
        run_update,
        timings,
        max_updates=args.max_updates,
        idle_exit_seconds=args.idle_exit,
        log=_say,
        pending=pipeline.pending_work,
        between_updates=pipeline.warm_up,
    )
    return EXIT_OK


def _write_report(volume: Path, warehouse: Path, out: Path | None = None) -> Path | None:
    """Rewrite the HTML report after an update; a report that cannot be written is said, not
    fatal (the update itself is done)."""
    from orderlake.report import write_report

    try:
        path = write_report(volume, warehouse, out)
    except Exception as exc:
        _say(f"report not written: {type(exc).__name__}: {exc}")
        return None
    _say(f"report: {path}")
    return path


def _fatal(exc: BaseException) -> bool:
    """The Spark JVM is gone: no later update can run in this process."""
    from py4j.protocol import Py4JNetworkError

    return isinstance(exc, Py4JNetworkError | ConnectionError)


def _one_line(exc: BaseException) -> str:
    from orderlake.engine.run.runner import error_text

    return error_text(exc)


# --- looking (no Spark) ---------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    from orderlake.views.show import collect, render

    warehouse = _existing_warehouse(args)
    data = collect(args.volume, warehouse, last=args.last)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        render(data, print)
    return EXIT_OK


def cmd_quarantine(args: argparse.Namespace) -> int:
    from orderlake.views.quarantine import quarantined, render

    rows = quarantined(_existing_warehouse(args), rule=args.rule, file=args.file)
    shown = rows if args.limit == 0 else rows[: args.limit]
    if args.json:
        print(json.dumps({"total": len(rows), "rows": shown}, indent=2, default=str))
    else:
        render(shown, len(rows), print)
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    from orderlake.views.events import render, select
    from orderlake.views.history import event_log

    warehouse = _existing_warehouse(args)
    found = select(
        event_log(warehouse).events(),
        update=args.update, event_type=args.type, flow=args.flow, level=args.level,
    )
    shown = found if args.limit == 0 else found[-args.limit:]
    if args.json:
        for event in shown:  # JSON Lines, as stored: `jq`, DuckDB and Spark read it as is
            print(json.dumps(event, default=str))
    else:
        render(shown, len(found), print)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from orderlake.report import write_report

    path = write_report(args.volume, _existing_warehouse(args), args.out)
    print(f"report written to {path} (open file://{path.resolve()})")
    return EXIT_OK


def cmd_conf(args: argparse.Namespace) -> int:
    from orderlake.settings import DEFAULTS, DESCRIPTIONS

    local = {
        "orders.volume_path": "--volume",
        "orders.expectations_path": "expectations/orders.yml of the bundle",
    }
    if args.json:
        print(json.dumps([{"key": k, "default": v, "description": DESCRIPTIONS.get(k, "")}
                          for k, v in DEFAULTS.items()], indent=2))
        return EXIT_OK
    width = max(len(k) for k in DEFAULTS)
    for key, default in DEFAULTS.items():
        shown = repr(default) if default else "''"
        print(f"{key:{width}}  default {shown}")
        print(f"{'':{width}}  {DESCRIPTIONS.get(key, '')}")
        if key in local:
            print(f"{'':{width}}  locally set from {local[key]}")
    print("Set one with --conf KEY=VALUE (run, refresh, watch); the bundle sets them all in "
          "resources/orders_pipeline.yml.")
    return EXIT_OK


def cmd_check_rules(args: argparse.Namespace) -> int:
    from orderlake.engine.session import get_spark
    from orderlake.rules import load_rules
    from orderlake.settings import REPO_ROOT

    path = args.path or REPO_ROOT / "expectations" / "orders.yml"
    if not Path(path).is_file():
        raise UsageError(f"no rule file at {path}")
    ruleset = load_rules(path, spark=get_spark())
    counts = {a: len(ruleset.constraints(a)) for a in ("drop", "warn", "fail")}
    print(f"{path}: {len(ruleset.rules)} rules OK ({counts})")
    return EXIT_OK


def cmd_samples(args: argparse.Namespace) -> int:
    from orderlake.synthetic import generate_order_files

    volume: Path = args.volume
    if volume.exists() and not volume.is_dir():
        raise UsageError(f"--volume {volume} is a file, not a folder")
    source = volume / "source"
    names = [f"{args.prefix}_{i:05d}.csv" for i in range(args.files)]
    for folder in ("source", "archive", "rejected"):
        taken = [n for n in names if (volume / folder / n).exists()]
        if taken:
            raise UsageError(
                f"{volume / folder / taken[0]} already exists: samples never overwrite a file "
                "(choose another --prefix)"
            )
    generated = generate_order_files(
        source,
        rows=args.rows,
        files=args.files,
        invalid_ratio=args.invalid_ratio,
        seed=args.seed,
        name_prefix=args.prefix,
    )
    for folder in ("archive", "rejected"):
        (volume / folder).mkdir(parents=True, exist_ok=True)
    print(f"wrote {generated.rows:,} rows in {len(generated.paths)} file(s) to {source}")
    return EXIT_OK


# --- the parser -----------------------------------------------------------------------------


def _output_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """-v and --debug, before or after the command (`orderlake -v run` = `orderlake run -v`).

    After the command they default to SUPPRESS, so they never undo the same flag given
    before it."""
    defaults: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "-v", "--verbose", action="count", **({"default": 0} if top else defaults),
        help="let Spark's own (JVM, log4j) output through: -v at WARN, -vv at INFO once "
        "Spark is up ($ORDERLAKE_SPARK_LOG_LEVEL, when set, wins)",
    )
    parser.add_argument(
        "--debug", action="store_true", **defaults,
        help="print the Python traceback of an error before its one-line message",
    )


def _command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _output_options(parser, top=False)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="orderlake",
        description=__doc__.split("\n\n")[0].strip("`").split(": ", 1)[-1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"orderlake {_version()}")
    _output_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        sub,
        "run",
        "run one update: load new files, check, upsert, archive",
        "Run one pipeline update: load the files waiting in source/ into bronze, check the "
        "rows against the rules, upsert the target, archive the files, rewrite the report.",
    )
    _pipeline_options(run)
    run.add_argument("--full-refresh", action="store_true", help="rebuild the target from bronze")
    run.add_argument(
        "--wait", type=_non_negative(float), default=0.0, metavar="SECONDS",
        help="wait up to SECONDS for another update's lock (default 0: exit 75 at once)",
    )
    run.add_argument(
        "--strict", action="store_true",
        help="exit 3 when the update rejected a file or quarantined a row",
    )
    run.set_defaults(func=cmd_run)

    refresh = _command(
        sub,
        "refresh",
        "full refresh: rebuild downstream tables from bronze",
        "Full refresh: drop the tables downstream of bronze and rebuild them from every "
        "bronze row (after a rule change, or to recover a table).",
    )
    _pipeline_options(refresh)
    refresh.add_argument(
        "--wait", type=_non_negative(float), default=0.0, metavar="SECONDS",
        help="wait up to SECONDS for another update's lock (default 0: exit 75 at once)",
    )
    refresh.set_defaults(func=cmd_run, full_refresh=True, strict=False)

    watch = _command(
        sub,
        "watch",
        "file-arrival trigger: update when new files settle",
        "File-arrival trigger: start an update once files in source/ stop changing, with the "
        "bundle job's timings unless overridden; rewrites the report after each update.",
    )
    _pipeline_options(watch)
    watch.add_argument(
        "--wait-after-last-change", type=_non_negative(float), default=None, metavar="SECONDS",
        help="seconds with no change in source/ before an update starts "
        "(default: the bundle job's wait_after_last_change_seconds)",
    )
    watch.add_argument(
        "--min-between-triggers", type=_non_negative(float), default=None, metavar="SECONDS",
        help="seconds at least between two update starts "
        "(default: the bundle job's min_time_between_triggers_seconds)",
    )
    watch.add_argument(
        "--poll", type=_non_negative(float), default=0.5, metavar="SECONDS",
        help="seconds between listings of source/ (default 0.5)",
    )
    watch.add_argument(
        "--max-updates", type=_positive_int, default=None, metavar="N",
        help="stop after N updates",
    )
    watch.add_argument(
        "--idle-exit", type=_non_negative(float), default=None, metavar="SECONDS",
        help="stop after SECONDS with no file waiting",
    )
    watch.add_argument(
        "--no-report", dest="report", action="store_false",
        help="do not rewrite the HTML report after each update",
    )
    watch.set_defaults(func=cmd_watch)

    show = _command(
        sub,
        "show",
        "files, tables, recent updates and their checks (no Spark)",
        "Files per folder, rejected files and why, table row counts, quarantine reasons, the "
        "recent updates and the last one's per-rule counts; read from the event log and the "
        "Delta logs, without starting Spark.",
    )
    _volume_option(show)
    _warehouse_option(show)
    show.add_argument(
        "--last", type=_non_negative(int), default=5, metavar="N",
        help="how many recent updates to list (default 5)",
    )
    show.add_argument("--json", action="store_true", help="print the same as JSON")
    show.set_defaults(func=cmd_show)

    quarantine = _command(
        sub,
        "quarantine",
        "list quarantined rows: file, row, failed rules, text as sent (no Spark)",
        "The rows the drop rules held back: file, row number (1 = the first row after the "
        "header), every rule the row failed, and its text as sent.",
    )
    _warehouse_option(quarantine)
    quarantine.add_argument("--rule", metavar="RULE", help="only rows that failed RULE")
    quarantine.add_argument(
        "--file", metavar="FILE", help="only rows of FILE (a file name or its full path)"
    )
    quarantine.add_argument(
        "--limit", type=_non_negative(int), default=20, metavar="N",
        help="show at most N rows (default 20; 0 shows all)",
    )
    quarantine.add_argument("--json", action="store_true", help="print JSON: total and rows")
    quarantine.set_defaults(func=cmd_quarantine)

    events = _command(
        sub,
        "events",
        "the event log as a table: updates, flows, row counts (no Spark)",
        "The pipeline's event log, like Databricks' event_log(): one row per event "
        "(update_progress, flow_progress with row counts and rule results, the graph's "
        "definitions), oldest first. Read from warehouse/_orderlake/event_log.jsonl, without "
        "starting Spark; Spark reads the same file with spark.read.json(PATH).",
    )
    _warehouse_option(events)
    events.add_argument("--update", metavar="N", help="only events of update N")
    events.add_argument(
        "--type", metavar="T",
        help="only events of type T: update_progress, flow_progress, flow_definition, "
        "dataset_definition",
    )
    events.add_argument("--flow", metavar="F", help="only events of flow F")
    events.add_argument("--level", metavar="L", help="only events of level L (INFO, WARN, ERROR)")
    events.add_argument(
        "--limit", type=_non_negative(int), default=50, metavar="N",
        help="the newest N matching events (default 50; 0 shows all)",
    )
    events.add_argument(
        "--json", action="store_true",
        help="print the events as stored, one JSON object per line (JSON Lines)",
    )
    events.set_defaults(func=cmd_events)

    report = _command(
        sub,
        "report",
        "write an HTML report: graph, updates, checks, quarantine (no Spark)",
        "Write one self-contained HTML page (works offline, from file://): the pipeline "
        "graph with row counts, the update history, each rule's pass/fail per update, "
        "quarantine reasons with sample rows, rejected files.",
    )
    _volume_option(report)
    _warehouse_option(report)
    report.add_argument(
        "--out", type=Path, default=None, metavar="FILE",
        help="where to write it (default: report.html in the warehouse folder)",
    )
    report.set_defaults(func=cmd_report)

    conf = _command(
        sub,
        "conf",
        "list every pipeline configuration key with its default",
        "Every pipeline configuration key the definitions read, its default and what it "
        "sets; override one with --conf KEY=VALUE.",
    )
    conf.add_argument("--json", action="store_true", help="print JSON")
    conf.set_defaults(func=cmd_conf)

    rules = _command(
        sub,
        "check-rules",
        "validate a rule file (YAML and SQL)",
        "Validate a rule file: YAML shape, actions, names, SQL that parses, contract columns "
        "only, boolean and deterministic constraints (starts Spark to parse the SQL).",
    )
    rules.add_argument(
        "path", nargs="?", type=Path,
        help="the rule file (default: expectations/orders.yml)",
    )
    rules.set_defaults(func=cmd_check_rules)

    samples = _command(
        sub,
        "samples",
        "write sample client files into source/",
        "Write sample client CSV files (a few invalid rows included) into the volume's "
        "source/ folder, creating the volume; never overwrites a file.",
    )
    _volume_option(samples)
    samples.add_argument(
        "--rows", type=_non_negative(int), default=2000, metavar="N",
        help="rows in all (default 2000)",
    )
    samples.add_argument(
        "--files", type=_positive_int, default=4, metavar="N",
        help="files to spread them over (default 4)",
    )
    samples.add_argument(
        "--invalid-ratio", type=_ratio, default=0.02, metavar="SHARE",
        help="share of rows broken on purpose, 0 to 1 (default 0.02)",
    )
    samples.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    samples.add_argument(
        "--prefix", default="orders",
        help="file names are PREFIX_00000.csv, PREFIX_00001.csv, ... (default orders)",
    )
    samples.set_defaults(func=cmd_samples)

    from orderlake.remote.cli import register

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from orderlake.engine.interrupt import install_handlers

    install_handlers()
    code = _main(argv)
    # The command is over and its exit code decided: a signal while Python shuts down must
    # not turn the exit into a kill by signal. Python resets its own handlers to the default
    # as it finalizes (a Ctrl-C in that instant ended a finished run with -2; found by the
    # random-kill test); an ignored signal stays ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    return code


def _main(argv: list[str] | None) -> int:
    from orderlake.engine.interrupt import STOP, Interrupted

    args = build_parser().parse_args(argv)
    _set_verbosity(args.verbose)
    from orderlake.errors import OrderlakeError

    try:
        return int(args.func(args) or 0)
    except OrderlakeError as exc:  # every error raised on purpose: its class names the code
        _traceback(args)
        if STOP.signum is not None and not isinstance(exc, Interrupted):
            # a signal came first: this error is what it did (e.g. the JVM got the same
            # SIGTERM while the definitions loaded), so the stop is what to report
            exc = Interrupted(STOP.signum)
        print(f"orderlake: {_describe(exc)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `orderlake events | head`: the reader has all it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C in the instant pyspark's own handler was installed
        stopped = Interrupted(signal.SIGINT)
        print(f"orderlake: {stopped.describe()}", file=sys.stderr)
        return stopped.exit_code
    except Exception as exc:  # anything else: one clear line, then the type for bug reports
        _traceback(args)
        if STOP.signum is not None:  # e.g. the JVM got the same SIGTERM and is gone
            stopped = Interrupted(STOP.signum)
            print(f"orderlake: {stopped.describe()}", file=sys.stderr)
            return stopped.exit_code
        if args.command in ("run", "refresh", "watch"):
            print(
                f"orderlake: update failed: {type(exc).__name__}: {_one_line(exc)}",
                file=sys.stderr,
            )
        else:
            print(f"orderlake {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _describe(exc: BaseException) -> str:
    """The one line the user sees for an orderlake error."""
    from orderlake.engine.interrupt import Interrupted
    from orderlake.errors import UpdateFailed

    if isinstance(exc, Interrupted):
        return exc.describe()
    if isinstance(exc, UpdateFailed):
        return f"update failed: {_one_line(exc)}"
    return _one_line(exc)


def _traceback(args: argparse.Namespace) -> None:
    """--debug: the traceback of the error being handled, before its one line."""
    if args.debug:
        import traceback

        traceback.print_exc(file=sys.stderr)


def _set_verbosity(verbose: int) -> None:
    """Quiet unless asked: -v lets Spark's log4j output through at WARN, -vv at INFO (the
    session reads ORDERLAKE_SPARK_LOG_LEVEL, which wins when the user set it)."""
    if not verbose:
        _quiet_python_loggers()
        return
    os.environ.setdefault("ORDERLAKE_SPARK_LOG_LEVEL", "WARN" if verbose == 1 else "INFO")


def _quiet_python_loggers() -> None:
    """py4j logs a traceback when the JVM goes away under it (a signal, a crash): the user
    gets one line from us instead."""
    import logging

    # The root logger too: py4j reports a lost connection through it ("ERROR:root:").
    for name in ("py4j", "pyspark", None):
        logging.getLogger(name).setLevel(logging.CRITICAL)


if __name__ == "__main__":
    raise SystemExit(main())
