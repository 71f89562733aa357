"""The local SparkSession: Delta jars from Maven Central, tuned for one small machine."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from orderlake.engine import class_archive, scratch
from orderlake.engine.faults import kill_point
from orderlake.engine.interrupt import STOP
from orderlake.errors import ConfigurationError
from orderlake.settings import cache_home
from orderlake.storage.spark import driver_memory

# delta-spark 4.4.1 (Python) pairs with pyspark 4.2.0, but only the 4.4.0 jars are published
# on Maven Central; the Python side is a thin py4j wrapper, so the pair works.
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
MIN_JAVA = 17
QUIET_LOG4J = Path(__file__).with_name("log4j2-quiet.properties")


def jars_list_file() -> Path:
    """Where the jar files Ivy resolved for DELTA_PACKAGE are remembered."""
    cache = cache_home()
    return cache / "orderlake" / f"jars-{DELTA_PACKAGE.replace(':', '_')}.txt"


def delta_jars_conf(list_file: Path) -> tuple[str, str]:
    """`spark.jars` = the jars resolved last time, when every one is still on disk; else the
    package, which Ivy resolves (and prints pages of progress for) on every start."""
    try:
        jars = [jar for jar in list_file.read_text(encoding="utf-8").split(",") if jar]
    except OSError:
        jars = []
    if jars and all(Path(urlparse(jar).path).is_file() for jar in jars):
        return "spark.jars", ",".join(jars)
    return "spark.jars.packages", DELTA_PACKAGE


def delta_classpath(list_file: Path) -> list[str] | None:
    """The resolved Delta jars that pyspark does not ship itself, or None before the first
    resolution. They go after pyspark's own jars on the JVM's class path (SPARK_DIST_CLASSPATH),
    so pyspark's newer Hadoop, Parquet and Jackson still win, as they did under `spark.jars`,
    and Spark no longer copies 86 MB of jars into its scratch folder on every start."""
    key, value = delta_jars_conf(list_file)
    if key != "spark.jars":
        return None
    shipped = _pyspark_artifacts()
    jars = [urlparse(jar).path for jar in value.split(",")]
    return [jar for jar in jars if _artifact(Path(jar).name, ivy=True) not in shipped]


def _artifact(jar_name: str, ivy: bool = False) -> str:
    """`org.apache.parquet_parquet-column-1.16.0.jar` (Ivy: `<org>_<artifact>-<revision>`) or
    `parquet-column-1.17.0.jar` (pyspark) -> `parquet-column`."""
    name = jar_name.split("_", 1)[1] if ivy and "_" in jar_name else jar_name
    return re.sub(r"-\d[^/]*\.jar$", "", name)


def spark_home() -> str:
    """The Spark installation the JVM starts from: $SPARK_HOME, else pyspark's own folder."""
    import pyspark

    return os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)


def _pyspark_artifacts() -> set[str]:
    try:
        return {_artifact(name) for name in os.listdir(os.path.join(spark_home(), "jars"))}
    except OSError:
        return set()


def _remember_jars(spark: SparkSession, list_file: Path) -> None:
    jars = spark.sparkContext.getConf().get("spark.jars", "")
    if "delta-spark" not in jars:
        return
    list_file.parent.mkdir(parents=True, exist_ok=True)
    partial = list_file.with_name(list_file.name + f".{os.getpid()}.tmp")
    partial.write_text(jars, encoding="utf-8")
    partial.replace(list_file)  # atomic: a concurrent start reads the old or the new list


class JavaMissing(ConfigurationError, RuntimeError):
    """Java is absent or too old for Spark 4."""


def java_binary() -> str | None:
    """The `java` Spark will start: $JAVA_HOME's, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    return os.path.join(home, "bin", "java") if home else shutil.which("java")


def java_version() -> int:
    """The major version of the `java` Spark will start, or raise JavaMissing."""
    java = java_binary()
    if not java or not os.path.exists(java):
        raise JavaMissing(f"Java {MIN_JAVA}+ is required and no `java` was found (install a JDK)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise JavaMissing(f"could not read the Java version from `{java} -version`")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise JavaMissing(f"Java {MIN_JAVA}+ is required, found Java {major} at {java}")
    return major


def get_spark(
    app_name: str = "orderlake", shuffle_partitions: int = 4, java_options: list[str] | None = None
) -> SparkSession:
    """Get or build the one local session the engine and the tests share.

    `java_options` replace the class archive's options (`class_archive.build` dumps one)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_version()
    cores = os.environ.get("ORDERLAKE_SPARK_CORES", "*")
    list_file = jars_list_file()
    classpath = delta_classpath(list_file)
    scratch_dir = scratch.claim()
    if java_options is None:
        java_options = class_archive.java_options(classpath) if classpath else []
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory())
        .config("spark.local.dir", str(scratch_dir))
        .config(
            "spark.driver.extraJavaOptions",
            " ".join([f"-Djava.io.tmpdir={scratch_dir}", *java_options]),
        )
        # One partition per client file: a file is never split, never packed with another, so
        # row positions are exact and one bad file cannot mix into another's task.
        .config("spark.sql.files.maxPartitionBytes", str(1 << 40))
        .config("spark.sql.files.openCostInBytes", str(1 << 40))
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.databricks.delta.autoCompact.enabled", "false")
        .config("spark.sql.streaming.stopTimeout", "30s")
        # Flows read the data files a table's new commits added: list them on the driver,
        # not with a Spark job, however many there are.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "1000000")
        # An update compiles ~40 query fragments; with Spark's 100 cached, each update evicted
        # the last one's and compiled them all again (~0.15 s per small update).
        .config("spark.sql.codegen.cache.maxEntries", "1000")
    )
    if classpath is None:  # first start on this machine: Ivy resolves the package
        builder = builder.config("spark.jars.packages", DELTA_PACKAGE)
    if os.environ.get("ORDERLAKE_IVY_DIR"):
        builder = builder.config("spark.jars.ivy", os.environ["ORDERLAKE_IVY_DIR"])
    level = os.environ.get("ORDERLAKE_SPARK_LOG_LEVEL")
    with _sigint_handler_kept(), _launch_classpath(classpath or []):
        if level:
            spark = builder.getOrCreate()
            spark.sparkContext.setLogLevel(level)
        else:
            spark = _quiet_session(builder)
    scratch.note_jvm(spark_jvm_pid(spark))
    if classpath is None:
        _remember_jars(spark, list_file)
    return spark


def spark_jvm_pid(spark: SparkSession) -> int | None:
    """The pid of the Spark JVM this process launched (None when it joined an existing one)."""
    gateway = getattr(spark.sparkContext, "_gateway", None)
    proc = getattr(gateway, "proc", None)
    return getattr(proc, "pid", None)


@contextmanager
def _launch_classpath(jars: list[str]) -> Iterator[None]:
    """Put `jars` after pyspark's own on the class path of the JVM launched in this context."""
    if not jars:
        yield
        return
    before = os.environ.get("SPARK_DIST_CLASSPATH")
    os.environ["SPARK_DIST_CLASSPATH"] = os.pathsep.join([*filter(None, [before]), *jars])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SPARK_DIST_CLASSPATH", None)
        else:
            os.environ["SPARK_DIST_CLASSPATH"] = before


@contextmanager
def _sigint_handler_kept() -> Iterator[None]:
    """SparkContext replaces the SIGINT handler with one that makes a py4j call inside the
    handler and raises KeyboardInterrupt wherever the main thread is; the caller's (the CLI's
    safe-point stop, or Python's own) is put back as soon as the context exists."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# What the JVM prints on stderr besides log4j: kept only when it reports a real problem.
_JVM_PROBLEM = re.compile(r"(?i)error|exception|fatal|out of memory|killed")


def _stop_requested() -> bool:
    return STOP.signum is not None


def _forward_problems(
    stream: IO[bytes], out: IO[str] | None = None, stopping: Callable[[], bool] = _stop_requested
) -> None:
    """Copy the JVM's problem lines to `out` (stderr), except once a stop was asked for: a
    signal to the process group reaches the JVM too, and its shutdown (thread pools refusing
    the work still queued: RejectedExecutionException) is not a problem to report."""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        if _JVM_PROBLEM.search(line) and not stopping():
            target = out or sys.stderr
            target.write(line)
            target.flush()


def _quiet_session(builder: SparkSession.Builder) -> SparkSession:
    """A session whose JVM says nothing on a normal run: log4j off from its first line, and
    its own stderr (the incubator-module warning, Ivy's progress) filtered to real problems."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    conf = SparkConf(loadDefaults=False)
    for key, value in builder._options.items():
        conf.set(key, value)
    java_options = conf.get("spark.driver.extraJavaOptions", "")
    conf.set(
        "spark.driver.extraJavaOptions",
        f"-Dlog4j2.configurationFile={QUIET_LOG4J} {java_options}".strip(),
    )
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
    threading.Thread(
        target=_forward_problems, args=(gateway.proc.stderr,), daemon=True, name="jvm-stderr"
    ).start()
    SparkContext(conf=conf, gateway=gateway)
    kill_point("spark_context_started")  # pyspark's SIGINT handler is in place until we return
    return builder.getOrCreate()


def main() -> int:
    """`python -m orderlake.engine.session`: start a session once (fetches the Delta jars)."""
    try:
        spark = get_spark("orderlake-setup")
    except JavaMissing as exc:
        print(f"orderlake: {exc}", file=sys.stderr)
        return 2
    print(f"Spark {spark.version} with {DELTA_PACKAGE} ready")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
