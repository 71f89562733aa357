"""What the GCS connector does on gs:// that the storage layer relies on or documents.

Each test pins one answer written down in orderlake/storage/hadoop.py and docs/gcs-notes.md.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime

import pytest
from py4j.protocol import Py4JJavaError

from orderlake.storage import storage_for
from orderlake.storage.hadoop import HadoopStorage, HadoopStorageError, _is_precondition_failure
from tests.support.racing import race


@pytest.fixture
def gs(gcs_spark, gcs_bucket) -> tuple[HadoopStorage, str]:
    root = f"gs://{gcs_bucket}/semantics-{uuid.uuid4().hex[:8]}"
    return storage_for(root, gcs_spark), root


def hadoop_fs(spark, path: str):
    hpath = spark._jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark._jsc.hadoopConfiguration()), hpath


def test_storage_for_routes_gs_to_hadoop_and_local_to_local(gcs_spark, tmp_path) -> None:
    from orderlake.storage import LOCAL

    assert isinstance(storage_for("gs://bucket/x", gcs_spark), HadoopStorage)
    assert isinstance(storage_for("gs://bucket/x"), HadoopStorage)  # the active session
    assert storage_for(str(tmp_path)) is LOCAL
    assert storage_for(f"file://{tmp_path}") is LOCAL


def test_filesystem_instances_are_cached_per_bucket(gcs_spark, gcs_server, gcs_bucket) -> None:
    gcs_server.create_bucket("orderlake-other")
    identity = gcs_spark._jvm.java.lang.System.identityHashCode
    first, _ = hadoop_fs(gcs_spark, f"gs://{gcs_bucket}/a")
    again, _ = hadoop_fs(gcs_spark, f"gs://{gcs_bucket}/b/c")
    other, _ = hadoop_fs(gcs_spark, "gs://orderlake-other/a")
    assert identity(first) == identity(again)  # FileSystem.get: one instance per bucket
    assert identity(first) != identity(other)
    fresh = gcs_spark._jvm.org.apache.hadoop.fs.FileSystem.newInstance(
        first.getUri(), gcs_spark._jsc.hadoopConfiguration()
    )
    try:
        assert identity(fresh) != identity(first)  # newInstance: private, caller closes it
    finally:
        fresh.close()
    # Closing the private instance did not close the shared one.
    assert first.exists(gcs_spark._jvm.org.apache.hadoop.fs.Path(f"gs://{gcs_bucket}/"))


def test_loser_of_a_create_race_fails_at_close_and_is_recognised(gcs_spark, gcs_server, gs):
    """Deterministic version of the race: our create(overwrite=false) has looked (nothing
    there) and is uploading when another client creates the object; our finalize then fails
    on ifGenerationMatch=0, and create_exclusive maps exactly that error to False."""
    _, root = gs
    bucket, key = root[len("gs://") :].split("/", 1)
    fs, hpath = hadoop_fs(gcs_spark, f"{root}/claim")
    stream = fs.create(hpath, False)
    stream.write(b"ours")
    assert gcs_server.upload_if_absent(bucket, f"{key}/claim", b"theirs") is True
    with pytest.raises(Py4JJavaError) as caught:
        stream.close()
    assert _is_precondition_failure(caught.value)
    assert "412" in str(caught.value)
    assert storage_for(root, gcs_spark).read_bytes(f"{root}/claim") == b"theirs"


def test_create_exclusive_races_another_client(gcs_server, gs) -> None:
    """The connector (in the JVM) against a plain HTTP client (this Python process) on the
    same object names: exactly one creator per round."""
    storage, root = gs
    bucket, key = root[len("gs://") :].split("/", 1)
    rng = random.Random(7)
    winners = {"connector": 0, "http": 0}
    for r in range(12):
        delay = rng.uniform(0, 0.15)  # the connector needs ~3 requests, HTTP one

        def http(r: int = r, delay: float = delay) -> bool:
            time.sleep(delay)
            return gcs_server.upload_if_absent(bucket, f"{key}/x-{r}", b"http")

        results = race([lambda r=r: storage.create_exclusive(f"{root}/x-{r}", b"connector"), http])
        assert results.count(True) == 1, f"round {r}: {results}"
        winner = "connector" if results[0] else "http"
        winners[winner] += 1
        assert storage.read_bytes(f"{root}/x-{r}") == winner.encode()
    assert sum(winners.values()) == 12


def test_two_overwriters_the_later_finalize_fails(gcs_spark, gs) -> None:
    """write_bytes uploads with ifGenerationMatch=<generation seen at create>: a replacement
    landing in between makes our close fail rather than silently win."""
    storage, root = gs
    path = f"{root}/shared"
    storage.write_bytes(path, b"v0")
    fs, hpath = hadoop_fs(gcs_spark, path)
    stream = fs.create(hpath, True)
    stream.write(b"slow writer")
    storage.write_bytes(path, b"fast writer")
    with pytest.raises(Py4JJavaError) as caught:
        stream.close()
    assert _is_precondition_failure(caught.value)
    assert storage.read_bytes(path) == b"fast writer"


@pytest.mark.parametrize("operation", ["write_bytes", "create_exclusive"])
def test_a_write_failing_halfway_publishes_nothing(gs, monkeypatch, operation: str) -> None:
    """The first chunk went up, then the writing failed: the object must stay as it was
    (closing the stream would have published the first chunk alone)."""
    storage, root = gs
    path = f"{root}/half"
    if operation == "write_bytes":
        storage.write_bytes(path, b"complete old version")

    def first_chunk_then_fail(stream, data: bytes) -> None:
        stream.write(data[:5])
        raise KeyboardInterrupt  # e.g. Ctrl-C between two chunks

    monkeypatch.setattr(storage, "_write", first_chunk_then_fail)
    with pytest.raises(KeyboardInterrupt):
        getattr(storage, operation)(path, b"new bytes, never complete")
    monkeypatch.undo()
    if operation == "write_bytes":
        assert storage.read_bytes(path) == b"complete old version"
    else:
        assert storage.stat(path) is None
        assert storage.create_exclusive(path, b"later") is True


def test_mtime_is_the_object_update_time_in_ms_and_rename_renews_it(gcs_server, gs) -> None:
    storage, root = gs
    bucket, key = root[len("gs://") :].split("/", 1)
    storage.write_bytes(f"{root}/a", b"a")
    info = storage.stat(f"{root}/a")
    assert info.mtime_ns % 1_000_000 == 0  # milliseconds through Hadoop's FileStatus
    updated = gcs_server.object_metadata(bucket, f"{key}/a")["updated"]
    assert info.mtime_ns // 1_000_000 == int(
        datetime.fromisoformat(updated.replace("Z", "+00:00")).timestamp() * 1000
    )
    time.sleep(0.02)
    assert storage.rename(f"{root}/a", f"{root}/b")
    assert storage.stat(f"{root}/b").mtime_ns > info.mtime_ns  # a copy: a new object


def test_rename_is_a_copy_then_a_delete(gcs_server, gs) -> None:
    """dst is a new object (new generation), src is gone; with move disabled there is no
    single atomic call (see hadoop.py for what a crash in between leaves)."""
    storage, root = gs
    bucket, key = root[len("gs://") :].split("/", 1)
    storage.write_bytes(f"{root}/src", b"payload")
    before = gcs_server.object_metadata(bucket, f"{key}/src")
    assert storage.rename(f"{root}/src", f"{root}/dst")
    after = gcs_server.object_metadata(bucket, f"{key}/dst")
    assert gcs_server.object_metadata(bucket, f"{key}/src") is None
    assert after["generation"] != before["generation"]
    assert after["md5Hash"] == before["md5Hash"]


def test_mkdirs_writes_a_marker_object_and_prefixes_are_directories(gcs_server, gs) -> None:
    storage, root = gs
    bucket, key = root[len("gs://") :].split("/", 1)
    storage.mkdirs(f"{root}/made")
    assert gcs_server.object_metadata(bucket, f"{key}/made/") is not None
    storage.write_bytes(f"{root}/implicit/deep/f", b"x")
    assert gcs_server.object_metadata(bucket, f"{key}/implicit/") is None
    assert storage.is_dir(f"{root}/implicit")  # no marker, objects under the prefix
    assert [i.path for i in storage.list_files(root)] == [f"{root}/implicit/deep/f"]


def test_whole_or_nothing_writes_are_refused_on_unverified_schemes(gcs_spark) -> None:
    storage = HadoopStorage(gcs_spark)
    with pytest.raises(NotImplementedError):
        storage.write_bytes("s3a://bucket/x", b"x")
    with pytest.raises(NotImplementedError):
        storage.create_exclusive("hdfs://nn/x", b"x")


def test_other_java_errors_become_hadoop_storage_errors(gcs_spark) -> None:
    storage = HadoopStorage(gcs_spark)
    with pytest.raises(HadoopStorageError, match="bucket-that-does-not-exist|404|Not Found"):
        storage.write_bytes("gs://bucket-that-does-not-exist/x", b"x")


def test_spark_packages_cannot_take_a_classifier(gcs_spark) -> None:
    """Why the connector comes through spark.jars: Spark 4.2's --packages parser wants exactly
    groupId:artifactId:version."""
    maven = gcs_spark._jvm.org.apache.spark.util.MavenUtils
    with pytest.raises(Exception, match="groupId:artifactId:version"):
        maven.extractMavenCoordinates("com.google.cloud.bigdataoss:gcs-connector:4.0.4:shaded")
    assert maven.extractMavenCoordinates("a:b:1").size() == 1
