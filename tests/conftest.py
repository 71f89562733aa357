"""Shared fixtures: one real local SparkSession (with Delta) for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HEADER = (
    "tracking_num,order_id,customer_id,order_date,carrier,origin,destination,status,"
    "weight_kg,amount,currency,last_updated"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="also run the long reliability tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long") or os.environ.get("ORDERLAKE_LONG_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="long test: run with --long or ORDERLAKE_LONG_TESTS=1")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def spark() -> Iterator:
    from orderlake.engine.session import get_spark

    session = get_spark("orderlake-tests")
    yield session
    session.stop()


def order_row(
    key: str,
    updated: str,
    *,
    order_id: str = "O-1",
    status: str = "CREATED",
    amount: str = "10.00",
    **overrides: str,
) -> str:
    """One CSV line in contract order; keyword overrides by column name."""
    values = {
        "tracking_num": key,
        "order_id": order_id,
        "customer_id": "C-1",
        "order_date": "2026-03-01",
        "carrier": "UPS",
        "origin": "NYC",
        "destination": "LAX",
        "status": status,
        "weight_kg": "1.250",
        "amount": amount,
        "currency": "USD",
        "last_updated": updated,
    }
    values.update(overrides)
    return ",".join(values[c] for c in HEADER.split(","))


@pytest.fixture
def drop_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a client file into the volume's source/ folder, with increasing mtimes."""
    counter = {"n": 0}

    def write(name: str, lines: list[str], header: str | None = HEADER) -> Path:
        path = tmp_path / "volume" / "source" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "\n".join(([header] if header is not None else []) + lines) + "\n"
        path.write_text(body, encoding="utf-8")
        counter["n"] += 1
        stamp = 1_700_000_000 + counter["n"]
        os.utime(path, (stamp, stamp))
        return path

    return write


@pytest.fixture
def make_pipeline(tmp_path: Path, spark) -> Callable[..., object]:
    from orderlake.engine.run.runner import LocalPipeline

    def make(**kwargs: object) -> LocalPipeline:
        return LocalPipeline(tmp_path / "volume", tmp_path / "warehouse", spark=spark, **kwargs)

    return make


@pytest.fixture(scope="session")
def built_warehouse(spark, tmp_path_factory) -> dict:
    """A warehouse two real updates wrote (for the read-only commands: show, quarantine,
    report): update 1 loads a file with two good rows, a negative amount and a row with a
    missing field, rejects a binary file and archives a header-only one; update 2 updates a
    key (a MERGE that leaves a deletion vector) and quarantines a row without order_id."""
    from orderlake.engine.run.runner import LocalPipeline

    root = tmp_path_factory.mktemp("built")
    volume, warehouse = root / "volume", root / "warehouse"
    source = volume / "source"
    source.mkdir(parents=True)

    def drop(name: str, body: bytes, stamp: int) -> None:
        (source / name).write_bytes(body)
        os.utime(source / name, (stamp, stamp))

    first = [
        order_row("TRK00000001", "2026-03-01T10:00:00Z"),
        order_row("TRK00000002", "2026-03-01T10:00:00Z"),
        order_row("TRK00000003", "2026-03-01T10:00:00Z", amount="-4.00"),
        "TRK00000004,O-4,C-1",
    ]
    drop("day1.csv", ("\n".join([HEADER, *first]) + "\n").encode(), 1_700_000_001)
    drop("broken.csv", b"\x00\x01\x02 not text", 1_700_000_002)
    drop("header_only.csv", (HEADER + "\n").encode(), 1_700_000_003)
    pipeline = LocalPipeline(volume, warehouse, spark=spark)
    pipeline.update()
    second = [
        order_row("TRK00000001", "2026-03-02T10:00:00Z", status="DELIVERED"),
        order_row("TRK00000005", "2026-03-02T10:00:00Z", order_id=""),
    ]
    drop("day2.csv", ("\n".join([HEADER, *second]) + "\n").encode(), 1_700_000_004)
    pipeline.update()
    return {"volume": volume, "warehouse": warehouse, "lines": {"day1.csv": first,
                                                               "day2.csv": second}}
