"""The engine end to end on gs:// (fake-gcs-server + the real connector), locally and on a
standalone cluster: the CLI in a process of its own, as a user runs it.

The test process itself runs no Spark: it drops client files and reads the results through the
emulator's HTTP API, then reads the Delta tables JVM-free (views/delta_snapshot) from a copy of
the warehouse prefix. The same data also runs on a local folder, and the tables must match.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from orderlake.views.delta_snapshot import read_rows, snapshot
from tests.conftest import HEADER, order_row
from tests.storage.conftest import _connector_jar, _java_ok
from tests.support import gcs_emulator as emu

TIMINGS: dict[str, float] = {}


def _csv(lines: list[str], header: str | None = HEADER) -> bytes:
    return ("\n".join(([header] if header else []) + lines) + "\n").encode()


DAY1 = _csv(
    [
        order_row("TRK00000001", "2026-03-01T10:00:00Z", status="CREATED"),
        order_row("trk00000002", "2026-03-01T10:00:00Z"),
        order_row("TRK00000001", "2026-03-01T12:00:00Z", status="IN_TRANSIT"),
        order_row("TRK00000003", "2026-03-01T10:00:00Z", amount="-5.00"),  # quarantined
        order_row("TRK00000004", "2026-03-01T10:00:00Z", status="LOST"),
    ]
)
HEADER_ONLY = _csv([])
NO_KEY = _csv(["O-9,2026-03-01T10:00:00Z"], header="order_id,last_updated")
DAY2 = _csv(
    [
        order_row("TRK00000001", "2026-03-01T11:00:00Z", status="CANCELLED"),  # older: loses
        order_row("TRK00000002", "2026-03-02T09:00:00+01:00", status="DELIVERED"),
        order_row("TRK00000005", "2026-03-02 09:00:00"),
    ]
)


class Bucket:
    """A prefix of the emulator's bucket, through its HTTP API (no Spark in this process)."""

    def __init__(self, server: emu.FakeGcsServer, bucket: str, prefix: str) -> None:
        self.server, self.bucket, self.prefix = server, bucket, prefix

    def uri(self, *parts: str) -> str:
        return "/".join([f"gs://{self.bucket}/{self.prefix}", *parts])

    def put(self, name: str, data: bytes) -> None:
        assert self.server.upload_if_absent(self.bucket, f"{self.prefix}/{name}", data)

    def names(self, folder: str = "") -> list[str]:
        """Object names under prefix/folder, relative to prefix (directory markers left out)."""
        base = f"{self.prefix}/{folder}".rstrip("/") + "/"
        found, token = [], ""
        while True:
            query = urllib.parse.urlencode({"prefix": base, "pageToken": token})
            status, body = self.server.request("GET", f"/storage/v1/b/{self.bucket}/o?{query}")
            assert status == 200, body[:300]
            page = json.loads(body)
            found += [i["name"] for i in page.get("items", []) if not i["name"].endswith("/")]
            token = page.get("nextPageToken", "")
            if not token:
                return sorted(n[len(self.prefix) + 1 :] for n in found)

    def files_in(self, folder: str) -> set[str]:
        return {n[len(folder) + 1 :] for n in self.names(folder)}

    def get(self, name: str) -> bytes:
        quoted = urllib.parse.quote(f"{self.prefix}/{name}", safe="")
        status, body = self.server.request(
            "GET", f"/storage/v1/b/{self.bucket}/o/{quoted}?alt=media"
        )
        assert status == 200, f"{name}: HTTP {status}"
        return body

    def mirror(self, folder: str, dest: Path) -> Path:
        """Copy prefix/folder into dest (to read its Delta tables without a JVM)."""
        for name in self.names(folder):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.get(name))
        return dest / folder


@pytest.fixture
def bucket(gcs_server: emu.FakeGcsServer, gcs_bucket: str) -> Bucket:
    _java_ok()
    _connector_jar()
    return Bucket(gcs_server, gcs_bucket, f"engine-{uuid.uuid4().hex[:8]}")


def _env(server: emu.FakeGcsServer | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ, ORDERLAKE_SPARK_CORES="2", **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")] if p
    )
    if server is not None:
        env["ORDERLAKE_GCS_ENDPOINT"] = server.endpoint
        env["SPARK_LOCAL_IP"] = emu.HOST
    return env


def _run(
    volume: str, warehouse: str, env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "orderlake.cli", "run", "--create"]
    command += ["--volume", volume, "--warehouse", warehouse, *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def _ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])


def _rows(warehouse: Path, table: str) -> list[dict]:
    snap = snapshot(warehouse / "tables" / table)
    assert snap is not None, f"no table {table}"
    return read_rows(snap)


def _target(warehouse: Path) -> dict[str, str]:
    return {r["tracking_num"]: r["status"] for r in _rows(warehouse, "orders_target")}


def _events(bucket: Bucket) -> list[dict]:
    names = bucket.names("warehouse/_orderlake/event_log")
    return [json.loads(bucket.get(n)) for n in names]


def _batches_on_gcs(
    bucket: Bucket,
    env: dict[str, str],
    tmp_path: Path,
    label: str,
    spark,
    cwd: Path | None = None,
) -> Path:
    """Two batches on gs://, checked on the way; returns a local copy of the warehouse. The
    target is read with Spark: day 2 updates keys whose file may hold other rows, which leaves
    a deletion vector (whether it does depends on how the engine split day 1 into files)."""
    volume, warehouse = bucket.uri("orders_data"), bucket.uri("warehouse")
    for name, data in (
        ("day1.csv", DAY1),
        ("header_only.csv", HEADER_ONLY),
        ("no_key.csv", NO_KEY),
    ):
        bucket.put(f"orders_data/source/{name}", data)
    started = time.monotonic()
    _ok(_run(volume, warehouse, env, cwd=cwd))
    assert bucket.files_in("orders_data/source") == set()
    assert bucket.files_in("orders_data/archive") == {"day1.csv", "header_only.csv"}
    assert bucket.files_in("orders_data/rejected") == {"no_key.csv", "no_key.csv.error.txt"}
    report = bucket.get("orders_data/rejected/no_key.csv.error.txt").decode()
    assert "required columns missing from the header: tracking_num" in report
    assert bucket.get("orders_data/archive/day1.csv") == DAY1  # moved whole

    bucket.put("orders_data/source/day2.csv", DAY2)
    _ok(_run(volume, warehouse, env, cwd=cwd))
    TIMINGS[label] = time.monotonic() - started
    assert bucket.files_in("orders_data/source") == set()
    assert "day2.csv" in bucket.files_in("orders_data/archive")
    assert "_orderlake/lock" not in bucket.files_in("warehouse")  # released
    states = [
        e["details"]["update_progress"]["state"]
        for e in _events(bucket)
        if e["event_type"] == "update_progress"
    ]
    assert states == ["RUNNING", "COMPLETED", "RUNNING", "COMPLETED"]
    copy = bucket.mirror("warehouse", tmp_path / label)
    target = _spark_rows(spark, copy, "orders_target")
    assert {r["tracking_num"]: r["status"] for r in target} == {
        "TRK00000001": "IN_TRANSIT",
        "TRK00000002": "DELIVERED",
        "TRK00000004": "LOST",
        "TRK00000005": "CREATED",
    }
    quarantined = _rows(copy, "orders_quarantine")
    assert [(q["tracking_num"], list(q["_failed_rules"])) for q in quarantined] == [
        ("TRK00000003", ["amount_not_negative"])
    ]
    assert len(_rows(copy, "orders_bronze")) == 8
    return copy


def _same_on_local_folder(tmp_path: Path) -> Path:
    volume, warehouse = tmp_path / "local" / "volume", tmp_path / "local" / "warehouse"
    (volume / "source").mkdir(parents=True)
    for n, (name, data) in enumerate(
        (("day1.csv", DAY1), ("header_only.csv", HEADER_ONLY), ("no_key.csv", NO_KEY))
    ):
        (volume / "source" / name).write_bytes(data)
        os.utime(volume / "source" / name, (1_700_000_000 + n, 1_700_000_000 + n))
    started = time.monotonic()
    _ok(_run(str(volume), str(warehouse), _env(None)))
    (volume / "source" / "day2.csv").write_bytes(DAY2)
    _ok(_run(str(volume), str(warehouse), _env(None)))
    TIMINGS["local folder"] = time.monotonic() - started
    return warehouse


def _tables(spark, warehouse: Path) -> dict[str, list]:
    """Every row of the two tables, read with Spark: an update of a key whose file holds other
    rows leaves a deletion vector, which the Python snapshot reader refuses."""

    def key(row: dict) -> str:
        return json.dumps({k: v for k, v in row.items() if not k.startswith("_")}, default=str)

    return {
        t: sorted(map(key, _spark_rows(spark, warehouse, t)))
        for t in ("orders_target", "orders_bronze")
    }


def _spark_rows(spark, warehouse: Path, table: str) -> list[dict]:
    """Every live row of a table, deletion vectors applied (the Python reader refuses them)."""
    frame = spark.read.format("delta").load(str(warehouse / "tables" / table))
    return [r.asDict(recursive=True) for r in frame.collect()]


def test_batches_on_gcs_match_the_local_folder(
    bucket: Bucket, tmp_path: Path, gcs_spark
) -> None:
    on_gcs = _batches_on_gcs(bucket, _env(bucket.server), tmp_path, "gs:// local[2]", gcs_spark)
    local = _same_on_local_folder(tmp_path)
    assert _tables(gcs_spark, on_gcs) == _tables(gcs_spark, local)
    print(f"\ntwo batches, CLI wall time: {TIMINGS}")


def test_a_run_killed_mid_archive_is_finished_by_the_next(bucket: Bucket, tmp_path: Path) -> None:
    """Killed after the first archive move, holding the lease lock: the restart waits for the
    lease to lapse, takes the lock over, archives the rest, loads nothing twice."""
    volume, warehouse = bucket.uri("orders_data"), bucket.uri("warehouse")
    bucket.put("orders_data/source/a.csv", _csv([order_row("TRK00000001", "2026-03-01T10:00:00Z")]))
    bucket.put("orders_data/source/b.csv", _csv([order_row("TRK00000002", "2026-03-01T10:00:00Z")]))
    lease = {"ORDERLAKE_LOCK_LEASE_SECONDS": "8"}
    crashed = _run(
        volume, warehouse, _env(bucket.server, ORDERLAKE_KILL_AT="archive_move:1", **lease)
    )
    assert crashed.returncode == -9, crashed.stderr[-3000:]
    assert len(bucket.files_in("orders_data/source")) == 1
    assert len(bucket.files_in("orders_data/archive")) == 1
    assert "_orderlake/lock" in bucket.files_in("warehouse")  # the dead holder's lease

    _ok(_run(volume, warehouse, _env(bucket.server, **lease), "--wait", "300"))
    assert bucket.files_in("orders_data/source") == set()
    assert bucket.files_in("orders_data/archive") == {"a.csv", "b.csv"}
    assert len(bucket.names("warehouse/_orderlake/lock-takeovers")) == 1
    copy = bucket.mirror("warehouse", tmp_path / "copy")
    bronze = sorted(r["tracking_num"] for r in _rows(copy, "orders_bronze"))
    assert bronze == ["TRK00000001", "TRK00000002"]
    assert set(_target(copy)) == {"TRK00000001", "TRK00000002"}


def test_two_loaders_on_one_bucket_load_each_file_once(bucket: Bucket, tmp_path: Path) -> None:
    """Two CLIs at once on one warehouse: the lock object lets one in at a time."""
    volume, warehouse = bucket.uri("orders_data"), bucket.uri("warehouse")
    bucket.put("orders_data/source/a.csv", _csv([order_row("TRK00000001", "2026-03-01T10:00:00Z")]))
    command = [sys.executable, "-m", "orderlake.cli", "run", "--create", "--wait", "600"]
    command += ["--volume", volume, "--warehouse", warehouse]
    loaders = [
        subprocess.Popen(
            command,
            env=_env(bucket.server),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in loaders]
    for loader, (_, err) in zip(loaders, outputs, strict=True):
        assert loader.returncode == 0, err[-3000:]
    assert bucket.files_in("orders_data/archive") == {"a.csv"}
    copy = bucket.mirror("warehouse", tmp_path / "copy")
    assert [r["tracking_num"] for r in _rows(copy, "orders_bronze")] == ["TRK00000001"]
    updates = [e for e in _events(bucket) if e["event_type"] == "update_progress"]
    assert [e["details"]["update_progress"]["state"] for e in updates] == [
        "RUNNING", "COMPLETED", "RUNNING", "COMPLETED"
    ]  # fmt: skip
    assert [e["origin"]["update_id"] for e in updates] == ["1", "1", "2", "2"]  # one after another
    assert "_orderlake/lock" not in bucket.files_in("warehouse")


def test_batches_on_gcs_on_a_standalone_cluster(
    bucket: Bucket, spark_cluster, tmp_path: Path, gcs_spark
) -> None:
    """The same two batches with the driver on spark://: executors read the CSVs and write
    the tables on gs://; nothing lives on the driver's disk but the code."""
    env = _env(bucket.server, ORDERLAKE_SPARK_MASTER=spark_cluster.url)
    driver_cwd = tmp_path / "driver-cwd"
    driver_cwd.mkdir()
    _batches_on_gcs(bucket, env, tmp_path, "gs:// cluster", gcs_spark, cwd=driver_cwd)
    assert sorted(p.name for p in driver_cwd.iterdir()) == []  # the driver wrote nothing here
    print(f"\ntwo batches, CLI wall time: {TIMINGS}")
