"""Loading and validating the YAML rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderlake.rules import RuleError, load_rules
from orderlake.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "expectations" / "orders.yml"


def _write(tmp_path: Path, rules: str) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text("rules:\n" + rules, encoding="utf-8")
    return path


def _rule(name: str = "r1", constraint: str = "order_id IS NOT NULL", action: str = "drop") -> str:
    return f'  - name: {name}\n    constraint: "{constraint}"\n    action: {action}\n'


def test_shipped_rules_load_and_pass_the_sql_checks(spark):
    rules = load_rules(SHIPPED, spark=spark)
    assert set(rules.drop) >= {
        "valid_tracking_num",
        "order_id_present",
        "last_updated_present",
        "order_date_parses",
        "weight_kg_parses",
        "amount_parses",
        "last_updated_parses",
        "amount_not_negative",
    }
    assert set(rules.warn) == {"known_status", "positive_weight", "valid_currency"}
    assert rules.fail == {}


def test_constraints_count_null_as_failed():
    rules = load_rules(SHIPPED)
    assert rules.drop["order_id_present"] == "COALESCE((order_id IS NOT NULL), FALSE)"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_rule(action="explode"), "unknown action 'explode'"),
        (_rule("dup") + _rule("dup"), "duplicate rule name"),
        (_rule(constraint=""), "constraint must be a non-empty SQL expression"),
        ("  - name: r1\n    constraint: x\n    action: drop\n    severity: high\n", "unknown keys"),
        ("  - just text\n", "a rule must be a mapping"),
    ],
)
def test_structural_errors_name_file_rule_and_problem(tmp_path, body, problem):
    path = _write(tmp_path, body)
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert str(path) in message and problem in message


@pytest.mark.parametrize(
    ("constraint", "problem"),
    [
        ("order_id IS NOT", "does not parse"),
        ("shoe_size > 3", "column outside the contract: `shoe_size`"),
        ("amount + 1", "not boolean"),
        ("rand() > 0.5", "deterministic"),
        ("reflect('java.util.UUID', 'randomUUID') IS NOT NULL", "deterministic"),
    ],
)
def test_sql_errors_name_file_rule_and_problem(spark, tmp_path, constraint, problem):
    path = _write(tmp_path, _rule("bad_rule", constraint))
    with pytest.raises(RuleError) as caught:
        load_rules(path, spark=spark)
    message = str(caught.value)
    assert str(path) in message and "'bad_rule'" in message and problem in message


def test_rule_files_are_loaded_safely(tmp_path):
    path = tmp_path / "evil.yml"
    path.write_text("rules: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_rules(path)


BAD_CONSTRAINTS = [
    ("order_id IS NOT", "does not parse"),
    ("shoe_size > 3", "column outside the contract: `shoe_size`"),
    ("amount + 1", "not boolean"),
    ("rand() > 0.5", "deterministic"),
    ("java_method('java.lang.System', 'exit', 1) = 0", "deterministic"),
    ("EXISTS (SELECT * FROM csv.`/etc/passwd`)", "subquery"),
    ("(SELECT count(*) FROM range(10)) > 0", "subquery"),
    ("order_id IS NOT NULL -- a comment", None),  # sound: the batched check must not trip
]


@pytest.mark.parametrize(("constraint", "problem"), BAD_CONSTRAINTS)
def test_one_bad_rule_among_the_shipped_ones_is_named(spark, tmp_path, constraint, problem):
    """The file is checked in one batch first; a bad rule anywhere in it is still found and
    named, and a sound file passes."""
    import random

    import yaml

    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rules = [
        {"name": r.name, "constraint": r.constraint, "action": r.action}
        for r in load_rules(SHIPPED).rules
    ]
    rules.insert(random.Random(seed).randrange(len(rules) + 1), {
        "name": "odd_one", "constraint": constraint, "action": "drop",
    })  # fmt: skip
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"rules": rules}), encoding="utf-8")
    if problem is None:
        from pyspark.sql import functions as F

        from orderlake.rules import _rule_columns_frame

        wrapped = load_rules(path, spark=spark).drop["odd_one"]
        _ = _rule_columns_frame(spark).select(F.expr(wrapped)).schema  # still parses
        return
    with pytest.raises(RuleError) as caught:
        load_rules(path, spark=spark)
    message = str(caught.value)
    assert "'odd_one'" in message and problem in message, (seed, message)


def test_a_sound_rule_file_is_checked_in_one_batch(spark):
    from orderlake.rules import _all_sound, _rule_columns_frame

    constraints = [rule.constraint for rule in load_rules(SHIPPED).rules]
    frame = _rule_columns_frame(spark)
    assert _all_sound(frame, constraints)
    assert not _all_sound(frame, [*constraints, "rand() > 0.5"])
