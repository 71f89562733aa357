"""Delta on a real (one-machine) Spark standalone cluster: driver and executors in separate
JVMs, tables on a local path and on gs:// (the emulator)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.gcs_emulator import processes_in_group
from tests.support.spark_cluster import cluster_env

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_SUM = 2 * sum(range(990)) + 3 * sum(range(990, 1010))  # MERGE rewrote ids 990..999


def run_job(spark_cluster, gcs_server, gcs_bucket: str, local_dir: Path) -> dict:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tests.support.cluster_job",
            spark_cluster.url, gcs_server.endpoint, gcs_bucket, str(local_dir),
        ],
        cwd=ROOT,
        env=cluster_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its driver JVM too: killed with the group on a timeout
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    assert not processes_in_group(process.pid), "the driver JVM outlived its Python process"
    lines = [line for line in out.splitlines() if line.startswith("CLUSTER_RESULT ")]
    assert process.returncode == 0 and lines, f"exit {process.returncode}\n{err[-4000:]}"
    return json.loads(lines[-1].split(" ", 1)[1])


def test_delta_on_a_standalone_cluster_local_and_gcs(
    spark_cluster, gcs_server, gcs_bucket, tmp_path
) -> None:
    result = run_job(spark_cluster, gcs_server, gcs_bucket, tmp_path)

    assert result["master"] == spark_cluster.url
    # Separate JVMs: the executor is a process of its own, started by the worker.
    assert result["executor_pids"], "no executor JVM was found for the application"
    assert result["driver_pid"] not in result["executor_pids"]
    executor_ids = [eid for eid in result["completed_tasks"] if eid != "driver"]
    assert executor_ids and sum(result["completed_tasks"][e] for e in executor_ids) > 0
    assert result["completed_tasks"].get("driver", 0) == 0  # nothing ran in the driver
    assert result["driver_python_pid"] not in result["python_worker_pids"]

    assert result["local"]["rows"] == 1000
    assert result["local"]["sum_doubled"] == 2 * sum(range(1000))
    assert result["local"]["commits"] == ["00000000000000000000.json"]
    assert (tmp_path / "cluster_table" / "_delta_log" / "00000000000000000000.json").is_file()

    assert result["gcs"]["rows"] == 1010
    assert result["gcs"]["sum_doubled"] == EXPECTED_SUM
    assert result["gcs"]["commits"] == ["00000000000000000000.json", "00000000000000000001.json"]
    assert gcs_server.object_metadata(
        gcs_bucket, "cluster/table/_delta_log/00000000000000000001.json"
    ), "the MERGE commit is not in the bucket"
