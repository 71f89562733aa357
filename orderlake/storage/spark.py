"""A SparkSession that reads and writes `gs://`: Delta + the GCS connector, local or on a cluster.

`gcs_spark_conf()` is the list of settings, `build_spark()` starts a session with them. The
engine's own `orderlake.engine.session.get_spark()` does not take extra settings yet; these
repeat its settings (same Delta jars, same one-partition-per-file tuning) so a session built
here behaves like the engine's, plus:

- `spark.jars`: the shaded GCS connector jar (see connectors.py for why not --packages), after
  the Delta jars Ivy resolved for get_spark() last time (or `spark.jars.packages` for Delta
  when get_spark() has not run on this machine yet: this builder does not remember them);
- the `spark.hadoop.fs.gs.*` settings from `gcs_hadoop_conf(endpoint)`;
- on a cluster master (`spark://...`), the driver address and the executors' size.
"""

from __future__ import annotations

import os
import sys

from orderlake.storage.connectors import gcs_connector_jar, gcs_hadoop_conf

# The driver heap bounds the engine's memory, whatever the data's size: a 10M-row first load
# runs in a 2 GB heap as fast as in 4 GB (docs/performance.md). ORDERLAKE_DRIVER_MEMORY sets it.
DEFAULT_DRIVER_MEMORY = "2g"


def driver_memory() -> str:
    return os.environ.get("ORDERLAKE_DRIVER_MEMORY", DEFAULT_DRIVER_MEMORY)


def gcs_spark_conf(
    master: str,
    gcs_endpoint: str | None = None,
    *,
    shuffle_partitions: int = 4,
    driver_host: str | None = None,
    executor_memory: str = "768m",
) -> dict[str, str]:
    """Every setting `build_spark` passes to the builder (apart from master and app name)."""
    from orderlake.engine.session import delta_jars_conf, jars_list_file

    key, value = delta_jars_conf(jars_list_file())
    connector = str(gcs_connector_jar())
    conf: dict[str, str] = {}
    if key == "spark.jars":
        conf["spark.jars"] = f"{value},{connector}"
    else:
        conf["spark.jars.packages"] = value
        conf["spark.jars"] = connector
    conf.update(
        {
            "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(shuffle_partitions),
            "spark.default.parallelism": str(shuffle_partitions),
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": driver_memory(),
            "spark.sql.files.maxPartitionBytes": str(1 << 40),
            "spark.sql.files.openCostInBytes": str(1 << 40),
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.databricks.delta.autoCompact.enabled": "false",
            "spark.sql.streaming.stopTimeout": "30s",
            "spark.sql.codegen.cache.maxEntries": "1000",  # as engine.session's
        }
    )
    if os.environ.get("ORDERLAKE_IVY_DIR"):
        conf["spark.jars.ivy"] = os.environ["ORDERLAKE_IVY_DIR"]
    conf.update(gcs_hadoop_conf(gcs_endpoint))
    if driver_host:
        # Executors connect back to the driver at this address; bind there too.
        conf["spark.driver.host"] = driver_host
        conf["spark.driver.bindAddress"] = driver_host
    if master.startswith("spark://"):
        conf["spark.executor.memory"] = executor_memory
        conf["spark.cores.max"] = os.environ.get("ORDERLAKE_CLUSTER_CORES", "1")
        # Python workers on the executors run the same interpreter as the driver.
        conf["spark.pyspark.python"] = sys.executable
    return conf


def build_spark(
    master: str = "local[*]",
    gcs_endpoint: str | None = None,
    app_name: str = "orderlake-gcs",
    *,
    extra_conf: dict[str, str] | None = None,
    **options,
):
    """Start (or get: one SparkContext per process) a session with Delta and `gs://`."""
    from pyspark.sql import SparkSession

    from orderlake.engine.session import java_version

    java_version()
    conf = gcs_spark_conf(master, gcs_endpoint, **options)
    conf.update(extra_conf or {})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("ORDERLAKE_SPARK_LOG_LEVEL", "ERROR"))
    return spark
