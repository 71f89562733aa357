"""Inspecting a client file before Spark reads it: what is loaded, what is empty (no JVM)."""

from __future__ import annotations

import gzip

import pytest

from orderlake.engine.autoloader.files import inspect_file
from tests.conftest import HEADER, order_row

COLUMNS = tuple(HEADER.split(","))
REQUIRED = ("tracking_num", "order_id", "last_updated")
ROW = order_row("TRK00000001", "2026-03-01T10:00:00Z")


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (b"", "empty"),
        (f"{HEADER}\n".encode(), "empty"),  # a header and no row: empty, not loaded
        (f"\ufeff{HEADER}\r\n\r\n\n".encode(), "empty"),  # BOM, CRLF, empty lines only
        (HEADER.encode(), "empty"),  # no line break after the header
        (f"{HEADER}\n   \n".encode(), "load"),  # a line of spaces is a (malformed) row
        (f"{HEADER}\n\n{ROW}\n".encode(), "load"),
        (f"{HEADER}\n{ROW}".encode(), "load"),
        (b"order_id,last_updated\n", "reject"),  # a wrong header is rejected, rows or not
    ],
)
def test_a_header_without_rows_is_empty(tmp_path, body, outcome):
    path = tmp_path / "f.csv"
    path.write_bytes(body)
    seen = inspect_file(path, COLUMNS, REQUIRED)
    assert seen.outcome == outcome, seen
    if outcome != "reject" and body.strip():
        assert seen.header == COLUMNS


def test_a_gzipped_header_only_file_is_empty(tmp_path):
    path = tmp_path / "f.csv.gz"
    path.write_bytes(gzip.compress(f"{HEADER}\n".encode()))
    assert inspect_file(path, COLUMNS, REQUIRED).outcome == "empty"
    path.write_bytes(gzip.compress(f"{HEADER}\n{ROW}\n".encode()))
    assert inspect_file(path, COLUMNS, REQUIRED).outcome == "load"
