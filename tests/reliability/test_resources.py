"""Resources: a ~1 GB client file, generated here (never committed), loaded in bounded memory.

The CLI runs in a child process with a 1 GiB Spark driver heap, smaller than the file, so the
file cannot be held in memory whole. The peak resident memory of the child's process group
(Python + JVM) is sampled from /proc and recorded.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from .harness import finish_cli, start_cli, volume_args

GIB = 1 << 30
RSS_BOUND = 4 * GIB  # 1 GiB heap + JVM overhead + Python: far below "file held in memory"


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in a process group."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            with open(f"/proc/{entry}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return total


class PeakSampler(threading.Thread):
    def __init__(self, pgid: int) -> None:
        super().__init__(daemon=True)
        self.pgid, self.peak, self.stop = pgid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, group_rss(self.pgid))
            time.sleep(0.5)


def big_file(path: Path, target_bytes: int) -> int:
    """Valid order rows, all new keys, until the file holds `target_bytes`; returns rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "tracking_num,order_id,customer_id,order_date,carrier,origin,destination,status,"
        "weight_kg,amount,currency,last_updated\n"
    )
    rows = 0
    block = 100_000
    with open(path, "w", encoding="utf-8") as out:
        out.write(header)
        written = len(header)
        while written < target_bytes:
            lines = []
            for i in range(rows, rows + block):
                lines.append(
                    f"BIG{i:012d},ORD{i:09d},C{i % 9_999_999:07d},2026-01-{1 + i % 28:02d},UPS,"
                    f'"Berlin, DE",Lyon,IN_TRANSIT,{i % 50}.{i % 1000:03d},{i % 9999}.{i % 100:02d}'
                    f",EUR,2026-02-01T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z\n"
                )
            chunk = "".join(lines)
            out.write(chunk)
            written += len(chunk)
            rows += block
    return rows


@pytest.mark.long
def test_one_gigabyte_file_in_bounded_memory(volume, spark, tmp_path, record):
    rows = big_file(volume.source / "big_client_drop.csv", GIB)
    size = (volume.source / "big_client_drop.csv").stat().st_size
    proc = start_cli(
        ["run", *volume_args(volume)], tmp_path / "logs", {"ORDERLAKE_DRIVER_MEMORY": "1g"}
    )
    sampler = PeakSampler(proc.pid)
    sampler.start()
    started = time.monotonic()
    done = finish_cli(proc, timeout=5400)
    sampler.stop.set()
    sampler.join()
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.describe()
    tables = volume.warehouse / "tables"
    assert spark.read.format("delta").load(str(tables / "orders_bronze")).count() == rows
    target = spark.read.format("delta").load(str(tables / "orders_target"))
    assert target.count() == rows  # every key new and valid
    assert target.where("tracking_num = 'BIG000000000007'").first().origin == "Berlin, DE"
    assert (volume.archive / "big_client_drop.csv").stat().st_size == size
    record("big_file", bytes=size, rows=rows, peak_rss=sampler.peak, seconds=round(seconds))
    assert 0 < sampler.peak < RSS_BOUND, f"peak RSS {sampler.peak / GIB:.2f} GiB"
