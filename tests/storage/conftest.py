"""Fixtures for the storage tests: the GCS emulator, a Spark session on it, a standalone cluster.

Prerequisites: Java 17+ (Spark), the fake-gcs-server binary (scripts/install-fake-gcs-server.sh),
the GCS connector jar (downloaded from Maven Central on first use). Without one of them the
tests that need it skip with the reason; ORDERLAKE_REQUIRE_GCS=1 turns those skips into
failures. LocalStorage tests need none of them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orderlake.storage import LOCAL, Storage, storage_for
from tests.support import gcs_emulator as emu
from tests.support.spark_cluster import StandaloneCluster, java_processes_mentioning

BUCKET = "orderlake-test"
CONNECTOR_CLASS = "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem"


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emu.FakeGcsServer]:
    binary = emu.find_binary()
    if binary is None:
        emu.unavailable(emu.missing_reason())
    server = emu.FakeGcsServer(binary, tmp_path_factory.mktemp("fake-gcs") / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_bucket(gcs_server: emu.FakeGcsServer) -> str:
    gcs_server.create_bucket(BUCKET)
    return BUCKET


def _java_ok() -> None:
    from orderlake.engine.session import JavaMissing, java_version

    try:
        java_version()
    except JavaMissing as exc:
        emu.unavailable(str(exc))


def _connector_jar() -> Path:
    from orderlake.storage.connectors import ConnectorDownloadError, gcs_connector_jar

    try:
        return gcs_connector_jar()
    except ConnectorDownloadError as exc:
        emu.unavailable(f"the GCS connector jar is not available: {exc}")
        raise  # unreachable: unavailable() skips or fails


@pytest.fixture(scope="session")
def gcs_spark(gcs_server: emu.FakeGcsServer, gcs_bucket: str) -> Iterator:
    """A local-mode session (driver only) with Delta, the connector and the emulator settings."""
    _java_ok()
    _connector_jar()
    from pyspark.sql import SparkSession

    from orderlake.storage.spark import build_spark

    active = SparkSession.getActiveSession()
    if active is not None:
        try:
            active._jvm.java.lang.Class.forName(CONNECTOR_CLASS)
        except Exception:
            emu.unavailable(
                "a Spark session without the GCS connector already runs in this process "
                "(one SparkContext per process): run `pytest tests/storage` on its own"
            )
    saved = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = emu.HOST  # the driver JVM binds loopback only
    try:
        spark = build_spark(
            "local[2]", gcs_server.endpoint, "orderlake-storage-tests", driver_host=emu.HOST
        )
    finally:
        if saved is None:
            os.environ.pop("SPARK_LOCAL_IP", None)
        else:
            os.environ["SPARK_LOCAL_IP"] = saved
    yield spark
    spark.stop()


@dataclass(frozen=True)
class Place:
    """A backend and a fresh, empty root folder on it for one test."""

    name: str
    storage: Storage
    root: str

    def path(self, *parts: str) -> str:
        return self.storage.join(self.root, *parts)


@pytest.fixture(params=["local", "gcs"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "local":
        return Place("local", LOCAL, str(tmp_path / "root"))
    spark = request.getfixturevalue("gcs_spark")
    bucket = request.getfixturevalue("gcs_bucket")
    root = f"gs://{bucket}/{request.node.name.replace('[', '-').rstrip(']')}-{uuid.uuid4().hex[:8]}"
    return Place("gcs", storage_for(root, spark), root)


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """A master and one worker (1 core, 1g) on 127.0.0.1; both (and every executor) are
    killed at teardown, and the teardown fails if any of their processes is left."""
    _java_ok()
    folder = tmp_path_factory.mktemp("spark-cluster")
    cluster = StandaloneCluster(folder)
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.stop()
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    leftover = cluster.stop()
    stray = java_processes_mentioning(str(folder))
    assert not leftover and not stray, f"cluster processes survived: {leftover} {stray}"
