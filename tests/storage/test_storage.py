"""One test body per behaviour, run on both backends: a local folder and gs:// on the emulator."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from orderlake.storage import FileInfo
from tests.storage.conftest import Place
from tests.support.racing import race


def test_join_never_doubles_or_restarts(place: Place) -> None:
    s = place.storage
    assert s.join(place.root, "a", "b.csv") == place.root + "/a/b.csv"
    assert s.join(place.root + "/", "/a/", "b.csv") == place.root + "/a/b.csv"
    assert s.join(place.root, "", "c") == place.root + "/c"


def test_list_files_recursive_and_flat(place: Place) -> None:
    s = place.storage
    for name, body in {"a.csv": b"1", "sub/b.csv": b"22", "sub/deeper/c.csv": b"333"}.items():
        s.write_bytes(place.path(name), body)
    s.mkdirs(place.path("empty"))

    everything = s.list_files(place.root)
    assert [info.path for info in everything] == [
        place.path("a.csv"),
        place.path("sub/b.csv"),
        place.path("sub/deeper/c.csv"),
    ]
    assert [info.size for info in everything] == [1, 2, 3]
    assert all(isinstance(info, FileInfo) and info.mtime_ns > 0 for info in everything)
    assert [info.path for info in s.list_files(place.root, recursive=False)] == [
        place.path("a.csv")
    ]
    assert [info.path for info in s.list_files(place.path("sub"))] == [
        place.path("sub/b.csv"),
        place.path("sub/deeper/c.csv"),
    ]


def test_list_files_of_missing_root_or_empty_dir_is_empty(place: Place) -> None:
    s = place.storage
    assert s.list_files(place.path("nothing-here")) == []
    assert s.list_files(place.path("nothing-here"), recursive=False) == []
    s.mkdirs(place.path("empty", "inner"))
    assert s.list_files(place.path("empty")) == []


def test_list_files_of_a_file_is_that_file(place: Place) -> None:
    s = place.storage
    s.write_bytes(place.path("only.csv"), b"abc")
    assert [(i.path, i.size) for i in s.list_files(place.path("only.csv"))] == [
        (place.path("only.csv"), 3)
    ]


def test_stat_exists_is_dir(place: Place) -> None:
    s = place.storage
    before = time.time_ns()
    s.write_bytes(place.path("dir", "f.csv"), b"hello")
    info = s.stat(place.path("dir", "f.csv"))
    assert info is not None
    assert (info.path, info.size) == (place.path("dir", "f.csv"), 5)
    # Emulator and disk share this machine's clock; object stores give milliseconds.
    assert before - 1_000_000_000 <= info.mtime_ns <= time.time_ns() + 1_000_000_000

    assert s.stat(place.path("dir")) is None  # a directory is not a file
    assert s.stat(place.path("missing.csv")) is None
    assert s.exists(place.path("dir", "f.csv")) and s.exists(place.path("dir"))
    assert not s.exists(place.path("missing.csv"))
    assert s.is_dir(place.path("dir"))
    assert not s.is_dir(place.path("dir", "f.csv"))
    assert not s.is_dir(place.path("missing"))


def test_write_then_read_and_replace(place: Place) -> None:
    s = place.storage
    path = place.path("deep", "er", "file.bin")
    s.write_bytes(path, b"first version, longer")
    assert s.read_bytes(path) == b"first version, longer"
    s.write_bytes(path, b"second")
    assert s.read_bytes(path) == b"second"
    assert s.stat(path).size == 6
    s.write_bytes(path, b"")
    assert s.read_bytes(path) == b""
    # No temporary file is left next to it.
    assert [info.path for info in s.list_files(place.root)] == [path]


def test_open_read_streams_in_pieces(place: Place) -> None:
    s = place.storage
    data = hashlib.sha256(b"seed").digest() * (300 * 1024 // 32 + 1)  # ~300 KB, not uniform
    s.write_bytes(place.path("big.bin"), data)
    pieces = []
    with s.open_read(place.path("big.bin")) as handle:
        while piece := handle.read(64 * 1024):
            pieces.append(piece)
    assert len(pieces) > 1
    assert b"".join(pieces) == data


def test_reading_a_missing_file_raises_file_not_found(place: Place) -> None:
    with pytest.raises(FileNotFoundError):
        place.storage.read_bytes(place.path("missing.csv"))
    with pytest.raises(FileNotFoundError):
        place.storage.open_read(place.path("missing.csv"))


def test_readers_see_old_or_new_never_a_part(place: Place) -> None:
    s = place.storage
    path = place.path("swap.bin")
    versions = [b"a" * 200_000, b"b" * 300_000]
    s.write_bytes(path, versions[0])
    stop = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def read_loop() -> None:
        while not stop.is_set():
            try:
                seen.append(s.read_bytes(path))
            except BaseException as exc:
                errors.append(exc)
                return

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for i in range(20):
            s.write_bytes(path, versions[i % 2])
    finally:
        stop.set()
        reader.join(timeout=60)
    assert not errors, errors[0]
    assert len(seen) >= 2, "the reader hardly ran"
    assert all(body in versions for body in seen)


def test_a_stream_opened_before_a_replace(place: Place) -> None:
    """Local: the open file keeps the old bytes. GCS: open pins the object generation, which
    the replace deletes, so the first read raises FileNotFoundError (read_bytes retries)."""
    s = place.storage
    path = place.path("pinned.bin")
    s.write_bytes(path, b"old bytes")
    with s.open_read(path) as handle:
        s.write_bytes(path, b"new bytes")
        if place.name == "local":
            assert handle.read() == b"old bytes"
        else:
            with pytest.raises(FileNotFoundError, match="generation"):
                handle.read()
    assert s.read_bytes(path) == b"new bytes"


def test_create_exclusive_only_once(place: Place) -> None:
    s = place.storage
    path = place.path("locks", "claim")
    assert s.create_exclusive(path, b"first") is True
    assert s.create_exclusive(path, b"second") is False
    assert s.read_bytes(path) == b"first"
    s.mkdirs(place.path("a-dir"))
    assert s.create_exclusive(place.path("a-dir"), b"x") is False  # something is there


@pytest.mark.parametrize("writers", [4])
def test_create_exclusive_race_has_exactly_one_winner(place: Place, writers: int) -> None:
    s = place.storage
    rounds = 30 if place.name == "local" else 15
    for r in range(rounds):
        path = place.path("race", f"claim-{r}")
        claims = [f"writer {i}".encode() for i in range(writers)]
        results = race([lambda c=c, p=path: s.create_exclusive(p, c) for c in claims])
        assert results.count(True) == 1, f"round {r}: {results}"
        assert s.read_bytes(path) == f"writer {results.index(True)}".encode()


def test_rename_moves_a_file(place: Place) -> None:
    s = place.storage
    s.write_bytes(place.path("in", "a.csv"), b"payload")
    assert s.rename(place.path("in", "a.csv"), place.path("archive", "2026", "a.csv")) is True
    assert not s.exists(place.path("in", "a.csv"))
    assert s.read_bytes(place.path("archive", "2026", "a.csv")) == b"payload"


def test_rename_never_overwrites(place: Place) -> None:
    s = place.storage
    s.write_bytes(place.path("src.csv"), b"source")
    s.write_bytes(place.path("dst.csv"), b"destination")
    s.mkdirs(place.path("folder"))
    assert s.rename(place.path("src.csv"), place.path("dst.csv")) is False
    # Onto a directory: no "move into it" (Hadoop's rename would do that).
    assert s.rename(place.path("src.csv"), place.path("folder")) is False
    assert s.read_bytes(place.path("src.csv")) == b"source"
    assert s.read_bytes(place.path("dst.csv")) == b"destination"
    assert s.list_files(place.path("folder")) == []


def test_rename_of_a_missing_source_is_false(place: Place) -> None:
    s = place.storage
    assert s.rename(place.path("gone.csv"), place.path("where.csv")) is False
    assert not s.exists(place.path("where.csv"))


def test_rename_a_directory(place: Place) -> None:
    s = place.storage
    s.write_bytes(place.path("d1", "x.csv"), b"x")
    s.write_bytes(place.path("d1", "sub", "y.csv"), b"y")
    assert s.rename(place.path("d1"), place.path("d2")) is True
    assert not s.exists(place.path("d1"))
    assert [i.path for i in s.list_files(place.path("d2"))] == [
        place.path("d2", "sub", "y.csv"),
        place.path("d2", "x.csv"),
    ]


def test_delete_file_and_tree(place: Place) -> None:
    s = place.storage
    s.write_bytes(place.path("t", "a.csv"), b"a")
    s.write_bytes(place.path("t", "u", "b.csv"), b"b")
    assert s.delete(place.path("t", "a.csv")) is True
    assert s.delete(place.path("t", "a.csv")) is False
    assert s.is_dir(place.path("t"))  # the folder stays, as on a disk
    assert s.delete(place.path("t")) is True
    assert not s.exists(place.path("t"))
    assert s.list_files(place.root) == []
    assert s.delete(place.path("never")) is False
    s.write_bytes(place.path("keep", "last.csv"), b"z")
    assert s.delete(place.path("keep", "last.csv")) is True
    assert s.is_dir(place.path("keep"))  # deleting the last file keeps the folder


def test_mkdirs(place: Place) -> None:
    s = place.storage
    s.mkdirs(place.path("m", "n"))
    s.mkdirs(place.path("m", "n"))  # again: no error
    assert s.is_dir(place.path("m", "n"))
    s.write_bytes(place.path("file"), b"x")
    with pytest.raises(FileExistsError):
        s.mkdirs(place.path("file"))


def test_listing_and_stat_see_a_write_at_once(place: Place) -> None:
    s = place.storage
    for i in range(10):
        path = place.path("fresh", f"f{i}.csv")
        s.write_bytes(path, b"x" * i)
        assert s.stat(path).size == i
        assert len(s.list_files(place.path("fresh"))) == i + 1
        s.delete(path)
        assert s.stat(path) is None
        assert len(s.list_files(place.path("fresh"))) == i
        s.write_bytes(path, b"x" * i)
