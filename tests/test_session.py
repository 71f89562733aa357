"""The local session takes Delta's jars from the last Ivy resolution when they are still there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orderlake.engine.session import DELTA_PACKAGE, delta_jars_conf

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
