"""Deterministic, realistic order files for the demo, the tests and the benchmark.

Plain `csv` and integer arithmetic (no Spark, no per-row `Random` objects) so that millions of
rows take seconds. The generator also keeps a plain-Python SCD1 model of what the target must
hold afterwards (`GeneratedFiles.expected`), so tests can check the pipeline against it.

Rows of one key share static attributes (order, customer, carrier, ...) derived from a hash of
the key, so updates of keys from an earlier run stay consistent without keeping their rows.
Timestamps come from one clock that moves at least one second per row, so an update is always
strictly newer than the key's current row and only out-of-order updates are older.
"""

from __future__ import annotations

import csv
import os
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import overload

from orderlake.contract import COLUMN_NAMES, KEY, SEQUENCE

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

# Kinds of invalid row the generator can write. Each breaks the contract in a way every rule
# set must reject: a required column missing, the key pattern broken, or a typed value that
# cannot be parsed.
INVALID_KINDS: tuple[str, ...] = (
    "bad_key",
    "missing_key",
    "missing_order_id",
    "bad_amount",
    "bad_weight",
    "missing_last_updated",
    "bad_last_updated",
)

_KEY_PREFIXES = ("1Z", "JJD", "9400", "CP", "LX", "")
_KEY_MODULUS = 10**10
_KEY_MULTIPLIER = 7_777_777  # coprime with 10**10: i -> key is a bijection, keys look scattered
_INVALID_KEY_OFFSET = 5 * 10**9  # fresh keys of invalid rows never collide with valid ones
_CARRIERS = ("UPS", "FEDEX", "DHL", "USPS", "DPD", "GLS", "ROYALMAIL", "CANPAR")
_PLACES = (
    "Berlin, DE",
    "Hamburg",
    "Lyon",
    "Paris, FR",
    "New York, US",
    "Chicago",
    "Toronto, CA",
    "São Paulo, BR",
    "Mumbai",
    "Tokyo, JP",
    "London",
    "Madrid, ES",
)
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "BRL", "INR")
_NEW_STATUSES = ("CREATED", "CREATED", "CREATED", "PICKED_UP")
_UPDATE_STATUSES = (
    "PICKED_UP",
    "IN_TRANSIT",
    "IN_TRANSIT",
    "IN_TRANSIT",
    "OUT_FOR_DELIVERY",
    "DELIVERED",
    "DELIVERED",
    "EXCEPTION",
    "RETURNED",
    "CANCELLED",
)
_OFFSETS_MIN = (60, 330, -300, 540, -480)  # +01:00, +05:30, -05:00, +09:00, -08:00
_EPOCH = datetime(1970, 1, 1)

# Row kinds for the shuffled plan.
_NEW, _UPDATE, _LATE, _DUP, _INVALID = range(5)


def tracking_num(namespace: str, index: int) -> str:
    """The `index`-th tracking number of a namespace: unique, valid, scattered over key space."""
    scrambled = (index * _KEY_MULTIPLIER) % _KEY_MODULUS
    return f"{_KEY_PREFIXES[index % len(_KEY_PREFIXES)]}{namespace}{scrambled:010d}"


class KeyRange(Sequence[str]):
    """The first `count` tracking numbers of a namespace, computed on access (no list in memory).

    Pass one as `existing_keys` to update keys of an earlier run, even 10M of them.
    """

    def __init__(self, namespace: str, count: int) -> None:
        self.namespace = namespace
        self.count = count

    def __len__(self) -> int:
        return self.count

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(index)
        return tracking_num(self.namespace, index)


@dataclass(frozen=True)
class GeneratedFiles:
    """What `generate_order_files` wrote and what the target must hold afterwards.

    `expected` maps tracking_num to the final SCD1 row of every key the VALID rows touched,
    with typed values: str (None when empty), `date`, `Decimal`, and `last_updated` as an aware
    UTC `datetime`. It assumes keys from `existing_keys` are older than `start`. It is empty
    when the generator ran with `track_expected=False`.
    """

    paths: list[Path]
    rows: int
    expected: dict[str, dict]
    new_keys: KeyRange = field(default_factory=lambda: KeyRange("", 0))
    counts: dict[str, int] = field(default_factory=dict)  # rows per kind
    end: datetime = DEFAULT_START  # newest last_updated written (exclusive bound for next run)


def apply_scd1(state: Mapping[str, Mapping], rows: Iterable[Mapping]) -> dict[str, dict]:
    """SCD1 model: per key the row with the latest `last_updated` wins.

    Ties go to the row ingested later (rows are given in ingestion order: file order, then row
    order). Returns a new dict; `state` is not changed. Rows must be valid (key and sequence set).
    """
    result = {key: dict(row) for key, row in state.items()}
    for row in rows:
        key, seq = row[KEY], row[SEQUENCE]
        if key is None or seq is None:
            raise ValueError(f"row without {KEY} or {SEQUENCE}: {row!r}")
        current = result.get(key)
        if current is None or seq >= current[SEQUENCE]:
            result[key] = dict(row)
    return result


def namespace_for(name_prefix: str, seed: int, start: datetime) -> str:
    """Four base-36 characters that keep keys of different runs apart."""
    h = zlib.crc32(f"{name_prefix}|{seed}|{start.isoformat()}".encode())
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(chars[(h // 36**i) % 36] for i in range(4))


def _static(key: str) -> tuple[str, str, int, str, str, str, int, int, str]:
    """Per-key attributes from a hash, so every row of a key agrees without keeping state."""
    h = zlib.crc32(key.encode())
    g = zlib.crc32(key.encode(), 0x5EED)
    customer = "" if g % 33 == 0 else f"C{(g // 33) % 10_000_000:07d}"
    return (
        f"ORD{h % 1_000_000_000:09d}",
        customer,
        (h >> 5) % 45,  # order placed this many days before the run's start
        _CARRIERS[(h >> 9) % len(_CARRIERS)],
        _PLACES[(h >> 13) % len(_PLACES)],
        _PLACES[(g >> 3) % len(_PLACES)],
        100 + (g >> 7) % 60_000,  # grams
        199 + (h >> 17) % 250_000,  # cents
        _CURRENCIES[(g >> 19) % len(_CURRENCIES)],
    )


def _render_ts(rng: random.Random, ms: int) -> tuple[str, int]:
    """An ISO-8601 rendering of `ms` (epoch millis) and the instant it really denotes."""
    r = rng.random()
    if r < 0.45:  # whole seconds: the text is the truth, the milliseconds are dropped
        ms -= ms % 1000
        frac = ""
    elif r < 0.8:
        frac = f".{ms % 1000:03d}"
    else:
        frac = f".{ms % 1000:03d}000"
    z = rng.random()
    if z < 0.5:
        zone, offset = "Z", 0
    elif z < 0.8:
        zone, offset = "", 0  # no zone: read in the session time zone, UTC
    else:
        offset = _OFFSETS_MIN[int(z * 1000) % len(_OFFSETS_MIN)]
        sign = "+" if offset >= 0 else "-"
        zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    d = _EPOCH + timedelta(milliseconds=ms - ms % 1000 + offset * 60_000)
    text = (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f"{frac}{zone}"
    )
    return text, ms


def _typed(values: list[str], ts_ms: int) -> dict:
    """The typed row the target must hold for a valid CSV row."""
    row: dict = dict(zip(COLUMN_NAMES, (v if v != "" else None for v in values), strict=True))
    row["order_date"] = date.fromisoformat(values[3])
    row["weight_kg"] = Decimal(values[8])
    row["amount"] = Decimal(values[9])
    row[SEQUENCE] = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
    return row


def _corrupt(rng: random.Random, values: list[str], kind: str) -> None:
    """Break one field of a row so that the contract rejects it."""
    if kind == "bad_key":
        values[0] = rng.choice(
            (
                f"{values[0][:4]}_{values[0][4:]}",  # a character outside [A-Z0-9]
                values[0][:5],  # too short
                f"{values[0]}-X",
                "A" * 36,  # too long
                f"{values[0][:6]} 1",
            )
        )
    elif kind == "missing_key":
        values[0] = ""
    elif kind == "missing_order_id":
        values[1] = ""
    elif kind == "bad_amount":
        values[9] = rng.choice(("12,50", "abc", "1.2.3", "$19.99"))
    elif kind == "bad_weight":
        values[8] = rng.choice(("heavy", "1,5", "--"))
    elif kind == "missing_last_updated":
        values[11] = ""
    elif kind == "bad_last_updated":
        values[11] = rng.choice(("yesterday", "2026-13-45T25:61:00", "01/02/2026 10:00", "now"))
    else:
        raise ValueError(f"unknown invalid kind {kind!r}")


def _plan(rng: random.Random, rows: int, ratios: dict[int, float], late_share: float) -> bytearray:
    """Exact row-kind counts, shuffled into a deterministic order."""
    plan = bytearray()
    for kind, ratio in ratios.items():
        count = round(rows * ratio)
        if kind == _UPDATE:
            late = round(count * late_share)
            plan += bytes([_LATE]) * late
            count -= late
        plan += bytes([kind]) * count
    if len(plan) > rows:
        raise ValueError("update_ratio + invalid_ratio + duplicate_ratio must not exceed 1")
    plan += bytes([_NEW]) * (rows - len(plan))
    rng.shuffle(plan)
    return plan


def generate_order_files(
    out_dir: Path,
    *,
    rows: int,
    files: int,
    update_ratio: float = 0.3,
    out_of_order_ratio: float = 0.05,
    invalid_ratio: float = 0.0,
    duplicate_ratio: float = 0.0,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    existing_keys: Sequence[str] = (),
    name_prefix: str = "orders",
    unique_keys: bool = False,
    track_expected: bool = True,
    invalid_kinds: Sequence[str] = INVALID_KINDS,
) -> GeneratedFiles:
    """Write `rows` order rows spread evenly over `files` CSV files in `out_dir`.

    - update_ratio: share of rows that update a key from `existing_keys` or an earlier row;
    - out_of_order_ratio: share of those updates that carry an older `last_updated` than the
      key's current row (they must not win; only keys first seen in this run get them);
    - invalid_ratio: share of rows broken in one of `invalid_kinds` (never in `expected`);
    - duplicate_ratio: share of rows that exactly repeat a recent valid row;
    - unique_keys: every key at most once (updates only hit `existing_keys`): the input the
      naive MERGE baseline needs. No out-of-order rows or duplicates then.
    - track_expected=False skips the model (for multi-million-row benchmark data).
    Files are named `<name_prefix>_<nnnnn>.csv` and get increasing mtimes in that order.
    """
    if files < 1 or rows < 0:
        raise ValueError("need files >= 1 and rows >= 0")
    for name, ratio in (
        ("update_ratio", update_ratio),
        ("out_of_order_ratio", out_of_order_ratio),
        ("invalid_ratio", invalid_ratio),
        ("duplicate_ratio", duplicate_ratio),
    ):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {ratio}")
    if unique_keys and duplicate_ratio:
        raise ValueError("unique_keys excludes duplicates")
    if not invalid_kinds and invalid_ratio:
        raise ValueError("invalid_ratio needs at least one invalid kind")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)

    rng = random.Random(seed)
    ns = namespace_for(name_prefix, seed, start)
    late_share = 0.0 if unique_keys else out_of_order_ratio
    plan = _plan(
        rng,
        rows,
        {_UPDATE: update_ratio, _INVALID: invalid_ratio, _DUP: duplicate_ratio},
        late_share,
    )

    clock = int((start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
    start_day = start.date()
    n_existing = len(existing_keys)
    unused_existing = (
        rng.sample(range(n_existing), min(n_existing, plan.count(_UPDATE))) if unique_keys else []
    )
    seen: list[str] = []  # keys first written in this run (not with unique_keys)
    current_ms: dict[str, int] = {}  # their current last_updated
    recent: list[list[str]] = []  # recent valid rows, for duplicates
    state: dict[str, dict] = {}
    counts = dict.fromkeys(("new", "update", "out_of_order", "duplicate", "invalid"), 0)
    keep_seen = not unique_keys
    new_index = 0
    invalid_index = _INVALID_KEY_OFFSET
    newest = clock

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name_prefix}_{i:05d}.csv" for i in range(files)]
    base, extra = divmod(rows, files)
    prev_mtime_ns = 0
    row_no = 0
    for file_no, path in enumerate(paths):
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMN_NAMES)
            for _ in range(base + (1 if file_no < extra else 0)):
                kind = plan[row_no]
                row_no += 1
                clock += 1000 + rng.randrange(1000)
                if kind == _DUP and recent:
                    values = recent[rng.randrange(len(recent))]
                    writer.writerow(values)
                    counts["duplicate"] += 1
                    if track_expected:
                        state = _apply_one(state, values)
                    continue
                # Pick the key and the instant of this row.
                ts_ms, is_late = clock, False
                if kind == _INVALID:
                    key = _pick_any(rng, existing_keys, seen)
                    if key is None:
                        key = tracking_num(ns, invalid_index)
                        invalid_index += 1
                elif kind == _LATE and seen:
                    key = seen[rng.randrange(len(seen))]
                    ts_ms = current_ms[key] - 1000 * rng.randint(1, 72 * 3600)
                    is_late = True
                elif kind in (_UPDATE, _LATE) and unique_keys and unused_existing:
                    key = existing_keys[unused_existing.pop()]
                elif kind in (_UPDATE, _LATE) and not unique_keys and (n_existing or seen):
                    key = _pick_any(rng, existing_keys, seen)
                else:
                    key, kind = tracking_num(ns, new_index), _NEW
                    new_index += 1
                    if keep_seen:
                        seen.append(key)
                values = _row_values(rng, key, kind, start_day)
                values[11], ts_ms = _render_ts(rng, ts_ms)
                if kind == _INVALID:
                    _corrupt(rng, values, invalid_kinds[rng.randrange(len(invalid_kinds))])
                    writer.writerow(values)
                    counts["invalid"] += 1
                    continue
                writer.writerow(values)
                counts["out_of_order" if is_late else "new" if kind == _NEW else "update"] += 1
                newest = max(newest, ts_ms)
                if keep_seen and not is_late:
                    current_ms[key] = ts_ms
                if duplicate_ratio:
                    if len(recent) < 5000:
                        recent.append(values)
                    else:
                        recent[rng.randrange(5000)] = values
                if track_expected:
                    state = _apply_one(state, values, ts_ms)
        # Strictly increasing mtimes in file order, for engines that order by modification time.
        mtime_ns = max(path.stat().st_mtime_ns, prev_mtime_ns + 1_000_000)
        os.utime(path, ns=(mtime_ns, mtime_ns))
        prev_mtime_ns = mtime_ns

    end = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=newest + 1000)
    return GeneratedFiles(
        paths=paths,
        rows=rows,
        expected=state,
        new_keys=KeyRange(ns, new_index),
        counts=counts,
        end=end,
    )


def _pick_any(rng: random.Random, existing: Sequence[str], seen: list[str]) -> str | None:
    """A uniformly chosen key from the existing keys and the keys of this run."""
    total = len(existing) + len(seen)
    if not total:
        return None
    i = rng.randrange(total)
    return existing[i] if i < len(existing) else seen[i - len(existing)]


def _row_values(rng: random.Random, key: str, kind: int, start_day: date) -> list[str]:
    """CSV fields of a row for `key` (last_updated is filled in by the caller)."""
    order_id, customer, age, carrier, origin, dest, grams, cents, currency = _static(key)
    if kind == _NEW:
        status = _NEW_STATUSES[rng.randrange(len(_NEW_STATUSES))]
    else:
        status = _UPDATE_STATUSES[rng.randrange(len(_UPDATE_STATUSES))]
        if rng.random() < 0.1:  # re-weighed or re-priced on the way
            grams += rng.randrange(1, 500)
            cents += rng.randrange(1, 2000)
    return [
        key,
        order_id,
        customer,
        (start_day - timedelta(days=age)).isoformat(),
        carrier,
        origin,
        dest,
        status,
        f"{grams // 1000}.{grams % 1000:03d}",
        f"{cents // 100}.{cents % 100:02d}",
        currency,
        "",
    ]


def _apply_one(state: dict[str, dict], values: list[str], ts_ms: int | None = None) -> dict:
    """Apply one valid CSV row to the model in place (a duplicate re-reads its timestamp)."""
    if ts_ms is None:
        ts_ms = _parse_ms(values[11])
    row = _typed(values, ts_ms)
    current = state.get(row[KEY])
    if current is None or row[SEQUENCE] >= current[SEQUENCE]:
        state[row[KEY]] = row
    return state


def _parse_ms(text: str) -> int:
    """Epoch millis of a timestamp this module rendered (no zone means UTC)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
