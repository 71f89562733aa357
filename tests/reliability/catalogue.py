"""The bad-input catalogue: malformed client files and rows, each with its expected outcome.

All cases run together in two pipeline updates (a second one for re-uploads and late events),
so that one Spark run covers them; each case then has its own test and its own keys (every
tracking number of case NN starts with `KNN`), so outcomes cannot mix.

Outcomes: `loaded` (rows in bronze and, when valid, in the target, values in the right columns),
`quarantined` (the row in orders_quarantine with the failed rule named in its reason), `rejected`
(the whole file in rejected/ with a `.error.txt` report, nothing of it loaded) or `empty`
(archived, no rows). Never a crash, never silent loss.
"""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from orderlake.contract import COLUMN_NAMES

from .harness import HEADER, Volume, csv_line, folder_files, make_volume, sha, target_state


def key(case: int, n: int) -> str:
    return f"K{case:02d}{n:07d}"


def line(case: int, n: int, updated: str = "2026-03-01T10:00:00Z", **overrides: str) -> str:
    values = {"tracking_num": key(case, n), "order_id": f"O{case:02d}-{n}", "last_updated": updated}
    values.update(overrides)
    return csv_line(values)


def body(*lines: str, header: str = HEADER, end: str = "\n") -> str:
    return end.join([header, *lines]) + end


@dataclass
class Case:
    number: int
    name: str
    what: str  # the client mistake, for the doc
    outcome: str  # loaded | quarantined | rejected | empty
    first: dict[str, bytes]
    check: Callable[[CatalogueRun], None]
    second: dict[str, bytes] = field(default_factory=dict)  # dropped before the 2nd update
    detail: str = ""  # what the test asserts beyond the outcome, for the doc
    setup: Callable[[Volume], None] | None = None  # extra set-up (symlinks) before update 1


CASES: list[Case] = []


def case(number: int, name: str, what: str, outcome: str, detail: str = "") -> Callable:
    """Register a case; the decorated function returns (first files, second files, check)."""

    def register(build: Callable[[int], tuple]) -> Callable:
        first, second, check, *setup = build(number)
        enc = {k: v.encode("utf-8") if isinstance(v, str) else v for k, v in first.items()}
        enc2 = {k: v.encode("utf-8") if isinstance(v, str) else v for k, v in second.items()}
        CASES.append(
            Case(number, name, what, outcome, enc, check, enc2, detail, *(setup or [None]))
        )
        return build

    return register


@dataclass
class CatalogueRun:
    volume: Volume
    bronze: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    target: dict[str, dict[str, Any]]
    reports: dict[str, str]  # rejected file name -> report text
    archived: list[str]  # names in archive/
    rejected: list[str]  # names in rejected/ (reports excluded)
    source_left: list[str]
    updates: list[Any]
    errors: list[str] = field(default_factory=list)

    # -- queries ---------------------------------------------------------------------------
    def bronze_from(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.bronze if _file_name(r["_source_file"]) == name]

    def quarantined(self, case_no: int) -> list[dict[str, Any]]:
        prefix = f"K{case_no:02d}"
        return [
            q
            for q in self.quarantine
            if (q["tracking_num"] or "").upper().startswith(prefix)
            or f"/c{case_no:02d}_" in q["_source_file"]
        ]

    def target_of(self, case_no: int) -> dict[str, dict[str, Any]]:
        prefix = f"K{case_no:02d}"
        return {k: v for k, v in self.target.items() if k.startswith(prefix)}

    # -- outcome assertions -----------------------------------------------------------------
    def assert_rejected(self, name: str, reason: str) -> None:
        assert name in self.rejected, f"{name} not in rejected/ ({self.rejected})"
        assert reason in self.reports[name], f"report of {name}: {self.reports[name]!r}"
        assert "nothing of this file was loaded" in self.reports[name]
        assert not self.bronze_from(name), f"rows of rejected {name} reached bronze"
        assert name not in self.archived

    def assert_archived(self, name: str, rows: int) -> list[dict[str, Any]]:
        assert name in self.archived, f"{name} not archived (rejected: {self.reports.get(name)})"
        got = self.bronze_from(name)
        assert len(got) == rows, f"{name}: {len(got)} bronze rows, want {rows}"
        return got

    def assert_quarantined(self, case_no: int, rule: str, count: int = 1) -> list[dict]:
        rows = self.quarantined(case_no)
        assert len(rows) == count, f"case {case_no}: {len(rows)} quarantined, want {count}"
        for row in rows:
            assert rule in row["_failed_rules"], row["_failed_rules"]
            assert rule in row["_reason"] and "row " in row["_reason"], row["_reason"]
        return rows


def _file_name(uri: str) -> str:
    return unquote(uri.rsplit("/", 1)[-1])


def same_values(row: dict[str, Any], expected: dict[str, str]) -> None:
    """Bronze text equals the file's text, column by column (no value in a wrong column)."""
    for column, value in expected.items():
        assert row[column] == value, f"{column}: {row[column]!r} != {value!r}"


def values_of(csv_text: str) -> dict[str, str]:
    return dict(zip(COLUMN_NAMES, csv_text.split(","), strict=True))


# --- encodings --------------------------------------------------------------------------------


@case(1, "latin1", "file saved as Latin-1 (é, ñ as single bytes)", "rejected")
def _latin1(n: int):
    data = body(line(n, 1, origin="Málaga")).encode("latin-1")
    return (
        {f"c{n:02d}_latin1.csv": data},
        {},
        lambda r: r.assert_rejected(f"c{n:02d}_latin1.csv", "not valid UTF-8"),
    )


@case(2, "utf8_bom", "UTF-8 with a byte-order mark before the header", "loaded")
def _bom(n: int):
    name = f"c{n:02d}_bom.csv"

    def check(r: CatalogueRun) -> None:
        (row,) = r.assert_archived(name, 1)
        same_values(row, values_of(line(n, 1)))
        assert key(n, 1) in r.target

    return {name: b"\xef\xbb\xbf" + body(line(n, 1)).encode()}, {}, check


@case(3, "invalid_utf8", "invalid UTF-8 bytes in one row of an otherwise UTF-8 file", "rejected")
def _invalid_utf8(n: int):
    name = f"c{n:02d}_badbytes.csv"
    data = body(line(n, 1)).encode() + line(n, 2, origin="X").encode()[:-30] + b"\xff\xfe\n"
    return {name: data}, {}, lambda r: r.assert_rejected(name, "not valid UTF-8")


@case(4, "crlf", "Windows CRLF line endings, a text column last", "loaded",
      "no carriage return left in any value")  # fmt: skip
def _crlf(n: int):
    name = f"c{n:02d}_crlf.csv"
    header = ",".join([c for c in COLUMN_NAMES if c != "currency"] + ["currency"])
    rows = []
    for i in (1, 2):
        v = values_of(line(n, i))
        rows.append(",".join(v[c] for c in header.split(",")))

    def check(r: CatalogueRun) -> None:
        got = r.assert_archived(name, 2)
        for row in got:
            assert all("\r" not in (row[c] or "") for c in COLUMN_NAMES), row
        assert r.target[key(n, 1)]["currency"] == "USD"

    return {name: body(*rows, header=header, end="\r\n")}, {}, check


# --- broken files -----------------------------------------------------------------------------


@case(5, "truncated", "upload cut off in the middle of the last row", "quarantined",
      "the complete rows load; the cut row is quarantined, never loaded half")  # fmt: skip
def _truncated(n: int):
    name = f"c{n:02d}_truncated.csv"
    text = body(line(n, 1), line(n, 2))
    text += line(n, 3)[:40]  # ...cut inside the order_date / carrier fields

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 3)
        assert set(r.target_of(n)) == {key(n, 1), key(n, 2)}
        r.assert_quarantined(n, "well_formed_row")

    return {name: text}, {}, check


@case(6, "binary", "a binary file (PNG) with a .csv name", "rejected")
def _binary(n: int):
    name = f"c{n:02d}_image.csv"
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(n).randbytes(4000)
    return {name: data}, {}, lambda r: r.assert_rejected(name, "not a text file")


@case(7, "long_line", "a row of several megabytes (a 4 MB customer_id)", "loaded",
      "the 4 MB value arrives whole, in its column")  # fmt: skip
def _long_line(n: int):
    name = f"c{n:02d}_longline.csv"
    big = "C" * 4_000_000

    def check(r: CatalogueRun) -> None:
        rows = {row["tracking_num"]: row for row in r.assert_archived(name, 2)}
        assert rows[key(n, 1)]["customer_id"] == big
        assert rows[key(n, 2)]["customer_id"] == "C-1"
        assert len(r.target[key(n, 1)]["customer_id"]) == 4_000_000

    return {name: body(line(n, 1, customer_id=big), line(n, 2))}, {}, check


@case(8, "long_header", "a first line of 2 MB (not a CSV header)", "rejected")
def _long_header(n: int):
    name = f"c{n:02d}_longheader.csv"
    data = "x" * 2_000_000 + "\n" + line(n, 1) + "\n"
    return {name: data}, {}, lambda r: r.assert_rejected(name, "longer than 1 MiB")


@case(9, "thousands_of_columns", "3,000 columns: the contract's among 2,988 others", "loaded",
      "contract columns found by name, extras ignored")  # fmt: skip
def _wide(n: int):
    name = f"c{n:02d}_wide.csv"
    extras = [f"x{i:04d}" for i in range(2988)]
    header = ",".join(extras[:1000] + list(COLUMN_NAMES) + extras[1000:])
    rows = []
    for i in (1, 2):
        v = line(n, i)
        rows.append(",".join(["e"] * 1000 + v.split(",") + ["e"] * 1988))

    def check(r: CatalogueRun) -> None:
        got = sorted(r.assert_archived(name, 2), key=lambda x: x["tracking_num"])
        same_values(got[0], values_of(line(n, 1)))
        assert got[0]["_rescued_data"] is None
        assert len(r.target_of(n)) == 2

    return {name: body(*rows, header=header)}, {}, check


@case(10, "row_with_extra_fields", "one row with 3,000 fields under a 12-column header",
      "quarantined", "its neighbours load; no field shifts into another column")  # fmt: skip
def _row_too_wide(n: int):
    name = f"c{n:02d}_rowwide.csv"
    wide = line(n, 2) + "," + ",".join(["spill"] * 2988)

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 3)
        assert set(r.target_of(n)) == {key(n, 1), key(n, 3)}
        r.assert_quarantined(n, "well_formed_row")

    return {name: body(line(n, 1), wide, line(n, 3))}, {}, check


@case(11, "unbalanced_quote", "a field opens a quote it never closes", "quarantined",
      "the rows before it load; the rest of the file is one malformed record, quarantined "
      "with its raw text (nothing silently dropped)")  # fmt: skip
def _unbalanced(n: int):
    name = f"c{n:02d}_quote.csv"
    bad = line(n, 2, origin='"New York')

    def check(r: CatalogueRun) -> None:
        got = r.assert_archived(name, len(r.bronze_from(name)))
        assert key(n, 1) in r.target
        assert key(n, 2) not in r.target and key(n, 3) not in r.target
        quarantined = r.assert_quarantined(n, "well_formed_row", len(got) - 1)
        raw = " ".join(q["_rescued_data"] or "" for q in quarantined)
        assert key(n, 3) in raw  # the swallowed row is kept, as text, in quarantine

    return {name: body(line(n, 1), bad, line(n, 3))}, {}, check


@case(12, "quoted_separators_newlines", "quoted fields holding commas, newlines and quotes",
      "loaded", "values arrive exactly as quoted")  # fmt: skip
def _quoted(n: int):
    name = f"c{n:02d}_quoted.csv"
    v = values_of(line(n, 1))
    v["origin"] = '"Berlin, DE"'
    v["destination"] = '"Dock 4\nGate ""B"", floor 2"'
    v["customer_id"] = '"C,1"'

    def check(r: CatalogueRun) -> None:
        got = {row["tracking_num"]: row for row in r.assert_archived(name, 2)}
        row = got[key(n, 1)]
        assert row["origin"] == "Berlin, DE"
        assert row["destination"] == 'Dock 4\nGate "B", floor 2'
        assert row["customer_id"] == "C,1"
        assert row["last_updated"] == "2026-03-01T10:00:00Z"
        assert r.target[key(n, 2)]["status"] == "CREATED"

    return {name: body(",".join(v[c] for c in COLUMN_NAMES), line(n, 2))}, {}, check


# --- headers ----------------------------------------------------------------------------------


@case(13, "header_missing", "no header row: the file starts with data", "rejected")
def _no_header(n: int):
    name = f"c{n:02d}_noheader.csv"
    return (
        {name: "\n".join([line(n, 1), line(n, 2)]) + "\n"},
        {},
        lambda r: r.assert_rejected(name, "no header row"),
    )


@case(14, "header_duplicated", "a column named twice in the header", "rejected")
def _dup_header(n: int):
    name = f"c{n:02d}_dupheader.csv"
    data = body(line(n, 1) + ",X", header=HEADER + ",Amount")
    reason = "duplicated header columns: Amount, amount"
    return {name: data}, {}, lambda r: r.assert_rejected(name, reason)


@case(15, "header_reordered", "columns in another order", "loaded", "values mapped by name")
def _reordered(n: int):
    name = f"c{n:02d}_reordered.csv"
    order = list(reversed(COLUMN_NAMES))
    v = values_of(line(n, 1, amount="12.34", weight_kg="2.500"))

    def check(r: CatalogueRun) -> None:
        (row,) = r.assert_archived(name, 1)
        same_values(row, v)
        assert str(r.target[key(n, 1)]["amount"]) == "12.34"

    return {name: body(",".join(v[c] for c in order), header=",".join(order))}, {}, check


@case(16, "header_case", "header names in other letter case and quoted", "loaded")
def _case(n: int):
    name = f"c{n:02d}_case.csv"
    header = ",".join(f'"{c.upper()}"' if i % 2 else c.title() for i, c in enumerate(COLUMN_NAMES))

    def check(r: CatalogueRun) -> None:
        (row,) = r.assert_archived(name, 1)
        same_values(row, values_of(line(n, 1)))

    return {name: body(line(n, 1), header=header)}, {}, check


@case(17, "header_extra_columns", "extra columns the contract does not know", "loaded",
      "extras ignored, contract values intact")  # fmt: skip
def _extra_cols(n: int):
    name = f"c{n:02d}_extra.csv"
    header = "note," + HEADER + ",internal_ref"

    def check(r: CatalogueRun) -> None:
        (row,) = r.assert_archived(name, 1)
        same_values(row, values_of(line(n, 1)))

    return {name: body("hello," + line(n, 1) + ",REF-9", header=header)}, {}, check


@case(18, "header_missing_optional", "only the required columns", "loaded",
      "the other columns are NULL")  # fmt: skip
def _only_required(n: int):
    name = f"c{n:02d}_required.csv"
    data = body(
        f"{key(n, 1)},O-1,2026-03-01T10:00:00Z", header="tracking_num,order_id,last_updated"
    )

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 1)
        row = r.target[key(n, 1)]
        assert row["order_id"] == "O-1" and row["amount"] is None and row["carrier"] is None

    return {name: data}, {}, check


@case(19, "header_missing_required", "the last_updated column is missing", "rejected")
def _missing_required(n: int):
    name = f"c{n:02d}_nolastupdated.csv"
    data = body(f"{key(n, 1)},O-1", header="tracking_num,order_id")
    return (
        {name: data},
        {},
        lambda r: r.assert_rejected(name, "required columns missing from the header: last_updated"),
    )


# --- typed columns ----------------------------------------------------------------------------

_TYPE_ERRORS = {
    "order_date": ("2026-02-30", "order_date_parses"),
    "weight_kg": ("1.5kg", "weight_kg_parses"),
    "amount": ("12.345", "amount_parses"),  # no silent rounding to 2 decimals
    "last_updated": ("yesterday", "last_updated_parses"),
}


@case(20, "type_errors", "an unparsable value in every typed column (one row each), plus "
      "exponents, a $ sign, and a 9-digit date year", "quarantined",
      "each row quarantined naming the one rule it broke; the valid row loads")  # fmt: skip
def _types(n: int):
    name = f"c{n:02d}_types.csv"
    rows = [line(n, 1)]
    expected_rules = {}
    cases = list(_TYPE_ERRORS.items()) + [
        ("amount", ("1e3", "amount_parses")),
        ("amount", ("$19.99", "amount_parses")),
        ("weight_kg", ("12345678.0", "weight_kg_parses")),  # exceeds decimal(10,3)
        ("order_date", ("202600-01-01", "order_date_parses")),
        ("weight_kg", ("1,5", "well_formed_row")),  # unquoted comma: one field too many
    ]
    for i, (column, (value, rule)) in enumerate(cases, start=2):
        rows.append(line(n, i, **{column: value}))
        expected_rules[key(n, i)] = rule

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, len(rows))
        assert set(r.target_of(n)) == {key(n, 1)}
        got = {q["tracking_num"]: q for q in r.quarantined(n)}
        assert set(got) == set(expected_rules)
        for k, rule in expected_rules.items():
            failed = got[k]["_failed_rules"]
            assert failed == [rule] or (rule == "well_formed_row" and rule in failed), (k, failed)

    return {name: body(*rows)}, {}, check


@case(21, "bad_keys", "tracking numbers missing, too short, with symbols; an empty order_id",
      "quarantined")  # fmt: skip
def _keys(n: int):
    name = f"c{n:02d}_keys.csv"
    rows = [
        csv_line(tracking_num="", order_id=f"O{n}-1"),
        csv_line(tracking_num="K21", order_id=f"O{n}-2"),
        csv_line(tracking_num="K21-0000001", order_id=f"O{n}-3"),
        line(n, 4, order_id=""),
        line(n, 5),
    ]

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 5)
        assert set(r.target_of(n)) == {key(n, 5)}
        rows_q = [q for q in r.quarantine if name in q["_source_file"]]
        rules = sorted(rule for q in rows_q for rule in q["_failed_rules"])
        assert rules == ["order_id_present"] + ["valid_tracking_num"] * 3
        assert all(f"of {q['_source_file']}" in q["_reason"] for q in rows_q)

    return {name: body(*rows)}, {}, check


@case(22, "negative_amount", "a negative amount", "quarantined")
def _negative(n: int):
    name = f"c{n:02d}_negative.csv"

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 2)
        r.assert_quarantined(n, "amount_not_negative")
        assert set(r.target_of(n)) == {key(n, 2)}

    return {name: body(line(n, 1, amount="-5.00"), line(n, 2))}, {}, check


# --- keys and sequences -----------------------------------------------------------------------


@case(23, "duplicate_keys", "one key several times in a file, and an exact duplicate row",
      "loaded", "bronze keeps every row; the target the newest")  # fmt: skip
def _dup_keys(n: int):
    name = f"c{n:02d}_dupkeys.csv"
    rows = [
        line(n, 1, "2026-03-01T10:00:00Z", status="CREATED"),
        line(n, 1, "2026-03-01T12:00:00Z", status="DELIVERED"),
        line(n, 1, "2026-03-01T11:00:00Z", status="IN_TRANSIT"),
        line(n, 2),
        line(n, 2),
    ]

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 5)
        assert r.target[key(n, 1)]["status"] == "DELIVERED"
        assert len(r.target_of(n)) == 2

    return {name: body(*rows)}, {}, check


@case(24, "out_of_order", "an older event arrives in a later file and a later update",
      "loaded", "the newer state stays")  # fmt: skip
def _late(n: int):
    first, second = f"c{n:02d}_new.csv", f"c{n:02d}_late.csv"

    def check(r: CatalogueRun) -> None:
        r.assert_archived(second, 1)
        assert r.target[key(n, 1)]["status"] == "DELIVERED"

    return (
        {first: body(line(n, 1, "2026-03-02T10:00:00+02:00", status="DELIVERED"))},
        {second: body(line(n, 1, "2026-03-02T07:59:59Z", status="IN_TRANSIT"))},
        check,
    )


@case(25, "equal_sequence", "two events with the same last_updated (also written in another "
      "time zone)", "loaded", "the one ingested later wins: later update, later row")  # fmt: skip
def _ties(n: int):
    first, second = f"c{n:02d}_tie_a.csv", f"c{n:02d}_tie_b.csv"

    def check(r: CatalogueRun) -> None:
        assert r.target[key(n, 1)]["status"] == "OUT_FOR_DELIVERY"  # later update wins
        assert r.target[key(n, 2)]["status"] == "RETURNED"  # later row of one file wins

    return (
        {
            first: body(
                line(n, 1, "2026-03-01T10:00:00Z", status="IN_TRANSIT"),
                line(n, 2, "2026-03-01T10:00:00Z", status="EXCEPTION"),
                line(n, 2, "2026-03-01T11:00:00+01:00", status="RETURNED"),
            )
        },
        {second: body(line(n, 1, "2026-03-01 10:00:00", status="OUT_FOR_DELIVERY"))},
        check,
    )


@case(26, "far_timestamps", "far-future (9999-12-31) and far-past (0001-01-01, 1900) "
      "timestamps; a 5-digit year", "loaded",
      "kept exactly; the 5-digit year quarantined")  # fmt: skip
def _far(n: int):
    name = f"c{n:02d}_far.csv"
    rows = [
        line(n, 1, "9999-12-31T23:59:59Z"),
        line(n, 2, "0001-01-01T00:00:00Z"),
        line(n, 3, "1900-01-01T00:00:00Z", order_date="1900-01-01"),
        line(n, 4, "+10000-01-01T00:00:00Z"),
    ]

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 4)
        got = r.target_of(n)
        assert set(got) == {key(n, 1), key(n, 2), key(n, 3)}
        assert got[key(n, 1)]["last_updated"].year == 9999
        assert got[key(n, 2)]["last_updated"].year == 1
        assert str(got[key(n, 3)]["order_date"]) == "1900-01-01"
        r.assert_quarantined(n, "last_updated_parses")

    return {name: body(*rows)}, {}, check


# --- compression ------------------------------------------------------------------------------


@case(27, "gzip", "a gzip-compressed file named .csv.gz", "loaded")
def _gzip(n: int):
    name = f"c{n:02d}_orders.csv.gz"

    def check(r: CatalogueRun) -> None:
        got = r.assert_archived(name, 2)
        same_values(sorted(got, key=lambda x: x["tracking_num"])[0], values_of(line(n, 1)))

    return {name: gzip.compress(body(line(n, 1), line(n, 2)).encode())}, {}, check


@case(28, "gzip_misnamed", "gzip content under a .csv name", "rejected")
def _gzip_misnamed(n: int):
    name = f"c{n:02d}_zipped.csv"
    data = gzip.compress(body(line(n, 1)).encode())
    return {name: data}, {}, lambda r: r.assert_rejected(name, "gzip-compressed file")


@case(29, "gzip_truncated", "a .csv.gz cut off in the middle", "rejected")
def _gzip_cut(n: int):
    name = f"c{n:02d}_cut.csv.gz"
    rng = random.Random(n)
    rows = [line(n, i, customer_id=f"C{rng.randrange(10**9)}") for i in range(1, 400)]
    data = gzip.compress(body(*rows).encode())
    data = data[: len(data) // 2]
    return {name: data}, {}, lambda r: r.assert_rejected(name, "unreadable")


# --- names and re-uploads ---------------------------------------------------------------------


@case(30, "reupload_same_name", "a file re-uploaded later under the same name, new content",
      "loaded", "loaded again as new data; both versions kept in archive/")  # fmt: skip
def _reupload(n: int):
    name = f"c{n:02d}_daily.csv"

    def check(r: CatalogueRun) -> None:
        assert r.target[key(n, 1)]["status"] == "DELIVERED"
        copies = [a for a in r.archived if a.startswith(f"c{n:02d}_daily")]
        assert len(copies) == 2, copies
        assert len([b for b in r.bronze if b["tracking_num"] == key(n, 1)]) == 2

    return (
        {name: body(line(n, 1, "2026-03-01T10:00:00Z", status="CREATED"))},
        {name: body(line(n, 1, "2026-03-03T10:00:00Z", status="DELIVERED"))},
        check,
    )


@case(31, "renamed_copy", "the same content uploaded again under another name", "loaded",
      "loaded again (bronze keeps both copies), target unchanged")  # fmt: skip
def _renamed(n: int):
    data = body(line(n, 1), line(n, 2, status="PICKED_UP"))

    def check(r: CatalogueRun) -> None:
        assert len(r.bronze_from(f"c{n:02d}_a.csv")) == 2
        assert len(r.bronze_from(f"c{n:02d}_a_copy.csv")) == 2
        assert r.target[key(n, 2)]["status"] == "PICKED_UP" and len(r.target_of(n)) == 2

    return {f"c{n:02d}_a.csv": data}, {f"c{n:02d}_a_copy.csv": data}, check


@case(32, "archive_name_taken", "a re-upload whose tagged archive name is also a client file "
      "name in the same drop", "loaded",
      "both files kept in archive/, none overwritten")  # fmt: skip
def _collision(n: int):
    name = f"c{n:02d}_coll.csv"
    # The 2nd update of the catalogue is update 2: a re-upload is archived as <stem>.u2.csv.
    tagged = f"c{n:02d}_coll.u2.csv"

    def check(r: CatalogueRun) -> None:
        copies = sorted(a for a in r.archived if a.startswith(f"c{n:02d}_coll"))
        assert len(copies) == 3, copies
        assert {k for k in r.target_of(n)} == {key(n, 1), key(n, 2), key(n, 3)}

    return (
        {name: body(line(n, 1))},
        {name: body(line(n, 2)), tagged: body(line(n, 3))},
        check,
    )


@case(33, "zero_bytes", "an empty file (0 bytes)", "empty")
def _zero(n: int):
    name = f"c{n:02d}_zero.csv"

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 0)

    return {name: b""}, {}, check


@case(34, "header_only", "a header and no rows", "empty")
def _header_only(n: int):
    name = f"c{n:02d}_headeronly.csv"

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 0)

    return {name: HEADER + "\n"}, {}, check


# --- other text mistakes ----------------------------------------------------------------------


@case(35, "blank_lines_and_padding", "empty lines and a spaces-only line between rows, spaces "
      "around values", "loaded", "empty lines skipped; the spaces-only line quarantined as a "
      "malformed row; values trimmed in the target")  # fmt: skip
def _blank(n: int):
    name = f"c{n:02d}_blank.csv"
    padded = ",".join(f"  {v} " for v in line(n, 2).split(","))

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 3)
        (spaces,) = [q for q in r.quarantine if name in q["_source_file"]]
        assert "well_formed_row" in spaces["_failed_rules"] and spaces["_rescued_data"] == "   "
        row = r.target[key(n, 2)]
        assert row["carrier"] == "UPS" and str(row["amount"]) == "10.00"

    return {name: body(line(n, 1), "", "   ", padded, "")}, {}, check


@case(36, "semicolons", "semicolon-separated values", "rejected")
def _semicolons(n: int):
    name = f"c{n:02d}_semi.csv"
    data = body(line(n, 1).replace(",", ";"), header=HEADER.replace(",", ";"))
    return {name: data}, {}, lambda r: r.assert_rejected(name, "names none of the contract columns")


@case(37, "nul_bytes", "NUL bytes inside a text file", "rejected")
def _nul(n: int):
    name = f"c{n:02d}_nul.csv"
    data = body(line(n, 1)).encode() + b"K37\x00\x00\x00,\n"
    return {name: data}, {}, lambda r: r.assert_rejected(name, "NUL byte")


@case(38, "old_mac_line_endings", "lines separated by a lone CR (classic Mac)", "loaded",
      "rows split correctly; no value runs into the next row")  # fmt: skip
def _cr(n: int):
    name = f"c{n:02d}_cr.csv"

    def check(r: CatalogueRun) -> None:
        got = sorted(r.assert_archived(name, 2), key=lambda x: x["tracking_num"])
        same_values(got[0], values_of(line(n, 1)))
        same_values(got[1], values_of(line(n, 2)))

    return {name: body(line(n, 1), line(n, 2), end="\r")}, {}, check


@case(39, "unicode_values", "emoji, CJK and combining marks in text columns", "loaded")
def _unicode(n: int):
    name = f"c{n:02d}_unicode.csv"
    origin, dest = "東京都 📦", "Zürich café"

    def check(r: CatalogueRun) -> None:
        (row,) = r.assert_archived(name, 1)
        assert row["origin"] == origin and row["destination"] == dest

    return {name: body(line(n, 1, origin=origin, destination=dest))}, {}, check


@case(40, "row_missing_fields", "a row with fewer fields than the header", "quarantined",
      "no value moves into another column")  # fmt: skip
def _short_row(n: int):
    name = f"c{n:02d}_short.csv"
    short = ",".join(line(n, 2).split(",")[:-3])  # amount, currency, last_updated missing

    def check(r: CatalogueRun) -> None:
        r.assert_archived(name, 2)
        assert set(r.target_of(n)) == {key(n, 1)}
        assert r.quarantined(n), "the short row must be quarantined"

    return {name: body(line(n, 1), short)}, {}, check


@case(41, "empty_lines_only", "only line breaks, no header", "rejected")
def _only_newlines(n: int):
    name = f"c{n:02d}_newlines.csv"
    return {name: "\n\n\n"}, {}, lambda r: r.assert_rejected(name, "no header row")


# --- file names and links (security) ----------------------------------------------------------

NAMED = {
    "spaces": "c42 my orders.csv",
    "unicode": "c42_zamówienia_東京_📦.csv",
    "leading_space": " c42 lead.csv",
    "newline": "c42_new\nline.csv",
    "url_encoded_traversal": "c42_..%2F..%2Fescape.csv",
    "backslash_traversal": "c42_..\\..\\evil.csv",
}


@case(42, "names_spaces_unicode_tricks", "file names with spaces, unicode, emoji, a newline, "
      "encoded or backslash path traversal", "loaded",
      "each loaded from its own file, archived under its own name inside archive/")  # fmt: skip
def _names(n: int):
    files = {name: body(line(n, i)) for i, name in enumerate(NAMED.values(), start=1)}

    def check(r: CatalogueRun) -> None:
        for i, name in enumerate(NAMED.values(), start=1):
            (row,) = r.assert_archived(name, 1)
            assert row["tracking_num"] == key(n, i), name
            assert (r.volume.archive / name).is_file()

    return files, {}, check


GLOBS = ["c43_orders[1].csv", "c43_star*.csv", "c43_{a,b}.csv", "c43_q?.csv", "c43_pct%20x.csv",
         "c43_pct x.csv", "c43_hash#1.csv", "c43_back\\slash.csv"]  # fmt: skip


@case(43, "names_glob_and_escapes", "names with glob or URI characters: [1], *, {a,b}, ?, %20, "
      "#, backslash", "loaded", "each file read alone: a name like star*.csv never pulls in "
      "another file's rows")  # fmt: skip
def _globs(n: int):
    files = {name: body(line(n, i)) for i, name in enumerate(GLOBS, start=1)}
    # A file the globs would match: read only once, as itself.
    files["c43_star_orders1.csv"] = body(line(n, 99))

    def check(r: CatalogueRun) -> None:
        for i, name in enumerate(GLOBS, start=1):
            (row,) = r.assert_archived(name, 1)
            assert row["tracking_num"] == key(n, i), name
        (row,) = r.assert_archived("c43_star_orders1.csv", 1)

    return files, {}, check


@case(44, "name_with_colon", "a file name with ':' (Hadoop paths cannot hold one)", "rejected",
      "rejected with a report instead of failing every update")  # fmt: skip
def _colon(n: int):
    name = f"c{n:02d}_10:30.csv"
    return {name: body(line(n, 1))}, {}, lambda r: r.assert_rejected(name, "contains ':'")


@case(45, "hidden_names", "names starting with '.' or '_' (in-progress uploads by convention)",
      "left in source/", "not read, not moved, picked up once renamed")  # fmt: skip
def _hidden(n: int):
    files = {f".c{n:02d}_upload.csv": body(line(n, 1)), f"_c{n:02d}_tmp.csv": body(line(n, 2))}

    def check(r: CatalogueRun) -> None:
        for name in files:
            assert name in r.source_left and not r.bronze_from(name)
        assert not r.target_of(n)

    return files, {}, check


def _links(volume: Volume) -> None:
    outside = volume.root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.csv").write_text(body(line(46, 1)))
    (outside / "nested").mkdir(exist_ok=True)
    (outside / "nested" / "more.csv").write_text(body(line(46, 2)))
    (volume.source / "c46_link.csv").symlink_to(outside / "secret.csv")
    (volume.source / "c46_linked_dir").symlink_to(outside / "nested", target_is_directory=True)
    volume.inputs[sha(f"symlink -> {outside / 'secret.csv'}".encode())] += 1


@case(46, "symlinks_out_of_volume", "a symlink to a file outside the volume, and a symlinked "
      "folder", "rejected", "the link itself is moved to rejected/ with a report; nothing "
      "outside the volume is read, moved or written")  # fmt: skip
def _symlinks(n: int):
    def check(r: CatalogueRun) -> None:
        r.assert_rejected(f"c{n:02d}_link.csv", "symbolic links are not loaded")
        assert (r.volume.rejected / f"c{n:02d}_link.csv").is_symlink()
        outside = r.volume.root.parent / "outside"
        assert sorted(p.name for p in outside.rglob("*")) == ["more.csv", "nested", "secret.csv"]
        assert (outside / "secret.csv").read_text() == body(line(n, 1))
        assert not r.target_of(n)

    return {}, {}, check, _links


@case(47, "subfolders", "files in sub-folders of source/", "loaded",
      "archived under the same sub-folder of archive/")  # fmt: skip
def _subfolders(n: int):
    name = f"2026/03/c{n:02d}_nested.csv"

    def check(r: CatalogueRun) -> None:
        assert (r.volume.archive / name).is_file()
        assert key(n, 1) in r.target

    return {name: body(line(n, 1))}, {}, check


def run_catalogue(spark: Any, tmp: Path) -> CatalogueRun:
    """Both updates of the catalogue on one volume; one more update with nothing to do."""
    from orderlake.engine.run.runner import LocalPipeline

    volume = make_volume(tmp)
    for c in CASES:
        for name, data in c.first.items():
            volume.drop(name, data)
        if c.setup is not None:
            c.setup(volume)
    pipeline = LocalPipeline(volume.root, volume.warehouse, spark=spark)
    updates = [pipeline.update()]
    for c in CASES:
        for name, data in c.second.items():
            volume.drop(name, data)
    updates.append(pipeline.update())
    updates.append(pipeline.update())  # idle: must change nothing

    def rows(name: str) -> list[dict[str, Any]]:
        frame = spark.read.format("delta").load(str(volume.warehouse / "tables" / name))
        return [r.asDict() for r in frame.collect()]

    rejected_folder = volume.rejected
    reports = {
        p.name[: -len(".error.txt")]: p.read_text() for p in rejected_folder.glob("*.error.txt")
    }
    archived = folder_files(volume.archive)
    return CatalogueRun(
        volume=volume,
        bronze=rows("orders_bronze"),
        quarantine=rows("orders_quarantine"),
        target=target_state(spark, volume.warehouse),
        reports=reports,
        archived=[p.relative_to(volume.archive).as_posix() for p in archived],
        rejected=[p.name for p in folder_files(volume.rejected)],
        source_left=[p.name for p in folder_files(volume.source)],
        updates=updates,
    )


def catalogue_table() -> str:
    """The catalogue as a Markdown table (docs/reliability.md)."""
    out = io.StringIO()
    out.write("| # | case | client mistake | outcome | checked |\n|---|---|---|---|---|\n")
    for c in CASES:
        out.write(f"| {c.number} | `{c.name}` | {c.what} | {c.outcome} | {c.detail} |\n")
    return out.getvalue()
