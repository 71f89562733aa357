"""Data-quality rules kept in YAML: loading, validation, and the dicts `dp.expect_all*` take."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orderlake.errors import ConfigurationError

ACTIONS = ("warn", "drop", "fail")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RULE_KEYS = {"name", "constraint", "action", "description"}


class RuleError(ConfigurationError, ValueError):
    """A rule file problem; the message names the file, the rule and the problem."""

    def __init__(self, path: str | Path, rule: str | None, problem: str) -> None:
        where = f"{path}: rule {rule!r}" if rule else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.rule, self.problem = str(path), rule, problem


def null_fails(constraint: str) -> str:
    """The constraint as SQL that is never NULL: NULL counts as failed.

    The one definition of that semantic: the rule dicts handed to `dp.expect_all*` (so
    Databricks and the local engine see the same SQL), the quarantine's failed-rule list
    (`transforms.passes`) and the local engine's expectations all go through it. Wrapping an
    already wrapped constraint changes nothing (COALESCE of a non-NULL value). A constraint that
    ends in a `-- comment` gets the line break it needs before the closing parenthesis."""
    return f"COALESCE(({constraint}{_END_COMMENT if '--' in constraint else ''}), FALSE)"


_END_COMMENT = "\n"


@dataclass(frozen=True)
class Rule:
    name: str
    constraint: str
    action: str
    description: str = ""


@dataclass(frozen=True)
class RuleSet:
    path: str
    dataset: str
    rules: tuple[Rule, ...]

    def constraints(self, action: str) -> dict[str, str]:
        """`{name: constraint}` for one action, as `dp.expect_all*` take them.

        Each constraint is wrapped so that NULL counts as failed on every platform.
        """
        return {r.name: null_fails(r.constraint) for r in self.rules if r.action == action}

    @property
    def warn(self) -> dict[str, str]:
        return self.constraints("warn")

    @property
    def drop(self) -> dict[str, str]:
        return self.constraints("drop")

    @property
    def fail(self) -> dict[str, str]:
        return self.constraints("fail")


def _rule(path: Path, index: int, item: Any, seen: set[str]) -> Rule:
    if not isinstance(item, dict):
        raise RuleError(path, f"#{index + 1}", "a rule must be a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(path, f"#{index + 1}", f"name {name!r} must be an identifier")
    unknown = set(item) - _RULE_KEYS
    if unknown:
        raise RuleError(path, name, f"unknown keys {sorted(unknown)}")
    if name in seen:
        raise RuleError(path, name, "duplicate rule name")
    seen.add(name)
    action = item.get("action")
    if action not in ACTIONS:
        raise RuleError(path, name, f"unknown action {action!r} (use one of {', '.join(ACTIONS)})")
    constraint = item.get("constraint")
    if not isinstance(constraint, str) or not constraint.strip():
        raise RuleError(path, name, "constraint must be a non-empty SQL expression")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise RuleError(path, name, "description must be text")
    return Rule(name, constraint.strip(), action, description)


def load_rules(path: str | Path, spark: Any = None) -> RuleSet:
    """Load and validate a rule file; with a Spark session, also check every constraint's SQL."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleError(path, None, f"cannot read rule file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RuleError(path, None, f"not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RuleError(path, None, "expected a mapping with a 'rules' list")
    seen: set[str] = set()
    rules = tuple(_rule(path, i, item, seen) for i, item in enumerate(document["rules"]))
    ruleset = RuleSet(str(path), str(document.get("dataset", "")), rules)
    if spark is not None:
        check_constraints(ruleset, spark)
    return ruleset


def check_constraints(ruleset: RuleSet, spark: Any) -> None:
    """Parse and resolve each constraint against the parsed-orders columns, with Spark.

    A constraint must parse, name only contract columns (plus `_raw` and `_rescued_data`),
    be boolean, hold no subquery (it could read any file or table, e.g. csv.`/etc/passwd`;
    Databricks expectations take none either) and be deterministic (this also refuses
    `reflect`/`java_method`, which could call arbitrary JVM code).

    Only public DataFrame APIs are used, and every check is Spark's own analysis of a plan, so
    the same code runs on a classic session and on Spark Connect (Databricks serverless, where
    the definitions call this while they load): no `_jdf`, `_jvm` or `sparkContext`.
    """
    frame = _rule_columns_frame(spark)
    constraints = [rule.constraint for rule in ruleset.rules]
    if constraints and _all_sound(frame, constraints):
        return  # three plans for the whole file; one rule at a time only to name a bad one
    for rule in ruleset.rules:
        problem = constraint_problem(frame, rule.constraint)
        if problem:
            raise RuleError(ruleset.path, rule.name, problem)


def _all_sound(frame: Any, constraints: list[str]) -> bool:
    """`constraint_problem` finds nothing in any of `constraints`, asked of all at once: each
    of its three plans fails as soon as one constraint fails it (36 analyses take 2.3 s
    on a cold JVM, 3 take a fraction)."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    try:
        fields = frame.select(
            [F.expr(c).alias(f"ok{i}") for i, c in enumerate(constraints)]
        ).schema.fields
        if any(field.dataType.typeName() != "boolean" for field in fields):
            return False
        _ = frame.select(
            [F.transform(F.array(F.lit(0)), _returning(c)) for c in constraints]
        ).schema
        every = F.expr(" AND ".join(f"({c}\n)" for c in constraints))
        _ = frame.join(frame.select(F.lit(0).alias("__other")), on=every).schema
    except PySparkException:
        return False
    return True


def _returning(constraint: str) -> Any:
    from pyspark.sql import functions as F

    return lambda _: F.expr(constraint)


def constraint_problem(frame: Any, constraint: str) -> str | None:
    """Why `constraint` cannot be a rule on `frame`'s columns, or None.

    Each question is put to Spark's analyzer as a plan it refuses when the answer is wrong:
    - parse, columns, type: `select(constraint)`;
    - subquery: the constraint inside a lambda (`transform(array(0), _ -> constraint)`):
      Spark refuses any subquery in a higher-order function
      (UNSUPPORTED_SUBQUERY_EXPRESSION_CATEGORY.HIGHER_ORDER_FUNCTION);
    - determinism: the constraint as a join condition: Spark refuses a non-deterministic one
      (INVALID_NON_DETERMINISTIC_EXPRESSIONS); rand, uuid, reflect, java_method are all
      non-deterministic.
    """
    from pyspark.errors import AnalysisException, ParseException
    from pyspark.sql import functions as F

    try:
        field = frame.select(F.expr(constraint).alias("ok")).schema["ok"]
    except ParseException as exc:
        return f"constraint does not parse: {_first_line(exc)}"
    except AnalysisException as exc:
        if _condition(exc) == "UNRESOLVED_COLUMN.WITH_SUGGESTION":
            column = (exc.getMessageParameters() or {}).get("objectName", "?")
            return f"constraint names a column outside the contract: {column}"
        if _condition(exc).startswith("UNSUPPORTED_SUBQUERY_EXPRESSION_CATEGORY"):
            return "constraint must not contain a subquery"
        return f"constraint is invalid: {_first_line(exc)}"
    try:
        _ = frame.select(F.transform(F.array(F.lit(0)), lambda _: F.expr(constraint))).schema
    except AnalysisException as exc:
        if _condition(exc).startswith("UNSUPPORTED_SUBQUERY_EXPRESSION_CATEGORY"):
            return "constraint must not contain a subquery"
        return f"constraint is invalid: {_first_line(exc)}"
    if field.dataType.typeName() != "boolean":
        return f"constraint is {field.dataType.simpleString()}, not boolean"
    try:
        _ = frame.join(frame.select(F.lit(0).alias("__other")), on=F.expr(constraint)).schema
    except AnalysisException as exc:
        if _condition(exc) == "INVALID_NON_DETERMINISTIC_EXPRESSIONS":
            return "constraint must be deterministic (no rand, reflect, ...)"
        return f"constraint is invalid: {_first_line(exc)}"
    return None


def _condition(exc: Exception) -> str:
    return str(getattr(exc, "getCondition", lambda: None)() or "")


def _rule_columns_frame(spark: Any) -> Any:
    """An empty frame with exactly the columns a rule may name."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

    from orderlake.contract import COLUMN_NAMES, RAW_SCHEMA, RESCUED
    from orderlake.transforms import (
        FILE_MODIFICATION_TIME,
        INGESTED_AT,
        RAW,
        ROW_POSITION,
        SOURCE_FILE,
        parse_orders,
    )

    bronze_schema = StructType(
        RAW_SCHEMA.fields
        + [
            StructField(SOURCE_FILE, StringType()),
            StructField(FILE_MODIFICATION_TIME, TimestampType()),
            StructField(INGESTED_AT, TimestampType()),
            StructField(ROW_POSITION, LongType()),
        ]
    )
    bronze = spark.createDataFrame([], bronze_schema)
    return parse_orders(bronze).select(*COLUMN_NAMES, RAW, RESCUED)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
