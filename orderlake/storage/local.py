"""LocalStorage: the storage interface on a local (POSIX) filesystem, in pure Python.

No Spark, no JVM: the CLI can use it for quick look-ups.

- write_bytes: a temporary file in the same folder (named ".<name>.<random>.tmp", so Spark and
  listings that skip dot-files ignore it), fsync, rename over the target, fsync the folder.
- create_exclusive: the same temporary file, then link(2) to the target, which fails with
  EEXIST when anything is there: atomic put-if-absent, and the file appears complete. Where
  hard links are not supported (some FUSE/SMB mounts) it falls back to O_CREAT|O_EXCL and a
  write, which is still exclusive but lets a reader see a file still being written.
- rename: renameat2(RENAME_NOREPLACE) (Linux 3.15+, glibc 2.28+; ext4, xfs, btrfs, tmpfs):
  atomic and never replaces dst. Without it: link + unlink for a file (never replaces; a crash
  between the two leaves the file under both names), check + rename for a directory (a racing
  creator of dst could lose its empty directory to ours in between).
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from orderlake.storage.base import FileInfo, join_path

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    _renameat2.argtypes += [ctypes.c_uint]
    _renameat2.restype = ctypes.c_int
except (AttributeError, OSError):  # not glibc 2.28+, or not Linux
    _renameat2 = None
# errno values that mean "this kernel / filesystem cannot do RENAME_NOREPLACE": fall back.
_NO_RENAMEAT2 = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}
# ... and "this filesystem has no hard links".
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def local_path(path: str) -> str:
    """An absolute plain path for a plain path or a `file:` URI ("file:/x", "file:///x")."""
    if path.startswith("file:"):
        parsed = urlparse(path)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{path}: a file: URI with a remote host is not a local path")
        path = unquote(parsed.path)
    return os.path.abspath(path)


def _info(path: str, st: os.stat_result) -> FileInfo:
    return FileInfo(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(folder: str, name: str, data: bytes) -> str:
    """A fully written, fsync-ed temporary file next to `name`; its path."""
    temp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        _unlink_quietly(temp)
        raise
    return temp


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class LocalStorage:
    """The storage interface on the local filesystem (see orderlake/storage/base.py)."""

    def join(self, base: str, *parts: str) -> str:
        return join_path(base, *parts)

    def list_files(self, root: str, recursive: bool = True) -> list[FileInfo]:
        top = local_path(root)
        try:
            st = os.stat(top)
        except (FileNotFoundError, NotADirectoryError):
            return []
        if not os.path.isdir(top):
            return [_info(top, st)] if os.path.isfile(top) else []
        found: list[FileInfo] = []
        folders = [top]
        while folders:
            folder = folders.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):  # removed while we walked
                continue
            for entry in entries:
                try:
                    if entry.is_file():
                        found.append(_info(entry.path, entry.stat()))
                    elif recursive and entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                except FileNotFoundError:
                    continue
        found.sort(key=lambda info: info.path)
        return found

    def stat(self, path: str) -> FileInfo | None:
        full = local_path(path)
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return _info(full, st) if os.path.isfile(full) else None

    def exists(self, path: str) -> bool:
        return os.path.exists(local_path(path))

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(local_path(path))

    def read_bytes(self, path: str) -> bytes:
        with open(local_path(path), "rb") as handle:
            return handle.read()

    def open_read(self, path: str) -> BinaryIO:
        return open(local_path(path), "rb")

    def write_bytes(self, path: str, data: bytes) -> None:
        full = local_path(path)
        folder, name = os.path.split(full)
        os.makedirs(folder, exist_ok=True)
        temp = _write_temp(folder, name, data)
        try:
            os.replace(temp, full)
        except BaseException:
            _unlink_quietly(temp)
            raise
        _fsync_dir(folder)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        full = local_path(path)
        folder, name = os.path.split(full)
        os.makedirs(folder, exist_ok=True)
        temp = _write_temp(folder, name, data)
        try:
            os.link(temp, full, follow_symlinks=False)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            return self._create_exclusive_without_links(full, data)
        finally:
            _unlink_quietly(temp)
        _fsync_dir(folder)
        return True

    @staticmethod
    def _create_exclusive_without_links(full: str, data: bytes) -> bool:
        try:
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return True

    def rename(self, src: str, dst: str) -> bool:
        source, target = local_path(src), local_path(dst)
        if not os.path.lexists(source):
            return False
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            _rename_noreplace(source, target)
        except (FileExistsError, FileNotFoundError):
            return False  # dst is there, or src went away meanwhile
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                return False
            raise
        return True

    def delete(self, path: str) -> bool:
        full = local_path(path)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        except FileNotFoundError:
            return False
        return True

    def mkdirs(self, path: str) -> None:
        os.makedirs(local_path(path), exist_ok=True)


def _rename_noreplace(source: str, target: str) -> None:
    """rename(2) that fails with FileExistsError instead of replacing `target`."""
    if _renameat2 is not None:
        result = _renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
        )
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in _NO_RENAMEAT2:
            raise OSError(code, os.strerror(code), source, None, target)
    if not os.path.isdir(source) or os.path.islink(source):
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
        else:
            os.unlink(source)
            return
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    os.rename(source, target)


LOCAL = LocalStorage()
