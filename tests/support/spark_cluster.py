"""A Spark standalone cluster on this machine: one master, one worker (1 core, 1g).

Started with `bin/spark-class` from the pyspark package (the wheel has no sbin/ scripts), each
JVM in its own process group so that stopping a group also stops the executor JVMs (and their
Python workers) the worker started. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.gcs_emulator import HOST, free_port, processes_in_group, stop_process_group


def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def cluster_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SPARK_HOME": str(pyspark_home()),
            # Bind and advertise loopback only (the host name resolves to another interface).
            "SPARK_LOCAL_IP": HOST,
            "SPARK_PUBLIC_DNS": HOST,
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_DAEMON_MEMORY": "512m",
        }
    )
    return env


class StandaloneCluster:
    """`spark://127.0.0.1:<port>` with one worker; `stop()` returns pids that survived (none)."""

    def __init__(self, folder: Path, worker_cores: int = 1, worker_memory: str = "1g"):
        self.folder = folder
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self.port = 0
        self.ui_port = 0
        self.master: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.groups: list[int] = []

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        spark_class = pyspark_home() / "bin" / "spark-class"
        with open(self.folder / f"{name}.log", "ab") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                [str(spark_class), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=cluster_env(),
                cwd=self.folder,
                start_new_session=True,
            )
        self.groups.append(process.pid)
        return process

    def master_state(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.ui_port}/json/", timeout=2) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            return None

    def start(self, timeout: float = 120.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port, self.ui_port = free_port(), free_port()
        self.master = self._spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host", HOST,
                "--port", str(self.port),
                "--webui-port", str(self.ui_port),
            ],
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        self._wait(lambda: self.master_state() is not None, deadline, "the master's web UI")
        self.worker = self._spawn(
            "worker",
            [
                "org.apache.spark.deploy.worker.Worker",
                self.url,
                "--host", HOST,
                "--cores", str(self.worker_cores),
                "--memory", self.worker_memory,
                "--webui-port", str(free_port()),
                "--work-dir", str(self.folder / "work"),
            ],
        )  # fmt: skip
        self._wait(self.worker_alive, deadline, "the worker to register")

    def worker_alive(self) -> bool:
        state = self.master_state() or {}
        return any(worker.get("state") == "ALIVE" for worker in state.get("workers", []))

    def _wait(self, ready, deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            for process in (self.master, self.worker):
                if process is not None and process.poll() is not None:
                    raise RuntimeError(
                        f"a cluster JVM exited ({process.returncode}) while waiting for {what}; "
                        f"logs in {self.folder}"
                    )
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"timed out waiting for {what}; logs in {self.folder}")

    def stop(self) -> list[int]:
        """Stop the worker (and so its executors) then the master; the pids still alive in
        their process groups afterwards (an empty list when nothing leaked)."""
        for process in (self.worker, self.master):
            if process is not None:
                stop_process_group(process)
        return [pid for group in self.groups for pid in processes_in_group(group)]


def java_processes_mentioning(text: str) -> list[str]:
    """`ps` lines of live java processes whose command line contains `text`."""
    out = subprocess.run(
        ["ps", "-eo", "pid,pgid,stat,args"], capture_output=True, text=True, check=True
    ).stdout
    return [
        line
        for line in out.splitlines()[1:]
        if "java" in line and text in line and " Z" not in line.split("java")[0]
    ]
