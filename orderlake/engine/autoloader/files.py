"""Client files on disk: listing the source folder, checking a file is usable, moving it."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

from orderlake.storage.path import AnyPath, RemotePath, is_remote

_CHUNK = 1 << 20
_HEADER_LIMIT = 1 << 20  # a header line longer than this is not a CSV header
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class SourceFile:
    """A file seen in the source folder at listing time."""

    relpath: str  # relative to the source folder, '/'-separated
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Inspection:
    """What a file is: `load` (with its header), `empty` (no rows) or `reject` (why)."""

    outcome: str
    header: tuple[str, ...] = ()
    reason: str = ""


def is_hidden(name: str) -> bool:
    """Names Spark and Auto Loader skip too: in-progress uploads, `_SUCCESS`, dot files."""
    return name.startswith((".", "_"))


def _list_remote(root: RemotePath) -> list[SourceFile]:
    """The same listing on a bucket: one recursive object listing, hidden names skipped."""
    found = []
    for info in root.storage.list_files(str(root), recursive=True):
        rel = RemotePath(info.path).relative_to(root).as_posix()
        if any(is_hidden(part) for part in rel.split("/")):
            continue
        found.append(SourceFile(rel, info.size, info.mtime_ns))
    found.sort(key=lambda f: (f.mtime_ns, f.relpath))
    return found


def list_source(root: AnyPath) -> list[SourceFile]:
    """Every visible regular file or symlink under `root`, sorted by (mtime, path)."""
    found: list[SourceFile] = []
    if is_remote(root):
        return _list_remote(root)
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in filenames:
            if is_hidden(name):
                continue
            full = Path(dirpath, name)
            try:
                st = full.lstat()
            except FileNotFoundError:
                continue  # moved away while listing
            rel = full.relative_to(root).as_posix()
            found.append(SourceFile(rel, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: (f.mtime_ns, f.relpath))
    return found


def stat_matches(path: AnyPath, seen: SourceFile) -> bool:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    return st.st_size == seen.size and st.st_mtime_ns == seen.mtime_ns


def _header_name(name: str) -> str:
    """A header cell as written, spaces and quotes around it dropped. The case is kept: Auto
    Loader keeps it too and aligns header names with the schema's by `readerCaseSensitive`."""
    return name.strip().strip('"').strip()


def _case_hint(header: tuple[str, ...], names: list[str] | tuple[str, ...]) -> str:
    """Why a name looks missing when the header has it in another case (case-sensitive only)."""
    lowered = {h.lower(): h for h in header}
    near = [f"{lowered[n.lower()]} for {n}" for n in names if n.lower() in lowered]
    if not near:
        return ""
    return (
        f" (the header has {', '.join(near)}: names match case-sensitively, as Auto Loader's"
        " default readerCaseSensitive=true does; set readerCaseSensitive=false to match them"
        " regardless of case)"
    )


def _open_bytes(path: AnyPath) -> io.BufferedIOBase:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        if not path.name.lower().endswith(".gz"):
            raise _Reject("gzip-compressed file without a .gz name (rename it to .csv.gz)")
        if is_remote(path):
            return gzip.GzipFile(fileobj=path.open("rb"), mode="rb")  # type: ignore[return-value]
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


class _Reject(Exception):
    pass


def _check_text(path: AnyPath) -> bool:
    """Whole-file check: valid UTF-8, no NUL bytes. Returns whether the file has any content."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    line = 1
    with _open_bytes(path) as stream:
        while chunk := stream.read(_CHUNK):
            if b"\x00" in chunk:
                at = offset + chunk.index(b"\x00")
                raise _Reject(f"not a text file (NUL byte at offset {at})")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                line += chunk[: exc.start].count(b"\n")
                raise _Reject(
                    f"not valid UTF-8 (byte 0x{chunk[exc.start]:02x} at offset {bad}, line {line});"
                    " save the file as UTF-8"
                ) from None
            line += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _Reject(f"not valid UTF-8 (truncated character at offset {offset})") from None
    return offset > 0


def _read_header(path: AnyPath) -> tuple[list[str] | None, bool]:
    """(the header's fields, or None when the first line is blank; whether a row follows)."""
    with _open_bytes(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        first = text.readline(_HEADER_LIMIT)
        if not first.strip():
            return None, False
        if len(first) >= _HEADER_LIMIT and not first.endswith(("\n", "\r")):
            raise _Reject("first line is longer than 1 MiB: not a CSV header")
        try:
            header = next(csv.reader([first]))
        except (csv.Error, StopIteration) as exc:
            raise _Reject(f"header line is not valid CSV ({exc})") from None
        return header, _has_row_after(text)


def _has_row_after(text: io.TextIOBase) -> bool:
    """Does anything but line breaks follow the header? Spark skips empty lines only (a line
    of spaces is a row, a malformed one), so a header and line breaks make an empty file."""
    while chunk := text.read(_CHUNK):
        if chunk.strip("\r\n"):
            return True
    return False


def name_problem(relpath: str) -> str | None:
    """Why Spark cannot read a file under this name, if it cannot (Hadoop paths refuse ':')."""
    if ":" in relpath:
        return "the file name contains ':', which Spark cannot read: rename the file"
    return None


def inspect_file(
    path: AnyPath,
    columns: tuple[str, ...],
    required: tuple[str, ...],
    case_sensitive: bool = True,
) -> Inspection:
    """Decide whether a file can be loaded, before any of it is read by Spark.

    Header names are kept as written and matched to the schema's `columns` exactly, or
    regardless of case when `case_sensitive` is false (Auto Loader's `readerCaseSensitive`)."""
    try:
        if path.is_symlink():
            return Inspection("reject", reason="symbolic links are not loaded")
        has_content = _check_text(path)
        if not has_content:
            return Inspection("empty")
        raw_header, has_rows = _read_header(path)
        if raw_header is None:
            return Inspection("reject", reason="no header row (the first line is empty)")
        header = tuple(_header_name(h) for h in raw_header)
        key = (lambda name: name) if case_sensitive else str.lower
        keys = [key(h) for h in header]
        if not set(keys) & {key(c) for c in columns}:
            hint = _case_hint(header, columns) if case_sensitive else ""
            return Inspection(
                "reject",
                reason="no header row: the first line names none of the contract columns "
                f"({', '.join(columns[:3])}, ...){hint}",
            )
        pairs = zip(header, keys, strict=True)
        duplicated = sorted({h for h, k in pairs if k and keys.count(k) > 1})
        if duplicated:
            return Inspection(
                "reject", reason=f"duplicated header columns: {', '.join(duplicated)}"
            )
        missing = [c for c in required if key(c) not in keys]
        if missing:
            hint = _case_hint(header, missing) if case_sensitive else ""
            return Inspection(
                "reject",
                reason=f"required columns missing from the header: {', '.join(missing)}{hint}",
            )
        # A header and no row: nothing to load, archived and counted as empty (not loaded).
        return Inspection("load" if has_rows else "empty", header=header)
    except _Reject as exc:
        return Inspection("reject", reason=str(exc))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return Inspection("reject", reason=f"unreadable: {exc}")


def unique_destination(
    folder: AnyPath, relpath: str, tag: str, taken: set | None = None
) -> AnyPath:
    """`folder/relpath`, or with `tag` before the suffix when that name is taken.

    `taken` holds destinations already planned for other files of the same update: a file
    named like another's tagged name (`a.u2.csv`) must not be moved over it.
    """
    taken = taken if taken is not None else set()

    def free(path: AnyPath) -> bool:
        return path not in taken and not path.exists() and not path.is_symlink()

    dest = folder / relpath
    if free(dest):
        return dest
    name = dest.name
    stem, dot, suffix = name.partition(".")
    for n in range(1, 10_000):
        candidate = dest.with_name(f"{stem}.{tag}{'-' + str(n) if n > 1 else ''}{dot}{suffix}")
        if free(candidate):
            return candidate
    raise FileExistsError(f"no free name for {dest}")


def move_remote(src: RemotePath, dest: RemotePath) -> bool:
    """A move on an object store: copy, then delete the source (GCS has no rename), run only
    under the warehouse lock. A crash between the two leaves both, identical; the retry then
    finds `dest` holding src's size and only deletes src (docs/gcs-notes.md)."""
    storage = src.storage
    source = storage.stat(str(src))
    if source is None:
        return False  # moved before
    target = storage.stat(str(dest))
    if target is not None:
        if target.size != source.size:
            raise FileExistsError(f"{dest} exists and is not a copy of {src}")
        storage.delete(str(src))  # the copy of an interrupted move is complete
        return True
    if not storage.rename(str(src), str(dest)):
        if storage.stat(str(src)) is None:
            return False
        raise FileExistsError(f"could not move {src} to {dest}")
    return True


def move(src: AnyPath, dest: AnyPath) -> bool:
    """Atomic rename into place; False when the source is already gone (moved before)."""
    if is_remote(src) or is_remote(dest):
        return move_remote(src, dest)  # type: ignore[arg-type]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dest)
    except FileNotFoundError:
        if src.exists() or src.is_symlink():
            raise
        return False
    return True
