"""Engine paths: `pathlib.Path` for a local folder, `RemotePath` for a bucket.

The engine was written against pathlib. `as_path(text)` keeps that exact code path for plain
paths and `file:` URIs (a real `Path`, nothing changes locally) and gives a `RemotePath` for any
other scheme (`gs://`, `s3a://`): the pathlib methods the engine uses, each one call of
HadoopStorage. What pathlib cannot express on an object store (an atomic rename, an fsync'd
replace, flock, appending) is decided where the engine does it, with `is_remote(path)`.

RemotePath has no `__fspath__` on purpose: `open()`, `os.*` or `shutil` on one fails loudly
instead of writing a local folder named `gs:`.
"""

from __future__ import annotations

import fnmatch
import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from orderlake.storage.base import is_local, join_path

_STORAGE: Any = None


def remote_storage():
    """The HadoopStorage of this process's Spark session, started on first use (from the
    environment: ORDERLAKE_SPARK_MASTER, ORDERLAKE_GCS_ENDPOINT) when none is active."""
    global _STORAGE
    from pyspark.sql import SparkSession

    from orderlake.storage.hadoop import HadoopStorage

    # getActiveSession is per thread (the lock's heartbeat runs in its own): fall back on the
    # process's session before starting one.
    spark = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if spark is None:
        spark = remote_spark()
    if _STORAGE is None or _STORAGE._jvm is not spark._jvm:
        _STORAGE = HadoopStorage(spark)
    return _STORAGE


def remote_spark(warehouse: str | None = None):
    """A session that reads and writes buckets: Delta, the GCS connector and its settings.

    With a bucket `warehouse`, Spark's own warehouse folder goes there too: the driver's disk
    holds nothing (the catalog's tables are external anyway)."""
    from orderlake.storage.spark import build_spark

    master = os.environ.get("ORDERLAKE_SPARK_MASTER") or (
        f"local[{os.environ.get('ORDERLAKE_SPARK_CORES', '*')}]"
    )
    driver_host = os.environ.get("ORDERLAKE_DRIVER_HOST") or (
        "127.0.0.1" if master.startswith("spark://127.0.0.1") else None
    )
    extra = {}
    if warehouse is not None and not is_local(warehouse):
        extra["spark.sql.warehouse.dir"] = join_path(warehouse, "_orderlake", "spark-warehouse")
    return build_spark(
        master,
        os.environ.get("ORDERLAKE_GCS_ENDPOINT") or None,
        "orderlake",
        driver_host=driver_host,
        extra_conf=extra,
    )


@dataclass(frozen=True)
class RemoteStat:
    st_size: int
    st_mtime_ns: int


class RemotePath:
    """A `gs://bucket/key` (or other Hadoop URI) with the pathlib methods the engine uses."""

    __slots__ = ("_uri",)

    def __init__(self, uri: str | RemotePath) -> None:
        text = str(uri)
        parsed = urlparse(text)
        key = parsed.path.rstrip("/")
        self._uri = f"{parsed.scheme}://{parsed.netloc}{key}"

    # -- pure ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._uri

    def __repr__(self) -> str:
        return f"RemotePath({self._uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other._uri == self._uri

    def __hash__(self) -> int:
        return hash(self._uri)

    def __lt__(self, other: RemotePath) -> bool:
        return self._uri < other._uri

    def __truediv__(self, part: str | os.PathLike) -> RemotePath:
        return RemotePath(join_path(self._uri, str(part)))

    @property
    def _key(self) -> str:
        return urlparse(self._uri).path

    @property
    def name(self) -> str:
        return PurePosixPath(self._key).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self._key).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self._key).stem

    @property
    def parent(self) -> RemotePath:
        parsed = urlparse(self._uri)
        return RemotePath(f"{parsed.scheme}://{parsed.netloc}{PurePosixPath(self._key).parent}")

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def resolve(self) -> RemotePath:
        return self

    def absolute(self) -> RemotePath:
        return self

    def as_posix(self) -> str:
        return self._uri

    def relative_to(self, other: RemotePath | str) -> PurePosixPath:
        base = str(other).rstrip("/") + "/"
        if not self._uri.startswith(base):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self._uri[len(base) :])

    # -- through the storage ------------------------------------------------------------------
    @property
    def storage(self):
        return remote_storage()

    def exists(self) -> bool:
        return self.storage.exists(self._uri)

    def is_dir(self) -> bool:
        return self.storage.is_dir(self._uri)

    def is_file(self) -> bool:
        return self.storage.stat(self._uri) is not None

    def is_symlink(self) -> bool:
        return False  # an object store has no links

    def stat(self) -> RemoteStat:
        info = self.storage.stat(self._uri)
        if info is None:
            raise FileNotFoundError(self._uri)
        return RemoteStat(info.size, info.mtime_ns)

    lstat = stat

    def read_bytes(self) -> bytes:
        return self.storage.read_bytes(self._uri)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        """One object upload: whole or absent, never a part."""
        self.storage.write_bytes(self._uri, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def open(self, mode: str = "r", encoding: str | None = None, **_: Any):
        if "w" in mode or "a" in mode or "+" in mode:
            raise io.UnsupportedOperation(f"{self}: objects are written whole (write_bytes)")
        stream = self.storage.open_read(self._uri)
        if "b" in mode:
            return stream
        return io.TextIOWrapper(stream, encoding=encoding or "utf-8")

    def mkdir(self, parents: bool = False, exist_ok: bool = False, mode: int = 0o777) -> None:
        if self.exists() and not exist_ok:
            raise FileExistsError(self._uri)
        self.storage.mkdirs(self._uri)

    def unlink(self, missing_ok: bool = False) -> None:
        if self.storage.stat(self._uri) is None:
            if missing_ok:
                return
            raise FileNotFoundError(self._uri)
        self.storage.delete(self._uri)

    def rename(self, target: RemotePath | str) -> RemotePath:
        """Copy then delete on GCS (not atomic): the engine renames only under its lock."""
        target = RemotePath(str(target))
        if not self.exists():
            raise FileNotFoundError(self._uri)
        if not self.storage.rename(self._uri, str(target)):
            raise FileExistsError(str(target))
        return target

    def iterdir(self) -> list[RemotePath]:
        return [RemotePath(p) for p, _ in self.storage.children(self._uri)]

    def glob(self, pattern: str) -> list[RemotePath]:
        """Direct children matching a one-level pattern (all the engine asks for)."""
        if "/" in pattern or "**" in pattern:
            raise ValueError(f"RemotePath.glob takes one-level patterns, not {pattern!r}")
        return [p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern)]


AnyPath = Path | RemotePath


def is_remote(path: object) -> bool:
    return isinstance(path, RemotePath)


def as_path(text: str | os.PathLike | RemotePath) -> AnyPath:
    """`Path` for a local path or `file:` URI (as the engine always did), else RemotePath."""
    if isinstance(text, RemotePath | Path):
        return text
    value = os.fspath(text) if not isinstance(text, str) else text
    if is_local(value):
        return Path(urlparse(value).path) if value.startswith("file:") else Path(value)
    return RemotePath(value)
