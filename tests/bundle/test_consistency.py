"""The bundle, the pipeline code and the rule files agree; broken copies are caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orderlake.bundle_config import BundleConfigError, load_bundle
from orderlake.settings import PipelineSettings
from orderlake.source_options import autoloader_options
from tests.bundle import checks

ROOT = Path(__file__).resolve().parents[2]


def copy_bundle(dest: Path) -> Path:
    shutil.copy(ROOT / "databricks.yml", dest / "databricks.yml")
    for folder in ("resources", "dlt", "expectations"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_libraries_cover_every_dlt_source() -> None:
    assert checks.libraries_cover_dlt(ROOT) == []


def test_configuration_sets_every_setting_key() -> None:
    assert checks.configuration_matches_settings(ROOT) == []


def test_rule_file_exists_and_is_valid() -> None:
    assert checks.rule_files_valid(ROOT) == []


def test_autoloader_options_are_documented() -> None:
    settings = PipelineSettings.from_conf(load_bundle(ROOT).pipeline_configuration)
    options = autoloader_options(settings)
    assert checks.options_documented(options) == []
    # The checked list is exactly what the pipeline passes: no stale, no unchecked names.
    assert set(options) == checks.DOCUMENTED_OPTIONS
    assert checks.dlt_reader_options(ROOT) == []
    # Archiving on Databricks: cleanSource MOVE into the archive sibling of source/.
    assert options["cloudFiles.cleanSource"] == "MOVE"
    assert options["cloudFiles.cleanSource.moveDestination"] == settings.archive_path
    assert not settings.archive_path.startswith(settings.source_path + "/")


def test_trigger_watches_the_source_folder() -> None:
    assert checks.trigger_watches_source(ROOT) == []


def test_every_target_loads() -> None:
    for target in ("dev", "prod"):
        assert load_bundle(ROOT, target).pipeline_name == "orderlake_orders"
    assert load_bundle(ROOT, "dev") == load_bundle(ROOT)  # dev is the default target


# ---- deliberately broken copies -------------------------------------------------------------


def test_broken_library_glob_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    edit(root / "resources" / "orders_pipeline.yml", "../dlt/**", "../dlt/*.sql")
    assert any("not covered" in p for p in checks.libraries_cover_dlt(root))


def test_new_dlt_file_outside_glob_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    edit(root / "resources" / "orders_pipeline.yml", "../dlt/**", "../dlt/orders_pipeline.py")
    (root / "dlt" / "extra_flows.py").write_text("# another source file\n")
    assert checks.libraries_cover_dlt(root) == [
        "dlt/extra_flows.py is not covered by libraries ['../dlt/orders_pipeline.py']"
    ]


def test_missing_configuration_key_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    edit(
        root / "resources" / "orders_pipeline.yml", "orders.archive_dir:", "orders.archive_folder:"
    )
    problems = checks.configuration_matches_settings(root)
    assert "configuration lacks orders.archive_dir" in problems
    assert "configuration sets orders.archive_folder, which the code never reads" in problems


def test_missing_rule_file_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    (root / "expectations" / "orders.yml").unlink()
    assert any("cannot read rule file" in p for p in checks.rule_files_valid(root))


def test_invalid_rule_file_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    (root / "expectations" / "orders.yml").write_text("rules: {not: a list}\n")
    assert checks.rule_files_valid(root) != []


def test_misspelled_autoloader_option_is_caught() -> None:
    assert checks.options_documented({"cloudFiles.cleanSource.moveDestinaton": "/x"}) != []


def test_option_set_directly_in_dlt_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    edit(
        root / "dlt" / "orders_pipeline.py",
        ".options(**autoloader_options(settings))",
        '.options(**autoloader_options(settings))\n.option("cloudFiles.maxFilesPerTriger", "9")',
    )
    (problem,) = checks.dlt_reader_options(root)
    assert problem.startswith("dlt/orders_pipeline.py:")
    assert problem.endswith(": reader option set outside autoloader_options()")


def test_short_trigger_timing_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    edit(root / "databricks.yml", "default: 60\n", "default: 30\n")
    assert any(">= 60" in p for p in checks.trigger_watches_source(root))


def test_trigger_on_wrong_folder_is_caught(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    edit(root / "resources" / "orders_job.yml", "/${var.source_dir}/", "/${var.archive_dir}/")
    assert any("not /Volumes" in p for p in checks.trigger_watches_source(root))


def test_unresolvable_reference_is_a_clear_error(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    edit(root / "resources" / "orders_pipeline.yml", "${var.source_dir}", "${var.sorce_dir}")
    with pytest.raises(BundleConfigError, match="undeclared variable"):
        load_bundle(root)
    edit(
        root / "resources" / "orders_pipeline.yml",
        "${var.sorce_dir}",
        "${workspace.current_user.short_name}",
    )
    with pytest.raises(BundleConfigError, match="orders.source_dir"):
        load_bundle(root)
