"""Shared parts of the reliability suite: a volume that remembers what was dropped into it,
the invariants every run must keep, and the CLI in a child process that tests can SIGKILL.

Invariants (`check_all`), after an update finished, whatever happened before it:
- files: every input file is in exactly one of source/, archive/ or rejected/ (by content),
  every rejected file has its `.error.txt` report;
- bronze: holds each row of each loaded file exactly once (multiset of the contract columns);
- target: equals the plain-Python SCD1 model;
- quarantine: holds each invalid row of the loaded files once;
- ledger: no update is left half-applied (every manifest done, the last update completed).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orderlake.contract import COLUMN_NAMES, KEY
from orderlake.synthetic import INVALID_KINDS, GeneratedFiles, generate_order_files

REPO = Path(__file__).resolve().parents[2]
HEADER = ",".join(COLUMN_NAMES)
REPORT_SUFFIX = ".error.txt"
Row = tuple[str | None, ...]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def csv_line(values: Mapping[str, str] | None = None, **overrides: str) -> str:
    """One valid order line in contract column order; overrides by column name."""
    row = {
        "tracking_num": "TRK00000001",
        "order_id": "O-1",
        "customer_id": "C-1",
        "order_date": "2026-03-01",
        "carrier": "UPS",
        "origin": "NYC",
        "destination": "LAX",
        "status": "CREATED",
        "weight_kg": "1.250",
        "amount": "10.00",
        "currency": "USD",
        "last_updated": "2026-03-01T10:00:00Z",
    }
    row.update(values or {})
    row.update(overrides)
    return ",".join(row[c] for c in COLUMN_NAMES)


@dataclass
class Volume:
    """A volume folder (source/, archive/, rejected/) and a warehouse, plus what went in."""

    root: Path
    warehouse: Path
    inputs: Counter = field(default_factory=Counter)  # content hash -> count
    invalid_rows: int = 0  # rows of generated files the rules must quarantine
    expected: dict[str, dict] = field(default_factory=dict)  # SCD1 model of the target
    _mtime: int = 1_700_000_000

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    def next_mtime(self) -> int:
        self._mtime += 10
        return self._mtime

    def drop(self, name: str, data: bytes | str, *, track: bool = True) -> Path:
        """Write a client file into source/ atomically, with a fresh, increasing mtime."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        path = self.source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.upload")
        tmp.write_bytes(raw)
        stamp = self.next_mtime()
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, path)
        if track:
            self.inputs[sha(raw)] += 1
        return path

    def drop_generated(self, **kwargs: Any) -> GeneratedFiles:
        """Generated order files (see `generate_order_files`); the model follows them."""
        staging = self.root / ".staging"
        kwargs.setdefault("start", datetime(2026, 1, 1, tzinfo=UTC))
        # The generator's "bad_key" kind includes a lower-case key, which the pipeline accepts
        # (keys are upper-cased): that row is not invalid, so the model would be wrong.
        kwargs.setdefault("invalid_kinds", [k for k in INVALID_KINDS if k != "bad_key"])
        generated = generate_order_files(staging, **kwargs)
        for path in generated.paths:
            self.drop(path.name, path.read_bytes())
            path.unlink()
        self.invalid_rows += generated.counts.get("invalid", 0)
        self.expected = merge_models(self.expected, generated.expected)
        return generated


def merge_models(old: Mapping[str, dict], new: Mapping[str, dict]) -> dict[str, dict]:
    """SCD1 of two models over (possibly) shared keys: the newer last_updated wins."""
    out = {k: dict(v) for k, v in old.items()}
    for key, row in new.items():
        if key not in out or row["last_updated"] >= out[key]["last_updated"]:
            out[key] = dict(row)
    return out


def make_volume(tmp: Path) -> Volume:
    volume = Volume(tmp / "volume", tmp / "warehouse")
    for folder in (volume.source, volume.archive, volume.rejected):
        folder.mkdir(parents=True, exist_ok=True)
    return volume


# --- files ------------------------------------------------------------------------------------


def folder_files(folder: Path) -> list[Path]:
    """Every file or symlink under `folder` (hidden ones too), reports excluded."""
    if not folder.is_dir():
        return []
    found = []
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            if name.endswith(REPORT_SUFFIX) or name.endswith(".upload"):
                continue
            found.append(Path(dirpath, name))
    return sorted(found)


def _content(path: Path) -> bytes:
    if path.is_symlink():
        return f"symlink -> {os.readlink(path)}".encode()
    return path.read_bytes()


def placement(volume: Volume) -> dict[str, Counter]:
    """Content hash -> count, per folder."""
    return {
        name: Counter(sha(_content(p)) for p in folder_files(folder))
        for name, folder in (
            ("source", volume.source),
            ("archive", volume.archive),
            ("rejected", volume.rejected),
        )
    }


def check_files(volume: Volume, *, source_empty: bool = True) -> None:
    where = placement(volume)
    total = where["source"] + where["archive"] + where["rejected"]
    missing = volume.inputs - total
    extra = total - volume.inputs
    assert not missing, f"{sum(missing.values())} input file(s) lost: in no folder"
    assert not extra, f"{sum(extra.values())} file(s) in the folders twice or not dropped"
    if source_empty:
        left = [p.name for p in folder_files(volume.source) if not p.name.startswith((".", "_"))]
        assert not left, f"files left in source/: {left}"
    for path in folder_files(volume.rejected):
        report = path.with_name(path.name + REPORT_SUFFIX)
        assert report.is_file(), f"rejected file without a report: {path.name}"


# --- rows ------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def csv_rows(data: bytes) -> list[Row]:
    """The contract columns of each data row, as the file says (empty -> None)."""
    text = data.decode("utf-8-sig")
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    if not records:
        return []
    index = {_norm(h): i for i, h in enumerate(records[0])}
    rows = []
    for record in records[1:]:
        values = []
        for column in COLUMN_NAMES:
            i = index.get(column)
            value = record[i] if i is not None and i < len(record) else ""
            values.append(value if value != "" else None)
        rows.append(tuple(values))
    return rows


def table(spark: Any, warehouse: Path, name: str) -> Any:
    return spark.read.format("delta").load(str(warehouse / "tables" / name))


def bronze_rows(spark: Any, warehouse: Path) -> Counter:
    frame = table(spark, warehouse, "orders_bronze").select(*COLUMN_NAMES)
    return Counter(tuple(r) for r in frame.collect())


def check_bronze(spark: Any, volume: Volume) -> None:
    """Bronze holds each row of each archived (loaded) file exactly once, and nothing else."""
    expected: Counter = Counter()
    for path in folder_files(volume.archive):
        expected.update(csv_rows(path.read_bytes()))
    got = bronze_rows(spark, volume.warehouse)
    missing, extra = expected - got, got - expected
    assert not missing, f"{sum(missing.values())} loaded row(s) not in bronze: {list(missing)[:2]}"
    assert not extra, f"{sum(extra.values())} bronze row(s) twice or unknown: {list(extra)[:2]}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def target_state(spark: Any, warehouse: Path) -> dict[str, dict]:
    """orders_target as plain Python: contract columns, last_updated as an aware UTC datetime."""
    from pyspark.sql import functions as F

    frame = table(spark, warehouse, "orders_target").select(
        *[c for c in COLUMN_NAMES if c != "last_updated"],
        F.unix_micros("last_updated").alias("last_updated"),
    )
    state = {}
    for row in frame.collect():
        values = row.asDict()
        micros = values["last_updated"]
        values["last_updated"] = _EPOCH + timedelta(microseconds=micros)
        assert values[KEY] not in state, f"key {values[KEY]} twice in the target"
        state[values[KEY]] = values
    return state


def check_target(spark: Any, warehouse: Path, expected: Mapping[str, dict]) -> None:
    got = target_state(spark, warehouse)
    assert set(got) == set(expected), (
        f"target keys differ: {len(set(got) - set(expected))} unexpected, "
        f"{len(set(expected) - set(got))} missing"
    )
    wrong = [k for k in expected if {c: got[k][c] for c in COLUMN_NAMES} != expected[k]]
    assert not wrong, f"{len(wrong)} target row(s) differ from the model, e.g. {wrong[0]}: " + (
        f"{got[wrong[0]]} != {expected[wrong[0]]}" if wrong else ""
    )


def check_ledger(warehouse: Path) -> None:
    """No update half-applied: every manifest done, and the last update completed."""
    updates = warehouse / "_orderlake" / "updates"
    for path in sorted(updates.glob("*.json")):
        state = json.loads(path.read_text())["state"]
        assert state == "done", f"{path.name} left in state {state}"
    events = []
    for line in (warehouse / "_orderlake" / "event_log.jsonl").read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by the kill
    last = [e for e in events if e["event_type"] == "update_progress"][-1]
    assert last["details"]["update_progress"]["state"] == "COMPLETED", last["message"]


def check_all(spark: Any, volume: Volume, *, quarantine: bool = True) -> None:
    check_files(volume)
    check_bronze(spark, volume)
    check_target(spark, volume.warehouse, volume.expected)
    if quarantine:
        rows = table(spark, volume.warehouse, "orders_quarantine").count()
        assert rows == volume.invalid_rows, f"quarantine has {rows}, want {volume.invalid_rows}"
    check_ledger(volume.warehouse)


# --- Delta log peeking (markers for kills inside a Spark write) -------------------------------


class TableWatch:
    """Sees data files that a writer has created in a Delta table but not committed yet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen_logs: set[str] = set()
        # Files there before the child started are not its write (an empty CREATE leaves an
        # uncommitted, empty part file behind, for one).
        try:
            self._committed = set(os.listdir(path))
        except FileNotFoundError:
            self._committed = set()

    def _refresh(self) -> None:
        log = self.path / "_delta_log"
        try:
            names = [n for n in os.listdir(log) if n.endswith(".json") and n[0] != "."]
        except FileNotFoundError:
            return
        for name in names:
            if name in self._seen_logs:
                continue
            try:
                text = (log / name).read_text()
            except FileNotFoundError:
                continue
            for line in text.splitlines():
                action = json.loads(line)
                if "add" in action:
                    self._committed.add(action["add"]["path"])
            self._seen_logs.add(name)

    def writing(self) -> bool:
        """True while a part file exists that no commit names yet (a write in progress)."""
        try:
            parts = [
                n for n in os.listdir(self.path) if n.startswith("part-") and n.endswith("parquet")
            ]
        except FileNotFoundError:
            return False
        if not parts:
            return False
        fresh = [p for p in parts if p not in self._committed]
        if not fresh:
            return False
        self._refresh()
        return any(p not in self._committed for p in fresh)


# --- the CLI in a child process --------------------------------------------------------------


@dataclass
class CliRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    killed: bool  # the test (or a kill point) SIGKILLed it
    seconds: float
    stop_seconds: float | None = None  # from the SIGINT / SIGTERM to the whole group gone

    def describe(self) -> str:
        tail = "\n".join((self.stdout + self.stderr).splitlines()[-15:])
        return f"orderlake {' '.join(self.args)} -> {self.returncode}\n{tail}"


# Fake credentials every child process gets in its environment; no output may show them.
FAKE_SECRETS = {
    "DATABRICKS_TOKEN": "dapi" + "0123456789abcdef" * 2,
    "AWS_SECRET_ACCESS_KEY": "orderlake-test-secret-9f8e7d6c5b4a",
    "DATABRICKS_CLIENT_SECRET": "orderlake-test-client-secret-1a2b3c",
}


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FAKE_SECRETS)
    env.pop("ORDERLAKE_KILL_AT", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("ORDERLAKE_DRIVER_MEMORY", "1g")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_cli(
    args: list[str], log_dir: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start `python -m orderlake.cli ARGS` as the leader of a new process group."""
    log_dir.mkdir(parents=True, exist_ok=True)
    n = len(list(log_dir.glob("*.out")))
    out = open(log_dir / f"{n:02d}.out", "w+")  # noqa: SIM115 - closed by finish_cli
    err = open(log_dir / f"{n:02d}.err", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "orderlake.cli", *args],
        cwd=REPO,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        start_new_session=True,
    )
    proc.orderlake_logs = (out, err)  # type: ignore[attr-defined]
    proc.orderlake_started = time.monotonic()  # type: ignore[attr-defined]
    proc.orderlake_args = args  # type: ignore[attr-defined]
    return proc


def output_of(proc: subprocess.Popen) -> str:
    out, err = proc.orderlake_logs  # type: ignore[attr-defined]
    return Path(out.name).read_text(errors="replace") + Path(err.name).read_text(errors="replace")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child and everything in its process group (its Spark JVM)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_group_gone(pgid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} still alive {timeout:g}s after the CLI stopped")


def signal_cli(proc: subprocess.Popen, signum: int, *, group: bool = True) -> None:
    """Send `signum` as a terminal (Ctrl-C: the whole foreground group) or a service manager
    (SIGTERM to the group, like systemd; to the process alone, like Kubernetes) would."""
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
    except ProcessLookupError:
        pass


def finish_cli(
    proc: subprocess.Popen,
    *,
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 900.0,
    poll: float = 0.005,
    kill_signal: int = signal.SIGKILL,
    to_group: bool = True,
) -> CliRun:
    """Wait for the child; signal it (SIGKILL its group by default) once `kill_when()` is true.

    With SIGINT or SIGTERM the child is then left to stop by itself, and its whole process
    group (its Spark JVM) must be gone within a minute of it, without any help."""
    killed = False
    signalled_at: float | None = None
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if kill_when is not None and signalled_at is None and kill_when():
            if kill_signal == signal.SIGKILL:
                kill_group(proc)
                killed = True
                proc.wait()
                break
            signal_cli(proc, kill_signal, group=to_group)
            signalled_at = time.monotonic()
        if time.monotonic() > deadline:
            kill_group(proc)
            proc.wait()
            raise AssertionError(f"timeout: {proc.orderlake_args}\n{output_of(proc)[-3000:]}")  # type: ignore[attr-defined]
        time.sleep(poll)
    killed = killed or proc.returncode == -signal.SIGKILL
    if signalled_at is not None:
        _wait_group_gone(proc.pid, timeout=60.0)  # the JVM must not outlive a clean stop
    kill_group(proc)  # a kill point kills the group already; make sure nothing outlives it
    _wait_group_gone(proc.pid)
    out, err = proc.orderlake_logs  # type: ignore[attr-defined]
    out.close()
    err.close()
    printed = output_of(proc)
    for name, secret in FAKE_SECRETS.items():
        assert secret not in printed, f"{name} printed by orderlake {proc.orderlake_args}"  # type: ignore[attr-defined]
    return CliRun(
        list(proc.orderlake_args),  # type: ignore[attr-defined]
        proc.returncode,
        Path(out.name).read_text(errors="replace"),
        Path(err.name).read_text(errors="replace"),
        killed,
        time.monotonic() - proc.orderlake_started,  # type: ignore[attr-defined]
        None if signalled_at is None else time.monotonic() - signalled_at,
    )


def run_cli(
    args: list[str],
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 900.0,
) -> CliRun:
    return finish_cli(start_cli(args, log_dir, env), kill_when=kill_when, timeout=timeout)


def volume_args(volume: Volume) -> list[str]:
    return ["--volume", str(volume.root), "--warehouse", str(volume.warehouse)]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def all_rows(volume: Volume) -> Iterable[Row]:
    for path in folder_files(volume.archive):
        yield from csv_rows(path.read_bytes())
