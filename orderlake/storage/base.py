"""The storage interface: every file operation the engine does, on a local folder or a bucket.

Both backends keep these rules (the tests in tests/storage check each one on both):

- Paths are strings: a local path or a `file:` URI for LocalStorage (its FileInfo.path is
  always an absolute plain path), a full URI (`gs://bucket/key`) for HadoopStorage (its
  FileInfo.path is the full URI).
- Directories are what a listing walks through; only regular files are listed, stat-ed or read.
  On object stores a "directory" is a key prefix (or a marker object ending in "/").
- `write_bytes` replaces the whole file; a reader sees the old bytes or the new, never a part.
- `create_exclusive` is put-if-absent: of any number of racing callers exactly one gets True,
  and a reader never sees a partial file.
- `rename` never replaces an existing `dst` (file or directory): it returns False then, and
  False when `src` is gone. It creates `dst`'s parent folder when missing. It is atomic on a
  local disk and NOT on object stores (see orderlake/storage/hadoop.py for what a crash leaves).
- Reading or opening a missing file raises FileNotFoundError; `mkdirs` over a file raises
  FileExistsError. Other failures raise OSError (or the backend's own error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import urlparse


@dataclass(frozen=True)
class FileInfo:
    """One regular file. mtime_ns: nanoseconds since the epoch (object stores: the object's
    last-update time, at millisecond precision through Hadoop)."""

    path: str
    size: int
    mtime_ns: int


@runtime_checkable
class Storage(Protocol):
    def join(self, base: str, *parts: str) -> str:
        """`base` with `parts` appended, one "/" between each."""

    def list_files(self, root: str, recursive: bool = True) -> list[FileInfo]:
        """Regular files under `root`, sorted by path; [] when root is missing; [root's info]
        when root is itself a file."""

    def stat(self, path: str) -> FileInfo | None:
        """The file at `path`, or None when there is no regular file there (missing, or a
        directory)."""

    def exists(self, path: str) -> bool:
        """A file or a directory is at `path`."""

    def is_dir(self, path: str) -> bool: ...

    def read_bytes(self, path: str) -> bytes: ...

    def open_read(self, path: str) -> BinaryIO:
        """A buffered binary stream over the file (for files too big to hold in memory)."""

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace the file; parent folders are created."""

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create the file with `data` if nothing is at `path`: True; else False."""

    def rename(self, src: str, dst: str) -> bool: ...

    def delete(self, path: str) -> bool:
        """Delete the file, or the directory with everything under it. False if nothing was
        there."""

    def mkdirs(self, path: str) -> None: ...


def join_path(base: str, *parts: str) -> str:
    """`base` + "/" + each part, without doubled slashes. A part starting with "/" does not
    restart from the root (unlike os.path.join); empty parts are skipped."""
    out = base
    for part in parts:
        part = part.strip("/")
        if part:
            out = out + part if out.endswith("/") else f"{out}/{part}"
    return out


def scheme_of(path: str) -> str:
    """The URI scheme, "" for a plain path. One-letter schemes are Windows drives, not URIs."""
    scheme = urlparse(path).scheme
    return scheme.lower() if len(scheme) > 1 else ""


def is_local(path: str) -> bool:
    return scheme_of(path) in ("", "file")


def storage_for(path: str, spark=None) -> Storage:
    """LocalStorage for a plain path or a `file:` URI (pure Python: no Spark, no JVM), else
    HadoopStorage on `spark` (or the active SparkSession) for any Hadoop filesystem scheme."""
    if is_local(path):
        from orderlake.storage.local import LOCAL

        return LOCAL
    from orderlake.storage.hadoop import HadoopStorage

    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise ValueError(f"{path}: a {scheme_of(path)}:// path needs a SparkSession")
    return HadoopStorage(spark)
