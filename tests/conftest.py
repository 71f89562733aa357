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
    from orderlake.engine.runner import LocalPipeline

    def make(**kwargs: object) -> LocalPipeline:
        return LocalPipeline(tmp_path / "volume", tmp_path / "warehouse", spark=spark, **kwargs)

    return make
