"""Expectations on a micro-batch, as on Databricks: warn counts, drop filters, fail stops."""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from orderlake.engine.dp.graph import Expectation
from orderlake.engine.run.observed import observed_values
from orderlake.errors import UpdateFailed
from orderlake.transforms import passes


class ExpectationFailed(UpdateFailed, RuntimeError):
    """A `fail` expectation saw a failing row: the update stops, nothing of the batch lands.

    As on Databricks, the rows stay in the source table and every later update retries them,
    so the way on is to change the rule (or the definitions), not to send the file again."""

    def __init__(self, dataset: str, rule: Expectation, failed: int, sample: str) -> None:
        super().__init__(
            f"expectation {rule.name!r} (fail) on {dataset} failed for {failed:,} row(s), "
            f"e.g. {sample or '(no sample)'}. The update failed and none of these rows reached "
            "its target; every update retries them until the rule changes: fix the rule "
            "(a drop rule quarantines such rows instead of stopping) and run again"
        )
        self.dataset, self.rule, self.failed, self.sample = dataset, rule, failed, sample


def _leaf_columns(schema: StructType, prefix: tuple[str, ...] = ()) -> list[tuple[str, Column]]:
    """(dotted name, column as text) of every non-struct field, structs flattened."""
    leaves = []
    for field in schema.fields:
        path = (*prefix, field.name)
        if isinstance(field.dataType, StructType):
            leaves.extend(_leaf_columns(field.dataType, path))
        else:
            column = F.col(".".join(f"`{p}`" for p in path)).cast("string")
            leaves.append((".".join(path), column))
    return leaves


def sample_as_text(rows: DataFrame) -> str:
    """The first row as `name=value` text, as Spark writes the values (no Python reprs).

    Hidden columns (`__*`) and NULLs are left out, and a nested value equal to the top-level
    column of the same name (the raw text of a value that parsed) adds nothing, so is left
    out too."""
    leaves = [(n, c) for n, c in _leaf_columns(rows.schema) if not n.startswith("__")]
    first = rows.select(*[c.alias(f"c{i}") for i, (_, c) in enumerate(leaves)]).first()
    if first is None:
        return ""
    values = {name: first[f"c{i}"] for i, (name, _) in enumerate(leaves)}
    shown = []
    for name, value in values.items():
        top = name.rsplit(".", 1)[-1]
        if value is None or ("." in name and values.get(top) == value):
            continue
        shown.append(f"{name}={value}")
    return ", ".join(shown)


@dataclass
class QualityReport:
    """Pass/fail counts, as `details.flow_progress.data_quality` in the event log."""

    dataset: str
    counts: dict[str, tuple[int, int]]  # rule -> (passed, failed)
    dropped: int = 0
    total: int = 0

    def merge(self, other: QualityReport) -> None:
        self.dropped += other.dropped
        self.total += other.total
        for name, (passed, failed) in other.counts.items():
            p0, f0 = self.counts.get(name, (0, 0))
            self.counts[name] = (p0 + passed, f0 + failed)

    def as_details(self) -> dict[str, Any]:
        return {
            "dropped_records": self.dropped,
            "expectations": [
                {"name": n, "dataset": self.dataset, "passed_records": p, "failed_records": f}
                for n, (p, f) in self.counts.items()
            ],
        }


def _passes(rule: Expectation) -> Column:
    return passes(rule.constraint)  # NULL counts as failed, as everywhere (`null_fails`)


_BUILT: weakref.WeakKeyDictionary[Any, dict[tuple, tuple]] = weakref.WeakKeyDictionary()


def _rule_columns(session: Any, rules: tuple[Expectation, ...]) -> tuple[Column, list[Column]]:
    """(the drop rules' filter, the counting aggregates), built once per session and rule set:
    each parse of a constraint is a round trip to the JVM."""
    cache = _BUILT.setdefault(session, {})
    if rules not in cache:
        drop_ok = reduce(
            lambda a, b: a & b, [_passes(r) for r in rules if r.action == "drop"], F.lit(True)
        )
        counts = [
            F.count(F.lit(1)).alias("total"),
            F.sum(F.when(drop_ok, 0).otherwise(1)).alias("dropped"),
            *[
                F.sum(F.when(_passes(r), 0).otherwise(1)).alias(f"f{i}")
                for i, r in enumerate(rules)
            ],
        ]
        cache[rules] = (drop_ok, counts)
    return cache[rules]


@dataclass
class Checked:
    """A batch with its expectations applied: the rows to write, and the rule counts."""

    kept: DataFrame  # the rows every drop rule passes
    _report: QualityReport | None = None
    _observation: Observation | None = None
    _rules: tuple[Expectation, ...] = ()
    _dataset: str = ""
    _batch: DataFrame | None = None

    def report(self) -> QualityReport:
        """The counts. With counting folded into the write, call it after the write; if the
        write never read the rows (Delta skipped it), they are counted now instead."""
        if self._report is not None:
            return self._report
        assert self._observation is not None and self._batch is not None
        values = _observed(self._observation)
        if values is None:
            _, counts = _rule_columns(self._batch.sparkSession, self._rules)
            values = self._batch.agg(*counts).first().asDict()
        self._report = _report(self._dataset, self._rules, values)
        return self._report


def _report(dataset: str, rules: tuple[Expectation, ...], row: Any) -> QualityReport:
    report = QualityReport(dataset, {})
    total = report.total = int(row["total"] or 0)
    for i, rule in enumerate(rules):
        failed = int(row[f"f{i}"] or 0)
        report.counts[rule.name] = (total - failed, failed)
    report.dropped = int(row["dropped"] or 0)
    return report


def _observed(observation: Observation, timeout: float = 10.0) -> dict[str, Any] | None:
    """The observed counts; Spark posts them right after the write's job ends."""
    return observed_values(observation, timeout)


def enforce(
    batch: DataFrame, rules: list[Expectation], dataset: str, *, count_in_write: bool = False
) -> Checked:
    """Apply expectations: raise on a failed `fail` rule, drop what `drop` rules fail, count.

    The counts come from one aggregation over the batch, run now (the caller should persist
    `batch`, which is read again for the kept rows), or, with `count_in_write` and no `fail`
    rule, from an observation that the write of the kept rows collects on its way: no Spark
    job of its own. A `fail` rule must be counted before anything is written.
    """
    if not rules:
        return Checked(batch, QualityReport(dataset, {}))
    key = tuple(rules)
    drop_ok, counts = _rule_columns(batch.sparkSession, key)
    if count_in_write and not any(r.action == "fail" for r in rules):
        observation = Observation(f"orderlake_rules_{next(_OBSERVATIONS)}")
        observed = batch.observe(observation, *counts)
        return Checked(observed.where(drop_ok), None, observation, key, dataset, batch)
    row = batch.agg(*counts).first()
    report = _report(dataset, key, row)
    for i, rule in enumerate(rules):
        failed = row[f"f{i}"] or 0
        if rule.action == "fail" and failed:
            sample = sample_as_text(batch.where(~_passes(rule)).limit(1))
            raise ExpectationFailed(dataset, rule, failed, sample)
    return Checked(batch.where(drop_ok) if report.dropped else batch, report)


_OBSERVATIONS = itertools.count(1)
