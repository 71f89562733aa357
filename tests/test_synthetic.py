"""The order-file generator: deterministic, honours its ratios, and its model is right.

The files are re-read here with an independent validator and SCD1 fold, so a generator whose
`expected` drifted from what it wrote fails.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderlake.contract import (
    COLUMN_NAMES,
    CURRENCY_PATTERN,
    KEY,
    SEQUENCE,
    STATUSES,
    TRACKING_NUM_PATTERN,
)
from orderlake.synthetic import (
    INVALID_KINDS,
    KeyRange,
    apply_scd1,
    generate_order_files,
    tracking_num,
)

DECIMAL_RE = re.compile(r"^\d+\.\d+$")


def read_rows(paths: list[Path]) -> list[list[str]]:
    rows = []
    for path in paths:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            assert next(reader) == list(COLUMN_NAMES)
            rows.extend(reader)
    return rows


def parse_ts(text: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_decimal(text: str, scale: int, precision: int) -> Decimal | None:
    if not DECIMAL_RE.match(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    digits = value.as_tuple()
    if -digits.exponent > scale or len(digits.digits) + digits.exponent > precision - scale:
        return None
    return value


def typed_or_none(values: list[str]) -> dict | None:
    """Independent reading of one CSV row: the typed row, or None when it breaks the contract."""
    row = dict(zip(COLUMN_NAMES, values, strict=True))
    if not re.match(TRACKING_NUM_PATTERN, row[KEY]) or not row["order_id"]:
        return None
    ts = parse_ts(row[SEQUENCE])
    weight = parse_decimal(row["weight_kg"], 3, 10)
    amount = parse_decimal(row["amount"], 2, 12)
    if ts is None or weight is None or amount is None:
        return None
    typed: dict = {k: (v or None) for k, v in row.items()}
    typed.update(
        order_date=date.fromisoformat(row["order_date"]),
        weight_kg=weight,
        amount=amount,
        last_updated=ts,
    )
    return typed


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("mixed")
    return generate_order_files(
        out,
        rows=20_000,
        files=7,
        update_ratio=0.3,
        out_of_order_ratio=0.1,
        invalid_ratio=0.05,
        duplicate_ratio=0.02,
        seed=7,
    )


def test_same_seed_same_bytes_and_model(tmp_path: Path) -> None:
    kwargs = dict(rows=3000, files=3, invalid_ratio=0.05, duplicate_ratio=0.02, seed=3)
    a = generate_order_files(tmp_path / "a", **kwargs)
    b = generate_order_files(tmp_path / "b", **kwargs)
    c = generate_order_files(tmp_path / "c", **{**kwargs, "seed": 4})
    assert [p.read_bytes() for p in a.paths] == [p.read_bytes() for p in b.paths]
    assert a.expected == b.expected and a.counts == b.counts
    assert [p.read_bytes() for p in a.paths] != [p.read_bytes() for p in c.paths]


def test_files_rows_and_names(mixed) -> None:
    assert [p.name for p in mixed.paths] == [f"orders_{i:05d}.csv" for i in range(7)]
    sizes = [len(read_rows([p])) for p in mixed.paths]
    assert sum(sizes) == mixed.rows == 20_000 and max(sizes) - min(sizes) <= 1
    mtimes = [p.stat().st_mtime_ns for p in mixed.paths]
    assert mtimes == sorted(mtimes) and len(set(mtimes)) == len(mtimes)


def test_model_matches_an_independent_reading_of_the_files(mixed) -> None:
    valid = [r for r in map(typed_or_none, read_rows(mixed.paths)) if r is not None]
    assert apply_scd1({}, valid) == mixed.expected


def test_ratios_are_honoured(mixed) -> None:
    rows = read_rows(mixed.paths)
    invalid = sum(typed_or_none(r) is None for r in rows)
    assert invalid == mixed.counts["invalid"] == 1000
    assert mixed.counts["duplicate"] == 400
    assert mixed.counts["update"] + mixed.counts["out_of_order"] == 6000
    assert mixed.counts["out_of_order"] == 600
    assert sum(mixed.counts.values()) == 20_000
    # Rows repeating a key = updates + out-of-order + duplicates (+ invalid rows on a known key).
    valid = [r for r in rows if typed_or_none(r) is not None]
    assert len(valid) - len({r[0] for r in valid}) == 6000 + 400
    assert len(mixed.expected) == mixed.counts["new"]


def test_out_of_order_rows_are_older_and_lose(mixed) -> None:
    newest: dict[str, datetime] = {}
    late = 0
    for row in filter(None, map(typed_or_none, read_rows(mixed.paths))):
        key, ts = row[KEY], row[SEQUENCE]
        if key in newest and ts < newest[key]:
            late += 1
        newest[key] = max(ts, newest.get(key, ts))
    # Late rows: the out-of-order updates plus duplicates of superseded rows.
    assert 600 <= late <= 600 + 400
    assert all(mixed.expected[k][SEQUENCE] == ts for k, ts in newest.items())


def test_values_follow_the_contract(mixed) -> None:
    fractions = zones = naive = 0
    for row in mixed.expected.values():
        assert re.match(TRACKING_NUM_PATTERN, row[KEY])
        assert row["status"] in STATUSES
        assert re.match(CURRENCY_PATTERN, row["currency"])
        assert row["order_date"] <= row[SEQUENCE].date() + timedelta(days=1)
    for values in read_rows(mixed.paths):
        ts = values[-1]
        fractions += "." in ts
        zones += ts.endswith("Z") or bool(re.search(r"[+-]\d\d:\d\d$", ts))
        naive += bool(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$", ts))
    assert fractions > 1000 and zones > 1000 and naive > 1000
    assert any("," in v[5] for v in read_rows(mixed.paths))  # quoted places


def test_every_invalid_kind_is_rejected_by_the_contract(tmp_path: Path) -> None:
    for kind in INVALID_KINDS:
        g = generate_order_files(
            tmp_path / kind, rows=200, files=1, invalid_ratio=0.5, seed=1, invalid_kinds=[kind]
        )
        rows = read_rows(g.paths)
        assert sum(typed_or_none(r) is None for r in rows) == 100, kind
        valid = [r for r in map(typed_or_none, rows) if r is not None]
        assert apply_scd1({}, valid) == g.expected


def test_unique_keys_update_existing_keys_once(tmp_path: Path) -> None:
    first = generate_order_files(
        tmp_path / "a", rows=5000, files=2, update_ratio=0, out_of_order_ratio=0, seed=1
    )
    assert len(first.new_keys) == 5000 and set(first.new_keys) == set(first.expected)
    second = generate_order_files(
        tmp_path / "b",
        rows=2000,
        files=2,
        update_ratio=0.3,
        seed=2,
        start=first.end,
        existing_keys=first.new_keys,
        unique_keys=True,
    )
    keys = [r[0] for r in read_rows(second.paths)]
    assert len(keys) == len(set(keys)) == 2000
    assert len(set(keys) & set(first.expected)) == 600
    merged = apply_scd1(first.expected, second.expected.values())
    assert len(merged) == 5000 + 1400
    assert all(merged[k] == second.expected[k] for k in keys)  # newer than every old row


def test_incremental_updates_win_over_earlier_run(tmp_path: Path) -> None:
    first = generate_order_files(tmp_path / "a", rows=1000, files=1, seed=1)
    second = generate_order_files(
        tmp_path / "b", rows=1000, files=2, seed=2, start=first.end, existing_keys=first.new_keys
    )
    valid2 = [r for r in map(typed_or_none, read_rows(second.paths)) if r is not None]
    assert apply_scd1(first.expected, valid2) == {**first.expected, **second.expected}


def test_unique_keys_rejects_duplicates(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_order_files(tmp_path, rows=10, files=1, duplicate_ratio=0.1, unique_keys=True)
    with pytest.raises(ValueError):
        generate_order_files(tmp_path, rows=10, files=1, update_ratio=0.8, invalid_ratio=0.5)


def test_key_range_is_lazy_unique_and_valid() -> None:
    keys = KeyRange("AB12", 100_000)
    assert len(keys) == 100_000 and keys[0] == tracking_num("AB12", 0)
    assert keys[-1] == tracking_num("AB12", 99_999)
    assert keys[2:4] == [tracking_num("AB12", 2), tracking_num("AB12", 3)]
    with pytest.raises(IndexError):
        keys[100_000]
    assert len(set(keys)) == 100_000
    assert all(re.match(TRACKING_NUM_PATTERN, k) for k in keys[:1000])


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_apply_scd1_latest_wins_ties_go_to_later_rows() -> None:
    state = {"K1": {KEY: "K1", SEQUENCE: T0, "v": "old"}}
    rows = [
        {KEY: "K1", SEQUENCE: T0 - timedelta(seconds=1), "v": "late"},  # older: loses
        {KEY: "K2", SEQUENCE: T0, "v": "a"},
        {KEY: "K2", SEQUENCE: T0, "v": "b"},  # tie: later ingestion wins
        {KEY: "K3", SEQUENCE: T0 + timedelta(hours=1), "v": "new"},
        {KEY: "K3", SEQUENCE: T0, "v": "stale"},
    ]
    result = apply_scd1(state, rows)
    assert {k: r["v"] for k, r in result.items()} == {"K1": "old", "K2": "b", "K3": "new"}
    assert state == {"K1": {KEY: "K1", SEQUENCE: T0, "v": "old"}}  # input untouched
    with pytest.raises(ValueError):
        apply_scd1({}, [{KEY: "K1", SEQUENCE: None}])


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 5)), max_size=30))
def test_apply_scd1_picks_last_of_the_maximal_rows(events: list[tuple[str, int]]) -> None:
    rows = [{KEY: k, SEQUENCE: s, "pos": i} for i, (k, s) in enumerate(events)]
    result = apply_scd1({}, rows)
    for key in {k for k, _ in events}:
        top = max(s for k, s in events if k == key)
        last = max(i for i, (k, s) in enumerate(events) if k == key and s == top)
        assert result[key]["pos"] == last
    assert set(result) == {k for k, _ in events}
