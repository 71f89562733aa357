"""A class-data-sharing archive of the classes a pipeline run loads, for faster JVM starts.

A one-shot `orderlake run` spends most of its first seconds reading, verifying and linking
Spark's and Delta's classes from jars. The JDK's dynamic AppCDS archive holds them ready to
map: `make setup` runs the pipeline once on sample files with `-XX:ArchiveClassesAtExit`, and
every later session starts with `-XX:SharedArchiveFile` (docs/performance.md has the figures).

An archive is only good for the JVM and class path that made it (pyspark's jars, where they
are installed, then the Delta jars): its name hashes the Java binary, the Spark installation and
every jar's size and time (a virtualenv re-created at the same path has new jars), and the JVM
itself ignores a mismatched archive (silently, with the `cds` log off). Without an archive a
session starts as before. Each archive has a `.json` beside it
naming its Spark installation; a new build deletes the archives of its own installation and of
installations that are gone (a deleted virtualenv), not those of other live checkouts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from orderlake.settings import cache_home

QUIET = "-Xlog:cds*=off"


def archive_dir() -> Path:
    cache = cache_home()
    return cache / "orderlake" / "class-archive"


def archive_path(classpath: list[str]) -> Path:
    """Where the archive for this JVM (its binary, as installed), Spark installation and
    class path lives."""
    from orderlake.engine.session import java_binary, spark_home

    java = java_binary()
    try:
        stamp = f"{os.path.realpath(java)}:{os.stat(java).st_mtime_ns}"
    except (OSError, TypeError):
        stamp = "unknown-java"
    home = os.path.realpath(spark_home())
    parts = [stamp, home, *_file_stamps(Path(home) / "jars"), *_stamps(classpath)]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return archive_dir() / f"spark-{key}.jsa"


def _stamps(paths: list[str]) -> list[str]:
    """Each file with its size and time: the JVM refuses an archive when a jar on the class
    path changed, so a virtualenv re-created at the same path needs a new archive."""
    stamps = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append(f"{path}:{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            stamps.append(f"{path}:missing")
    return stamps


def _file_stamps(folder: Path) -> list[str]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return [f"{folder}:missing"]
    return _stamps([str(folder / name) for name in names])


def java_options(classpath: list[str]) -> list[str]:
    """The JVM options that use this class path's archive, or none when there is none."""
    if os.environ.get("ORDERLAKE_CLASS_ARCHIVE") == "0":
        return []
    path = archive_path(classpath)
    return [f"-XX:SharedArchiveFile={path}", QUIET] if path.is_file() else []


def build(classpath: list[str]) -> Path:
    """Run the pipeline once on sample files in a JVM that dumps its classes at exit."""
    from orderlake.engine import session
    from orderlake.engine.run.runner import LocalPipeline
    from orderlake.synthetic import generate_order_files

    final = archive_path(classpath)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f"{final.name}.{os.getpid()}.partial")
    dump = [f"-XX:ArchiveClassesAtExit={partial}", QUIET]
    with tempfile.TemporaryDirectory(prefix="orderlake-class-archive-") as work:
        volume, warehouse = Path(work) / "volume", Path(work) / "warehouse"
        spark = session.get_spark("orderlake-class-archive", java_options=dump)
        jvm = spark.sparkContext._gateway.proc  # type: ignore[attr-defined]
        generate_order_files(volume / "source", rows=6_000, files=2, invalid_ratio=0.01, seed=7)
        pipeline = LocalPipeline(volume_path=volume, warehouse_path=warehouse, spark=spark)
        pipeline.update()
        generate_order_files(volume / "source", rows=200, files=1, seed=8, name_prefix="more")
        pipeline.update()
        spark.stop()
        jvm.stdin.close()  # the JVM exits on EOF from its Python, and dumps the archive then
        jvm.wait(timeout=300)
    if not partial.is_file() or partial.stat().st_size == 0:
        raise RuntimeError(f"the JVM wrote no class archive at {partial}")
    home = os.path.realpath(session.spark_home())
    remove_stale(final.parent, home, keep=final)
    final.with_suffix(".json").write_text(json.dumps({"spark_home": home}), encoding="utf-8")
    partial.replace(final)
    return final


def remove_stale(folder: Path, home: str, keep: Path) -> list[Path]:
    """Delete the archives made for `home` (older builds) or for a Spark installation that is
    gone; keep those of other installations that still exist."""
    removed = []
    for archive in folder.glob("spark-*.jsa"):
        if archive == keep:
            continue
        try:
            owner = json.loads(archive.with_suffix(".json").read_text(encoding="utf-8"))
            built_for = str(owner["spark_home"])
        except (OSError, ValueError, KeyError, TypeError):
            built_for = ""  # no record (an early build): treat as gone
        if built_for == home or not os.path.isdir(built_for):
            archive.unlink(missing_ok=True)
            archive.with_suffix(".json").unlink(missing_ok=True)
            removed.append(archive)
    for partial in folder.glob("spark-*.partial"):  # a build killed while its JVM dumped
        with contextlib.suppress(OSError):
            if time.time() - partial.stat().st_mtime > 3600:
                partial.unlink()
    return removed


def main(argv: list[str] | None = None) -> int:
    """`python -m orderlake.engine.class_archive [--if-missing]` (run by `make setup`)."""
    from orderlake.engine.session import delta_classpath, jars_list_file

    args = sys.argv[1:] if argv is None else argv
    classpath = delta_classpath(jars_list_file())
    if classpath is None:
        print("orderlake: the Delta jars are not resolved yet: run `python -m "
              "orderlake.engine.session` first", file=sys.stderr)
        return 2
    if "--if-missing" in args and archive_path(classpath).is_file():
        return 0
    print(f"class archive written: {build(classpath)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
