"""Client files on disk: listing the source folder, checking a file is usable, moving it."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

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


def list_source(root: Path) -> list[SourceFile]:
    """Every visible regular file or symlink under `root`, sorted by (mtime, path)."""
    found: list[SourceFile] = []
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


def stat_matches(path: Path, seen: SourceFile) -> bool:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    return st.st_size == seen.size and st.st_mtime_ns == seen.mtime_ns


def _normalise(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def _open_bytes(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        if not path.name.lower().endswith(".gz"):
            raise _Reject("gzip-compressed file without a .gz name (rename it to .csv.gz)")
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


class _Reject(Exception):
    pass


def _check_text(path: Path) -> bool:
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


def _read_header(path: Path) -> list[str] | None:
    with _open_bytes(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        first = text.readline(_HEADER_LIMIT)
        if not first.strip():
            return None
        if len(first) >= _HEADER_LIMIT and not first.endswith(("\n", "\r")):
            raise _Reject("first line is longer than 1 MiB: not a CSV header")
        try:
            return next(csv.reader([first]))
        except (csv.Error, StopIteration) as exc:
            raise _Reject(f"header line is not valid CSV ({exc})") from None


def name_problem(relpath: str) -> str | None:
    """Why Spark cannot read a file under this name, if it cannot (Hadoop paths refuse ':')."""
    if ":" in relpath:
        return "the file name contains ':', which Spark cannot read: rename the file"
    return None


def inspect_file(path: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> Inspection:
    """Decide whether a file can be loaded, before any of it is read by Spark."""
    try:
        if path.is_symlink():
            return Inspection("reject", reason="symbolic links are not loaded")
        has_content = _check_text(path)
        if not has_content:
            return Inspection("empty")
        raw_header = _read_header(path)
        if raw_header is None:
            return Inspection("reject", reason="no header row (the first line is empty)")
        header = tuple(_normalise(h) for h in raw_header)
        known = [h for h in header if h in columns]
        if not known:
            return Inspection(
                "reject",
                reason="no header row: the first line names none of the contract columns "
                f"({', '.join(columns[:3])}, ...)",
            )
        duplicated = sorted({h for h in header if h and header.count(h) > 1})
        if duplicated:
            return Inspection(
                "reject", reason=f"duplicated header columns: {', '.join(duplicated)}"
            )
        missing = [c for c in required if c not in header]
        if missing:
            return Inspection(
                "reject", reason=f"required columns missing from the header: {', '.join(missing)}"
            )
        return Inspection("load", header=header)
    except _Reject as exc:
        return Inspection("reject", reason=str(exc))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return Inspection("reject", reason=f"unreadable: {exc}")


def unique_destination(
    folder: Path, relpath: str, tag: str, taken: set[Path] | None = None
) -> Path:
    """`folder/relpath`, or with `tag` before the suffix when that name is taken.

    `taken` holds destinations already planned for other files of the same update: a file
    named like another's tagged name (`a.u2.csv`) must not be moved over it.
    """
    taken = taken if taken is not None else set()

    def free(path: Path) -> bool:
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


def move(src: Path, dest: Path) -> bool:
    """Atomic rename into place; False when the source is already gone (moved before)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dest)
    except FileNotFoundError:
        if src.exists() or src.is_symlink():
            raise
        return False
    return True
