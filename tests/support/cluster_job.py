"""A driver program for the standalone-cluster test, run as its own process:

    python -m tests.support.cluster_job MASTER_URL GCS_ENDPOINT BUCKET LOCAL_DIR

It builds a session on the cluster (driver here, executors in the worker's JVMs), writes and
reads a Delta table on a local path and on gs://BUCKET (with a MERGE into the gs:// one), and
prints one JSON line with what it saw (the test asserts on it). A separate process because a Python
process has one SparkContext, and the test process already has a local-mode one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def executor_processes(app_id: str) -> list[int]:
    """Pids of executor JVMs started for this application (their command line names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in args and any(
            app_id.encode() in arg for arg in args
        ):
            pids.append(int(entry.name))
    return pids


def completed_tasks(sc) -> dict[str, int]:
    """Completed task count per executor id ("driver" included) from Spark's status store."""
    summaries = sc._jsc.sc().statusStore().executorList(False)
    counts = {}
    for i in range(summaries.size()):
        summary = summaries.apply(i)
        counts[str(summary.id())] = int(summary.completedTasks())
    return counts


def main(master: str, endpoint: str, bucket: str, local_dir: str) -> dict:
    from delta.tables import DeltaTable

    from orderlake.storage import storage_for
    from orderlake.storage.spark import build_spark

    start = time.monotonic()
    spark = build_spark(
        master, endpoint, "orderlake-cluster-test", driver_host="127.0.0.1", shuffle_partitions=2
    )
    result: dict = {"startup_s": round(time.monotonic() - start, 1)}
    try:
        sc = spark.sparkContext
        tracker = sc._jsc.sc().statusTracker()
        deadline = time.monotonic() + 90
        while len(tracker.getExecutorInfos()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)  # the driver itself is one entry; wait for an executor
        result["master"] = sc.master
        result["app_id"] = sc.applicationId
        result["driver_pid"] = int(spark._jvm.java.lang.ProcessHandle.current().pid())
        result["executor_pids"] = executor_processes(sc.applicationId)

        # Python tasks run in the executors' Python workers, not in this process.
        pids = sc.parallelize(range(4), 2).map(lambda _: os.getpid()).distinct().collect()
        result["python_worker_pids"] = pids
        result["driver_python_pid"] = os.getpid()

        local_table = os.path.join(local_dir, "cluster_table")
        gcs_table = f"gs://{bucket}/cluster/table"
        for name, path in (("local", local_table), ("gcs", gcs_table)):
            t0 = time.monotonic()
            rows = spark.range(0, 1000).selectExpr("id", "id * 2 AS doubled")
            rows.write.format("delta").mode("overwrite").save(path)
            if name == "gcs":  # a MERGE too: executors rewrite files on gs://
                updates = spark.range(990, 1010).selectExpr("id", "id * 3 AS doubled")
                (
                    DeltaTable.forPath(spark, path).alias("t")
                    .merge(updates.alias("u"), "t.id = u.id")
                    .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
                )  # fmt: skip
            back = spark.read.format("delta").load(path)
            log = storage_for(path, spark).list_files(f"{path}/_delta_log", recursive=False)
            result[name] = {
                "rows": back.count(),
                "sum_doubled": back.agg({"doubled": "sum"}).first()[0],
                "commits": sorted(
                    os.path.basename(info.path) for info in log if info.path.endswith(".json")
                ),
                "seconds": round(time.monotonic() - t0, 1),
            }
        result["completed_tasks"] = completed_tasks(sc)
    finally:
        spark.stop()
    return result


if __name__ == "__main__":
    out = main(*sys.argv[1:5])
    print("CLUSTER_RESULT " + json.dumps(out), flush=True)
