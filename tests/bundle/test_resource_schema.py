"""Every bundle resource parses with Databricks' own resource model (PyPI `databricks-bundles`).

`databricks-bundles` is made by Databricks and generated from the same definitions as the CLI's
bundle schema; it is pinned to the CLI's version (scripts/databricks-cli.version). Its
`Job.from_dict`, `Pipeline.from_dict`, `Schema.from_dict` and `Volume.from_dict` reject unknown
fields, wrong enum values, values of the wrong type and missing required fields. This is the
strongest offline check available while the Go module proxy refuses the CLI itself (see
docs/deploy.md); it does not replace `databricks bundle validate`, which also checks the
top-level `databricks.yml` keys, paths and cross-references.

What is checked here, per target (dev and prod, with the target's resource overrides):
- `${var.*}`, `${bundle.*}` and `${resources.*}` fields are resolved first with the local
  engine's resolver, so ints, bools and enums are checked as their real values;
- only workspace-only references may stay (`${workspace.*}`, `${resources.<kind>.<key>.id}`);
- the parsed object turns back into exactly the input (`as_dict()`), so nothing was silently
  coerced (the model's `str` fields accept anything via `str()`; the round trip catches that);
- the target's `run_as` parses as `JobRunAs`, the type the CLI gives it.
"""

from __future__ import annotations

import re
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from databricks.bundles.jobs import Job, JobRunAs
from databricks.bundles.pipelines import Pipeline
from databricks.bundles.schemas import Schema
from databricks.bundles.volumes import Volume

from orderlake.bundle_config import BundleConfigError, _load_raw, _read_yaml, _select_target
from tests.support.databricks_cli import pinned_version

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("dev", "prod")
# The resource kinds the bundle uses, with the databricks-bundles class for each. A kind not
# listed here (a misspelling, or a new kind nobody mapped yet) is reported, never skipped.
RESOURCE_CLASSES: dict[str, Any] = {
    "jobs": Job,
    "pipelines": Pipeline,
    "schemas": Schema,
    "volumes": Volume,
}
_REF = re.compile(r"\$\{([^}]*)\}")
# References only a workspace can answer: they stay as written after local resolution.
_WORKSPACE_ONLY = re.compile(r"workspace\..+|resources\.[a-z_]+\.[A-Za-z0-9_\-]+\.id")


def _leftover_refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [ref for v in value.values() for ref in _leftover_refs(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in _leftover_refs(v)]
    if isinstance(value, str):
        return [m.group(1) for m in _REF.finditer(value)]
    return []


def _parse(cls: Any, where: str, spec: Any) -> list[str]:
    try:
        parsed = cls.from_dict(spec)
    except (ValueError, TypeError) as err:  # unknown field / bad type / enum / missing field
        return [f"{where}: {type(err).__name__}: {err}"]
    if parsed.as_dict() != spec:
        return [f"{where}: changed by {cls.__name__} round trip (a value of the wrong type?)"]
    return []


def schema_problems(root: Path, target: str) -> list[str]:
    """Problems databricks-bundles finds in the bundle's resources for one target."""
    try:
        _, resources, resolver = _load_raw(root, target)
        resolved = resolver.resolve(resources)
    except BundleConfigError as err:
        return [str(err)]
    problems: list[str] = []
    for kind, items in sorted(resolved.items()):
        cls = RESOURCE_CLASSES.get(kind)
        if cls is None:
            problems.append(f"resources.{kind}: no databricks-bundles class for this kind")
            continue
        for key, spec in sorted((items or {}).items()):
            where = f"[{target}] resources.{kind}.{key}"
            problems += [
                f"{where}: unresolved reference ${{{ref}}}"
                for ref in _leftover_refs(spec)
                if not _WORKSPACE_ONLY.fullmatch(ref)
            ]
            problems += _parse(cls, where, spec)
    _, target_spec = _select_target(_read_yaml(root / "databricks.yml"), target)
    if "run_as" in target_spec:
        problems += _parse(JobRunAs, f"[{target}] run_as", resolver.resolve(target_spec["run_as"]))
    return problems


def copy_bundle(dest: Path) -> Path:
    shutil.copy(ROOT / "databricks.yml", dest / "databricks.yml")
    shutil.copytree(ROOT / "resources", dest / "resources")
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("target", TARGETS)
def test_every_resource_parses_with_databricks_bundles(target: str) -> None:
    assert schema_problems(ROOT, target) == []


@pytest.mark.parametrize("target", TARGETS)
def test_every_resource_kind_is_checked(target: str) -> None:
    _, resources, _ = _load_raw(ROOT, target)
    assert set(resources) == set(RESOURCE_CLASSES)
    assert all(resources[kind] for kind in RESOURCE_CLASSES)


def test_model_version_matches_the_pinned_cli() -> None:
    """databricks-bundles and the CLI are released together; keep their pins in step."""
    assert version("databricks-bundles") == pinned_version().removeprefix("v")


def test_prod_run_as_is_checked() -> None:
    _, target_spec = _select_target(_read_yaml(ROOT / "databricks.yml"), "prod")
    assert "service_principal_name" in target_spec["run_as"]


# ---- deliberately broken copies: each must be reported -------------------------------------

JOB = "resources/orders_job.yml"
PIPELINE = "resources/orders_pipeline.yml"
STORAGE = "resources/orders_storage.yml"
BUNDLE = "databricks.yml"

BROKEN = [
    # (id, file, old, new, text expected in a problem)
    ("unknown-job-field", JOB, "max_concurrent_runs:", "max_concurent_runs:", "max_concurent_runs"),
    ("misspelled-file-arrival", JOB, "file_arrival:", "file_arival:", "'file_arival'"),
    (
        "misspelled-file-arrival-timing",
        JOB,
        "wait_after_last_change_seconds:",
        "wait_after_last_change_secs:",
        "'wait_after_last_change_secs'",
    ),
    (
        "timing-not-a-number",
        BUNDLE,
        "last new file (minimum 60).\n    default: 60",
        "last new file (minimum 60).\n    default: soon",
        "invalid literal for int() with base 10: 'soon'",
    ),
    ("bad-pause-status", BUNDLE, "default: UNPAUSED", "default: UNPAUSE", "PauseStatus"),
    ("unknown-pipeline-field", PIPELINE, "continuous: false", "continous: false", "'continous'"),
    (
        "serverless-not-a-bool",
        PIPELINE,
        "serverless: true",
        "serverless: maybe",
        "<class 'bool'> for 'maybe'",
    ),
    (
        "libraries-not-a-list",
        PIPELINE,
        "libraries:\n        - glob:\n            include: ../dlt/**",
        "libraries: ../dlt/**",
        "Unexpected type: list[",
    ),
    (
        "mapping-in-string-field",
        PIPELINE,
        "channel: CURRENT",
        "channel: {name: CURRENT}",
        "changed by Pipeline round trip",
    ),
    ("bad-volume-type", STORAGE, "volume_type: EXTERNAL", "volume_type: EXTERNEL", "VolumeType"),
    ("bad-privilege", STORAGE, "- READ_VOLUME", "- READ_VOLUMES", "Privilege"),
    (
        "missing-required-field",
        STORAGE,
        "      catalog_name: ${var.catalog}\n      schema_name:",
        "      schema_name:",
        "missing 1 required keyword-only argument: 'catalog_name'",
    ),
    (
        "unresolvable-resource-reference",
        STORAGE,
        "schema_name: ${resources.schemas.orders.name}",
        "schema_name: ${resources.schemas.orders.nme}",
        "unresolved reference ${resources.schemas.orders.nme}",
    ),
    (
        "misspelled-resource-kind",
        PIPELINE,
        "  pipelines:\n",
        "  pipeline:\n",
        "resources.pipeline:",
    ),
    (
        "unknown-run-as-field",
        BUNDLE,
        "run_as:\n      service_principal_name:",
        "run_as:\n      service_principal:",
        "run_as: ValueError: Unexpected field 'service_principal'",
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in BROKEN],
)
def test_broken_copy_is_caught(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    root = copy_bundle(tmp_path)
    edit(root / file, old, new)
    problems = [p for target in TARGETS for p in schema_problems(root, target)]
    assert any(expected in p for p in problems), problems
