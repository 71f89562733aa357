"""HadoopStorage: the storage interface on any Hadoop filesystem, through Spark's JVM (py4j).

`org.apache.hadoop.fs.Path(p).getFileSystem(spark._jsc.hadoopConfiguration())`, i.e.
FileSystem.get: Hadoop caches one instance per (scheme, authority = bucket, user), shared with
Spark and Delta in the same JVM. We use that cached instance and never close it (closing it
would break Spark's own use); `FileSystem.newInstance` would only buy a private connection pool
to close ourselves. Consequence: Hadoop settings changed after the first access to a bucket do
not reach that bucket's instance (set them before the session starts).

Verified for `gs://` (GCS connector 4.0.4 against fake-gcs-server v1.56.1, and in the
connector's source); docs/gcs-notes.md has the measurements, and
scripts/measure-gcs-semantics.py repeats them (counts below: two runs of 100 rounds each):

- write_bytes: one object upload, visible only when the upload is finalized (close): a reader
  sees the old object or the new, never a part. The connector first reads the object's
  current generation and uploads with ifGenerationMatch=<that generation>, so when two writers
  replace one object at the same time the later finalize fails (HadoopStorageError, HTTP 412;
  in 88 and 95 of 100 two-writer races; in the others the writes did not overlap) instead of
  silently winning. Callers that may race must expect it: there is no "last writer wins".
  close() is what publishes, whatever was written: a write that fails halfway must not close
  the stream (the connector's stream cannot be aborted), so it is left unclosed and the
  unfinished upload is dropped (tested).
- create_exclusive: create(path, overwrite=false). The connector looks first (an existing
  object or directory: FileAlreadyExistsException at create) and then uploads with
  ifGenerationMatch=0, which the server checks atomically at finalize: of racing writers
  exactly one wins and the others fail at close with "412 Precondition Failed", which is
  mapped to False here. Measured, exactly one winner in every round: 4 threads of one JVM,
  two JVMs (two processes with a session each), the connector against a plain HTTP client.
- rename of a file: GCS has no rename. With fs.gs.operation.move.enable=true (the connector's
  default, i.e. real GCS) it is one objects.move call (documented atomic, same bucket) with
  ifGenerationMatch=0 on dst: not verified here, the emulator has no move route. With move
  disabled (the emulator settings) it is rewrite(src -> dst) and then delete(src at the
  generation it saw). The dst-exists check is a lookup BEFORE the copy and the rewrite carries
  no precondition on dst: two renames racing onto one dst both returned True in 80 and 76
  of 100 rounds (the later copy replaces the earlier), and two renames of one src onto two
  dsts left both copies in 68 and 60 of 100. So rename is safe only under a single writer
  (the engine's lock); use create_exclusive to claim anything. A crash between the copy and
  the delete leaves BOTH src and dst, complete and identical; a retried rename then returns
  False (dst exists), so recovery is: if dst exists with src's size (or bytes), delete src.
  Renaming a directory copies then deletes object by object: a crash leaves a partial dst
  and the whole src.
- Reads: open() pins the object's generation (the connector reads that generation). If the
  object is replaced after the open, the next read raises FileNotFoundError ("the requested
  generation is deleted") although the path has a newer object; a local file opened before a
  replace keeps reading the old bytes instead. read_bytes re-opens and reads again (up to 5
  times) while the path still exists; a stream from open_read does not (bytes may already be
  consumed): its caller sees the FileNotFoundError.
- mkdirs writes a marker object "dir/"; a prefix with objects under it is a directory too
  (is_dir), and deleting a folder's last file leaves its marker (the folder stays, as on a
  disk). Markers are never listed as files.
- Listing, stat and reads right after a write, a delete or a rename see the change (GCS is
  strongly consistent for these; so is the emulator; tested).
- mtimes: the object's `updated` time at millisecond precision. A rename gives dst a new
  mtime (the time of the copy), unlike a local rename, which keeps it.
- Cost: every call is a py4j round trip (~0.1 ms) plus HTTP; list_files of 200 objects took
  0.15-0.3 s; read_bytes moves ~12 MB/s through py4j (8 MiB chunks), so bulk data belongs in
  Spark, not here.

write_bytes and create_exclusive are refused for other schemes until someone checks what they
do there (on HDFS or ABFS a reader can see a file while it is being written).
"""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from orderlake.storage.base import FileInfo, join_path, scheme_of

# Schemes whose create/close is one atomic object upload (checked: gs).
ATOMIC_PUT_SCHEMES = frozenset({"gs"})
CHUNK = 8 << 20  # bytes per py4j call when streaming


class HadoopStorageError(OSError):
    """A Hadoop filesystem call failed for another reason than a missing or existing path."""


def _java_exception(exc: BaseException):
    """The Java exception behind a Py4JJavaError, or behind the pyspark exception that
    pyspark's py4j hook converts some Java classes to (IllegalArgumentException, ...)."""
    return getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)


def _java_chain(exc: BaseException) -> list[tuple[str, str]]:
    """(class name, message) of the Java exception behind `exc` and its causes."""
    chain: list[tuple[str, str]] = []
    java = _java_exception(exc)
    while java is not None and len(chain) < 10:
        chain.append((java.getClass().getName(), str(java.getMessage() or "")))
        cause = java.getCause()
        java = None if cause is None or cause.equals(java) else cause
    return chain


def _is_precondition_failure(exc: BaseException) -> bool:
    """The upload lost to another writer: FileAlreadyExistsException, or the connector's
    "Upload failed" IOException caused by GoogleJsonResponseException "412 Precondition
    Failed" (measured: that is what close() raises for the loser of a create race)."""
    return any(
        name.endswith("FileAlreadyExistsException") or message.startswith("412 Precondition")
        for name, message in _java_chain(exc)
    )


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """Java FileNotFoundException -> FileNotFoundError, FileAlreadyExistsException ->
    FileExistsError, any other Java error -> HadoopStorageError."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, OSError) or _java_exception(exc) is None:
            raise
        chain = _java_chain(exc)
        name, message = chain[0] if chain else ("error", str(exc))
        if name == "java.io.FileNotFoundException":
            raise FileNotFoundError(errno.ENOENT, message, path) from exc
        if name.endswith("FileAlreadyExistsException"):
            raise FileExistsError(errno.EEXIST, message, path) from exc
        detail = "; caused by ".join(f"{n}: {m.splitlines()[0] if m else ''}" for n, m in chain)
        raise HadoopStorageError(f"{path}: {detail or message}") from exc


class _JavaInputStream(io.RawIOBase):
    """A Hadoop FSDataInputStream as a Python raw stream: one py4j call per chunk."""

    def __init__(self, stream, path: str):
        super().__init__()
        self._stream = stream
        self._path = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with _translated(self._path):
            data = self._stream.readNBytes(min(len(buffer), CHUNK))
        size = len(data)
        buffer[:size] = data
        return size

    def readall(self) -> bytes:
        # RawIOBase.readall reads 8 KiB at a time: one py4j call each, ~0.2 MB/s measured.
        chunks = []
        while True:
            with _translated(self._path):
                data = self._stream.readNBytes(CHUNK)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def close(self) -> None:
        if not self.closed:
            try:
                with _translated(self._path):
                    self._stream.close()
            finally:
                super().close()


class HadoopStorage:
    """The storage interface on a Hadoop FileSystem (see orderlake/storage/base.py)."""

    def __init__(self, spark):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    # -- plumbing ---------------------------------------------------------------------------
    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str):
        """(FileSystem, Path): the cached FileSystem instance for the path's bucket."""
        hpath = self._path(path)
        with _translated(path):
            return hpath.getFileSystem(self._conf), hpath

    @staticmethod
    def _info(status) -> FileInfo:
        return FileInfo(
            path=status.getPath().toString(),
            size=int(status.getLen()),
            mtime_ns=int(status.getModificationTime()) * 1_000_000,
        )

    def _status(self, path: str):
        fs, hpath = self._fs(path)
        try:
            with _translated(path):
                return fs.getFileStatus(hpath)
        except FileNotFoundError:
            return None

    # -- the interface ----------------------------------------------------------------------
    def join(self, base: str, *parts: str) -> str:
        return join_path(base, *parts)

    def list_files(self, root: str, recursive: bool = True) -> list[FileInfo]:
        fs, hpath = self._fs(root)
        found: list[FileInfo] = []
        try:
            with _translated(root):
                files = fs.listFiles(hpath, recursive)
                while files.hasNext():
                    found.append(self._info(files.next()))
        except FileNotFoundError:
            return []
        found.sort(key=lambda info: info.path)
        return found

    def children(self, path: str) -> list[tuple[str, bool]]:
        """(full path, is a directory) of what lies directly under `path` ([] when missing):
        what iterdir/glob need, which list_files (files only) does not give."""
        fs, hpath = self._fs(path)
        try:
            with _translated(path):
                statuses = fs.listStatus(hpath)
        except FileNotFoundError:
            return []
        out = [(s.getPath().toString(), bool(s.isDirectory())) for s in statuses]
        return sorted(p for p in out if p[0].rstrip("/") != path.rstrip("/"))

    def stat(self, path: str) -> FileInfo | None:
        status = self._status(path)
        return self._info(status) if status is not None and status.isFile() else None

    def exists(self, path: str) -> bool:
        fs, hpath = self._fs(path)
        with _translated(path):
            return bool(fs.exists(hpath))

    def is_dir(self, path: str) -> bool:
        status = self._status(path)
        return bool(status is not None and status.isDirectory())

    def read_bytes(self, path: str, attempts: int = 5) -> bytes:
        # open() pins the object's generation; a replace before the read finishes makes the
        # read fail with "Item not found" although the path has a (newer) object: read again.
        for attempt in range(attempts):
            try:
                with self.open_read(path) as handle:
                    return handle.read()
            except FileNotFoundError:
                if attempt == attempts - 1 or not self.exists(path):
                    raise
        raise AssertionError("unreachable")

    def open_read(self, path: str) -> BinaryIO:
        fs, hpath = self._fs(path)
        with _translated(path):
            stream = fs.open(hpath)
        return io.BufferedReader(_JavaInputStream(stream, path), buffer_size=CHUNK)

    def _check_atomic_put(self, path: str) -> None:
        if scheme_of(path) not in ATOMIC_PUT_SCHEMES:
            raise NotImplementedError(
                f"{path}: whole-or-nothing writes are only verified for "
                f"{sorted(ATOMIC_PUT_SCHEMES)} (see orderlake/storage/hadoop.py)"
            )

    def _write(self, stream, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            stream.write(bytes(view[start : start + CHUNK]))

    def _write_and_close(self, stream, data: bytes) -> None:
        """Write everything, then close, which publishes the object. If the writing fails
        (or is interrupted) the stream is aborted where the filesystem can, and otherwise
        left unclosed: closing it would publish the part written so far."""
        try:
            self._write(stream, data)
        except BaseException:
            try:
                stream.abort()  # Hadoop's Abortable; the GCS connector's stream is not one
            except Exception:
                pass  # the upload is never finalized; its connection times out
            raise
        stream.close()

    def write_bytes(self, path: str, data: bytes) -> None:
        self._check_atomic_put(path)
        fs, hpath = self._fs(path)
        with _translated(path):
            self._write_and_close(fs.create(hpath, True), data)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        self._check_atomic_put(path)
        fs, hpath = self._fs(path)
        try:
            with _translated(path):
                stream = fs.create(hpath, False)
        except FileExistsError:
            return False  # the connector saw an object (or a directory) there already
        try:
            with _translated(path):
                # The upload is finalized at close, with ifGenerationMatch=0.
                self._write_and_close(stream, data)
        except (FileExistsError, HadoopStorageError) as exc:
            if isinstance(exc, FileExistsError) or (
                exc.__cause__ is not None and _is_precondition_failure(exc.__cause__)
            ):
                return False  # another writer's object landed between our check and our upload
            raise
        return True

    def rename(self, src: str, dst: str) -> bool:
        fs, source = self._fs(src)
        target = self._path(dst)
        with _translated(src):
            # Hadoop's rename moves src INTO dst when dst is a directory, and the connector
            # refuses an existing file only in a separate lookup: check first, same as local.
            if fs.exists(target):
                return False
            if fs.rename(source, target):
                return True
            # The connector refuses a dst whose parent folder does not exist (no object under
            # that prefix): create it and try once more.
            parent = target.getParent()
            if parent is not None and not fs.exists(parent) and fs.exists(source):
                fs.mkdirs(parent)
                return bool(fs.rename(source, target))
            return False

    def delete(self, path: str) -> bool:
        fs, hpath = self._fs(path)
        with _translated(path):
            return bool(fs.delete(hpath, True))

    def mkdirs(self, path: str) -> None:
        fs, hpath = self._fs(path)
        with _translated(path):
            if not fs.mkdirs(hpath):
                raise HadoopStorageError(f"{path}: mkdirs returned false")
