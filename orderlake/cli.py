"""`orderlake`: run the orders pipeline locally, watch for files, look at the tables.

Exit codes: 0 ok; 1 the update failed (a `fail` rule, an error in a flow); 2 usage or
configuration error (bad rules, bundle, Java); 75 another update holds the lock (try later);
130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM: the next update finishes what it left.
The `remote` commands (Databricks workspace) have their own codes, see `orderlake remote -h`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from orderlake.errors import EXIT_BUSY, EXIT_CONFIG, EXIT_FAILED, EXIT_OK  # noqa: F401

_START = time.monotonic()


def _say(message: str) -> None:
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", flush=True)


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--volume",
        type=Path,
        default=Path(os.environ.get("ORDERLAKE_VOLUME", "local/volume")),
        help="folder laid out like the volume: source/, archive/, rejected/ "
        "(default: $ORDERLAKE_VOLUME or local/volume)",
    )
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=Path(os.environ.get("ORDERLAKE_WAREHOUSE", "local/warehouse")),
        help="folder for the Delta tables, checkpoints and the event log "
        "(default: $ORDERLAKE_WAREHOUSE or local/warehouse)",
    )
    parser.add_argument("--target", default=None, help="bundle target whose settings to use")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pipeline configuration key (repeatable)",
    )


def _pipeline(args: argparse.Namespace, lock: Any = None) -> Any:
    from orderlake.engine.interrupt import STOP, install_handlers, note_jvm
    from orderlake.engine.runner import LocalPipeline, spark_jvm_pid

    overrides = dict(item.split("=", 1) for item in args.conf)
    for folder in ("source", "archive", "rejected"):
        (args.volume / folder).mkdir(parents=True, exist_ok=True)
    _say(f"starting Spark and loading the pipeline (volume {args.volume})")
    pipeline = LocalPipeline(
        args.volume, args.warehouse, conf_overrides=overrides, target=args.target, progress=_say
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
        f"loaded, {result.files_rejected} rejected, {result.bronze_rows:,} rows into bronze"
    )
    for ingested in result.ingest:
        for name, reason in ingested.rejected:
            _say(f"  rejected {name}: {reason}")
        for name in ingested.deferred:
            _say(f"  {name} changed while it was read: left in source/ for the next update")


def cmd_run(args: argparse.Namespace) -> int:
    from orderlake.engine.lock import warehouse_lock

    # Take the lock before starting Spark: a second loader is told at once, not after 20 s.
    with warehouse_lock(args.warehouse).acquired(args.wait) as lock:
        pipeline = _pipeline(args, lock)
        _report(pipeline.update(full_refresh=args.full_refresh, lock_held=True))
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from orderlake.engine.interrupt import Interrupted
    from orderlake.engine.lock import Busy
    from orderlake.engine.watch import TriggerTimings, watch

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

    watch(
        Path(pipeline.settings.source_path),
        run_update,
        timings,
        max_updates=args.max_updates,
        idle_exit_seconds=args.idle_exit,
        log=_say,
        pending=pipeline.pending_work,
        between_updates=pipeline.warm_up,
    )
    return EXIT_OK


def _fatal(exc: BaseException) -> bool:
    """The Spark JVM is gone: no later update can run in this process."""
    from py4j.protocol import Py4JNetworkError

    return isinstance(exc, Py4JNetworkError | ConnectionError)


def _one_line(exc: BaseException) -> str:
    from orderlake.engine.runner import error_text

    return error_text(exc)


def cmd_show(args: argparse.Namespace) -> int:
    from orderlake.engine.inspect import show

    show(args.volume, args.warehouse, rows=args.rows, out=print)
    return EXIT_OK


def cmd_check_rules(args: argparse.Namespace) -> int:
    from orderlake.engine.session import get_spark
    from orderlake.rules import load_rules
    from orderlake.settings import REPO_ROOT

    path = args.path or REPO_ROOT / "expectations" / "orders.yml"
    ruleset = load_rules(path, spark=get_spark())
    counts = {a: len(ruleset.constraints(a)) for a in ("drop", "warn", "fail")}
    print(f"{path}: {len(ruleset.rules)} rules OK ({counts})")
    return EXIT_OK


def cmd_samples(args: argparse.Namespace) -> int:
    from orderlake.synthetic import generate_order_files

    source = args.volume / "source"
    generated = generate_order_files(
        source,
        rows=args.rows,
        files=args.files,
        invalid_ratio=args.invalid_ratio,
        seed=args.seed,
        name_prefix=args.prefix,
    )
    print(f"wrote {generated.rows:,} rows in {len(generated.paths)} file(s) to {source}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderlake", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one update: load new files, check, upsert, archive")
    _paths(run)
    run.add_argument("--full-refresh", action="store_true", help="rebuild the target from bronze")
    run.add_argument("--wait", type=float, default=0.0, help="wait up to S seconds for the lock")
    run.set_defaults(func=cmd_run)

    refresh = sub.add_parser("refresh", help="full refresh: rebuild downstream tables from bronze")
    _paths(refresh)
    refresh.add_argument("--wait", type=float, default=0.0, help="wait up to S seconds for lock")
    refresh.set_defaults(func=cmd_run, full_refresh=True)

    watch = sub.add_parser("watch", help="file-arrival trigger: update when new files settle")
    _paths(watch)
    watch.add_argument(
        "--wait-after-last-change",
        type=float,
        default=None,
        metavar="S",
        help="default: the bundle job's wait_after_last_change_seconds",
    )
    watch.add_argument(
        "--min-between-triggers",
        type=float,
        default=None,
        metavar="S",
        help="default: the bundle job's min_time_between_triggers_seconds",
    )
    watch.add_argument("--poll", type=float, default=0.5, metavar="S", help="listing interval")
    watch.add_argument("--max-updates", type=int, default=None, help="stop after N updates")
    watch.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds with no file waiting",
    )
    watch.set_defaults(func=cmd_watch)

    show = sub.add_parser("show", help="row counts, quarantine reasons, last update's rules")
    _paths(show)
    show.add_argument("--rows", type=int, default=5, help="sample rows to print per table")
    show.set_defaults(func=cmd_show)

    rules = sub.add_parser("check-rules", help="validate a rule file (YAML and SQL)")
    rules.add_argument("path", nargs="?", type=Path)
    rules.set_defaults(func=cmd_check_rules)

    samples = sub.add_parser("samples", help="write sample client files into source/")
    _paths(samples)
    samples.add_argument("--rows", type=int, default=2000)
    samples.add_argument("--files", type=int, default=4)
    samples.add_argument("--invalid-ratio", type=float, default=0.02)
    samples.add_argument("--seed", type=int, default=7)
    samples.add_argument("--prefix", default="orders")
    samples.set_defaults(func=cmd_samples)

    try:
        from orderlake.remote.cli import register
    except ImportError:  # remote commands need databricks-sdk
        pass
    else:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from orderlake.engine.interrupt import STOP, install_handlers

    install_handlers()
    code = _main(argv)
    if STOP.signum is not None:
        # Stopped cleanly: a late second signal while Python shuts down must not turn the exit
        # into a kill by signal (Python restores the default handlers as it finalizes).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    return code


def _main(argv: list[str] | None) -> int:
    from orderlake.engine.interrupt import STOP, Interrupted

    _quiet_python_loggers()
    args = build_parser().parse_args(argv)
    from orderlake.errors import OrderlakeError

    try:
        return int(args.func(args) or 0)
    except OrderlakeError as exc:  # every error raised on purpose: its class names the code
        print(f"orderlake: {_describe(exc)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # anything else: one clear line, then the type for bug reports
        if STOP.signum is not None:  # e.g. the JVM got the same SIGTERM and is gone
            stopped = Interrupted(STOP.signum)
            print(f"orderlake: {stopped.describe()}", file=sys.stderr)
            return stopped.exit_code
        print(f"orderlake: update failed: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
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


def _quiet_python_loggers() -> None:
    """py4j logs a traceback when the JVM goes away under it (a signal, a crash): the user
    gets one line from us instead."""
    import logging

    for name in ("py4j", "pyspark"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


if __name__ == "__main__":
    raise SystemExit(main())
