"""The local session takes Delta's jars from the last Ivy resolution when they are still there."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orderlake.engine import class_archive
from orderlake.engine.interrupt import STOP
from orderlake.engine.scratch import scratch_root
from orderlake.engine.session import (
    DELTA_PACKAGE,
    _artifact,
    _forward_problems,
    delta_classpath,
    delta_jars_conf,
    jars_list_file,
    spark_jvm_pid,
)

IVY_BANNER = ":: resolving dependencies ::"


def jar(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(b"PK")
    return path.as_uri()


def test_no_list_resolves_the_package(tmp_path: Path) -> None:
    assert delta_jars_conf(tmp_path / "missing.txt") == ("spark.jars.packages", DELTA_PACKAGE)


def test_a_remembered_list_is_used_when_every_jar_exists(tmp_path: Path) -> None:
    jars = [jar(tmp_path, "delta-spark.jar"), jar(tmp_path, "delta-storage.jar")]
    listing = tmp_path / "jars.txt"
    listing.write_text(",".join(jars))
    assert delta_jars_conf(listing) == ("spark.jars", ",".join(jars))


def test_a_list_with_a_missing_jar_falls_back_to_ivy(tmp_path: Path) -> None:
    listing = tmp_path / "jars.txt"
    listing.write_text(jar(tmp_path, "delta-spark.jar") + "," + (tmp_path / "gone.jar").as_uri())
    assert delta_jars_conf(listing) == ("spark.jars.packages", DELTA_PACKAGE)


DELTA_ROUND_TRIP = """
import sys
from orderlake.engine.session import get_spark
spark = get_spark()
spark.range(3).write.format("delta").save(sys.argv[1])
print("delta rows:", spark.read.format("delta").load(sys.argv[1]).count())
"""


def test_second_start_skips_ivy_and_still_has_delta(tmp_path: Path) -> None:
    """A real start resolves with Ivy and remembers the jars; the next start loads them as is,
    and Delta works in both (Spark would only warn about a missing extension class)."""
    # Verbose: the quiet default filters Ivy's banner out of the JVM's stderr.
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "ORDERLAKE_SPARK_LOG_LEVEL": "WARN",
    }

    def start(table: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", DELTA_ROUND_TRIP, str(tmp_path / table)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    first = start("first")
    assert first.returncode == 0, first.stderr
    assert IVY_BANNER in first.stderr
    assert "delta rows: 3" in first.stdout
    remembered = list((tmp_path / "cache" / "orderlake").glob("jars-*.txt"))
    assert len(remembered) == 1 and "delta-spark" in remembered[0].read_text()
    second = start("second")
    assert second.returncode == 0, second.stderr
    assert IVY_BANNER not in second.stderr
    assert "delta rows: 3" in second.stdout
    assert (tmp_path / "second" / "_delta_log").is_dir()


def test_artifact_names_of_ivy_and_pyspark_jars() -> None:
    assert _artifact("org.apache.parquet_parquet-column-1.16.0.jar", ivy=True) == "parquet-column"
    assert _artifact("commons-pool_commons-pool-1.6.jar", ivy=True) == "commons-pool"
    assert _artifact("io.delta_delta-spark_4.2_2.13-4.4.0.jar", ivy=True) == "delta-spark_4.2_2.13"
    assert _artifact("com.github.luben_zstd-jni-1.5.7-3.jar", ivy=True) == "zstd-jni"
    assert _artifact("spark-core_2.13-4.2.0.jar") == "spark-core_2.13"
    assert _artifact("jackson-datatype-jdk8-2.21.2.jar") == "jackson-datatype-jdk8"


def test_the_class_path_keeps_only_the_jars_pyspark_lacks(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "spark"
    (home / "jars").mkdir(parents=True)
    shipped = ("parquet-column-1.17.0.jar", "commons-pool-1.5.4.jar", "spark-core_2.13-4.2.0.jar")
    for name in shipped:
        (home / "jars" / name).write_bytes(b"PK")
    monkeypatch.setenv("SPARK_HOME", str(home))
    ivy = tmp_path / "ivy"
    ivy.mkdir()
    names = [
        "io.delta_delta-spark_4.2_2.13-4.4.0.jar",
        "org.apache.parquet_parquet-column-1.16.0.jar",
        "commons-pool_commons-pool-1.6.jar",
        "io.delta_delta-storage-4.4.0.jar",
    ]
    listing = tmp_path / "jars.txt"
    listing.write_text(",".join(jar(ivy, name) for name in names))
    assert delta_classpath(listing) == [str(ivy / names[0]), str(ivy / names[3])]
    assert delta_classpath(tmp_path / "missing.txt") is None


def test_the_session_jvm_has_delta_on_its_class_path_and_its_scratch_in_the_cache(spark) -> None:
    classpath = delta_classpath(jars_list_file())
    assert classpath, "the test session starts after the jars were resolved"
    system = spark._jvm.java.lang.System  # type: ignore[attr-defined]
    loaded = system.getProperty("java.class.path").split(os.pathsep)
    assert loaded[-len(classpath) :] == classpath  # after pyspark's own jars
    assert not spark.sparkContext.getConf().get("spark.jars", "")  # nothing copied per start
    root = scratch_root()
    assert Path(system.getProperty("java.io.tmpdir")).parent == root
    assert Path(spark.sparkContext.getConf().get("spark.local.dir")).parent == root


def test_the_session_jvm_maps_the_class_archive_setup_built(spark) -> None:
    archive = class_archive.archive_path(delta_classpath(jars_list_file()) or [])
    if not archive.is_file():
        pytest.skip(f"no class archive at {archive}: `make setup` builds it")
    pid = spark_jvm_pid(spark)
    with open(f"/proc/{pid}/maps") as maps:
        mapped = {line.split()[-1] for line in maps if line.rstrip().endswith(".jsa")}
    assert str(archive) in mapped, mapped


def test_class_archive_options_need_the_archive(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert class_archive.java_options(["a.jar"]) == []
    path = class_archive.archive_path(["a.jar"])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert class_archive.java_options(["a.jar"]) == [
        f"-XX:SharedArchiveFile={path}",
        class_archive.QUIET,
    ]
    assert class_archive.archive_path(["b.jar"]) != path  # another class path, another archive
    monkeypatch.setenv("ORDERLAKE_CLASS_ARCHIVE", "0")
    assert class_archive.java_options(["a.jar"]) == []


def test_each_spark_installation_has_its_own_class_archive(tmp_path: Path, monkeypatch) -> None:
    """A clone with its own virtualenv has its own pyspark jars: an archive built for another
    one's class path is refused by the JVM, so it must not be taken for this one's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    here = class_archive.archive_path(["delta.jar"])
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "other-venv"))
    assert class_archive.archive_path(["delta.jar"]) != here


def test_a_virtualenv_re_created_at_the_same_path_gets_a_new_class_archive(
    tmp_path: Path, monkeypatch
) -> None:
    """Found by a clean-clone CI run in a folder an earlier clone had used: `make setup` found
    the old clone's archive under the same name, and the JVM silently refused it (its jars
    were new), so every session of the run started without it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    home = tmp_path / "venv" / "pyspark"
    (home / "jars").mkdir(parents=True)
    (home / "jars" / "spark-core.jar").write_bytes(b"old")
    monkeypatch.setenv("SPARK_HOME", str(home))
    delta = tmp_path / "delta.jar"
    delta.write_bytes(b"delta")
    first = class_archive.archive_path([str(delta)])
    assert class_archive.archive_path([str(delta)]) == first  # nothing changed: the same one
    shutil.rmtree(tmp_path / "venv")
    (home / "jars").mkdir(parents=True)
    (home / "jars" / "spark-core.jar").write_bytes(b"new")
    os.utime(home / "jars" / "spark-core.jar", ns=(1, 1))
    assert class_archive.archive_path([str(delta)]) != first


def test_a_new_archive_replaces_its_installations_old_ones_only(tmp_path: Path) -> None:
    import json

    live_other = tmp_path / "other-spark"
    live_other.mkdir()
    folder = tmp_path / "archives"
    folder.mkdir()
    made = {}
    for name, home in {
        "new": "/ours", "older": "/ours", "other": str(live_other), "gone": "/no/such/dir",
        "unrecorded": None,
    }.items():  # fmt: skip
        archive = folder / f"spark-{name}.jsa"
        archive.write_bytes(b"x")
        if home is not None:
            archive.with_suffix(".json").write_text(json.dumps({"spark_home": home}))
        made[name] = archive
    removed = class_archive.remove_stale(folder, "/ours", keep=made["new"])
    assert sorted(p.name for p in removed) == [
        "spark-gone.jsa", "spark-older.jsa", "spark-unrecorded.jsa",
    ]  # fmt: skip
    assert sorted(p.name for p in folder.glob("*.jsa")) == ["spark-new.jsa", "spark-other.jsa"]
    assert not (folder / "spark-older.json").exists()


JVM_STDERR = (
    "WARNING: Using incubator modules: jdk.incubator.vector\n"
    "java.util.concurrent.RejectedExecutionException: Task Future(<not completed>) rejected\n"
    "\tat java.base/java.util.concurrent.ThreadPoolExecutor.reject(ThreadPoolExecutor.java:2081)\n"
)


def _jvm_like_stderr() -> subprocess.Popen[bytes]:
    """A child that writes to its stderr pipe what the Spark JVM writes as it shuts down."""
    code = f"import sys; sys.stderr.write({JVM_STDERR!r})"
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)


def test_the_jvms_problem_lines_reach_the_user_and_its_chatter_does_not() -> None:
    out = io.StringIO()
    child = _jvm_like_stderr()
    _forward_problems(child.stderr, out)
    child.wait()
    assert out.getvalue().splitlines() == [JVM_STDERR.splitlines()[1]]


def test_after_a_stop_the_jvms_shutdown_noise_is_not_reported() -> None:
    """A signal to the group reaches the JVM too; the user gets one line from us, not the
    RejectedExecutionException of its thread pools shutting down (found by the chaos test)."""
    out = io.StringIO()
    STOP.request(signal.SIGTERM)
    try:
        child = _jvm_like_stderr()
        _forward_problems(child.stderr, out)
        child.wait()
    finally:
        STOP.reset()
    assert out.getvalue() == ""
