"""Consistency checks between the bundle, the pipeline code and the rule files.

Each check takes a bundle root and returns a list of problems, so the tests can run it on the
real bundle (expect none) and on deliberately broken copies (expect some).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from orderlake.bundle_config import BundleConfigError, _load_raw, load_bundle
from orderlake.rules import RuleError, load_rules
from orderlake.settings import DEFAULTS, PipelineSettings

# The Auto Loader / CSV reader options the pipeline passes (orderlake.source_options), each
# checked against the Databricks docs (search tool, 2026-11-28). This set must equal the keys
# autoloader_options() returns (a test enforces it): a new option needs a docs check first.
# - cloudFiles.format, cloudFiles.allowOverwrites, cloudFiles.cleanSource,
#   cloudFiles.schemaEvolutionMode, and the CSV format options header, multiLine,
#   rescuedDataColumn: https://docs.databricks.com/ingestion/auto-loader/options.html
# - cloudFiles.cleanSource.moveDestination, cloudFiles.cleanSource.retentionDuration (MOVE has
#   no minimum retention; DBR 16.4+):
#   https://docs.databricks.com/aws/en/ingestion/cloud-object-storage/auto-loader/clean-source
# - readerCaseSensitive (CSV option, default true; false reads "in a case-insensitive manner"):
#   https://docs.databricks.com/aws/en/ingestion/cloud-object-storage/auto-loader/options
DOCUMENTED_OPTIONS: frozenset[str] = frozenset(
    {
        "cloudFiles.format",
        "cloudFiles.allowOverwrites",
        "cloudFiles.cleanSource",
        "cloudFiles.cleanSource.moveDestination",
        "cloudFiles.cleanSource.retentionDuration",
        "cloudFiles.schemaEvolutionMode",
        "rescuedDataColumn",
        "header",
        "multiLine",
        "readerCaseSensitive",
    }
)
WORKSPACE_FILES = "${workspace.file_path}/"
MIN_TRIGGER_SECONDS = 60  # Databricks rejects shorter file-arrival timings


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def libraries_cover_dlt(root: Path) -> list[str]:
    """Every source file in dlt/ is matched by a `libraries` glob (relative to resources/)."""
    config = load_bundle(root)
    patterns = []
    for include in config.libraries:
        resolved = (root / "resources" / include).as_posix()
        # normalise ../ without touching the glob characters
        parts: list[str] = []
        for part in resolved.split("/"):
            if part == "..":
                parts.pop()
            elif part != ".":
                parts.append(part)
        patterns.append(_glob_regex("/".join(parts)))
    sources = [
        p
        for p in (root / "dlt").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".sql")
    ]
    if not sources:
        return ["dlt/ holds no pipeline source files"]
    return [
        f"{p.relative_to(root)} is not covered by libraries {config.libraries}"
        for p in sources
        if not any(rx.fullmatch(p.resolve().as_posix()) for rx in patterns)
    ]


def configuration_matches_settings(root: Path) -> list[str]:
    """The pipeline's configuration sets exactly the orders.* keys the code reads."""
    conf = load_bundle(root).pipeline_configuration
    problems = [f"configuration lacks {key}" for key in sorted(set(DEFAULTS) - set(conf))]
    problems += [
        f"configuration sets {key}, which the code never reads"
        for key in sorted(k for k in conf if k.startswith("orders.") and k not in DEFAULTS)
    ]
    return problems


def rule_files_valid(root: Path) -> list[str]:
    """The rule file the pipeline is configured with exists in the bundle and loads."""
    value = load_bundle(root).pipeline_configuration.get("orders.expectations_path", "")
    if not value.startswith(WORKSPACE_FILES):
        return [f"orders.expectations_path {value!r} is not a file shipped with the bundle"]
    path = root / value[len(WORKSPACE_FILES) :]
    try:
        ruleset = load_rules(path)
    except RuleError as err:
        return [str(err)]
    return [] if ruleset.rules else [f"{path} defines no rules"]


def options_documented(options: dict[str, str]) -> list[str]:
    return [
        f"undocumented Auto Loader option {name!r}"
        for name in options
        if name not in DOCUMENTED_OPTIONS
    ]


def trigger_watches_source(root: Path) -> list[str]:
    """The job's file-arrival URL is the volume's source/ folder; timings are >= 60 s."""
    try:
        config = load_bundle(root)
    except BundleConfigError as err:
        return [str(err)]
    _, resources, resolver = _load_raw(root, None)
    problems = []
    settings = PipelineSettings.from_conf(config.pipeline_configuration)
    for job in (resources.get("jobs") or {}).values():
        arrival = (job.get("trigger") or {}).get("file_arrival")
        if arrival is None:
            continue
        url = resolver.resolve(arrival.get("url"))
        if url.rstrip("/") != settings.source_path:
            problems.append(f"trigger watches {url}, not {settings.source_path}/")
    for name in ("wait_after_last_change_seconds", "min_time_between_triggers_seconds"):
        if getattr(config, name) < MIN_TRIGGER_SECONDS:
            problems.append(f"{name} is {getattr(config, name)}, Databricks needs >= 60")
    return problems


def dlt_reader_options(root: Path) -> list[str]:
    """Pipeline sources pass reader options only as `.options(**autoloader_options(...))`.

    So DOCUMENTED_OPTIONS, checked against autoloader_options(), covers every option the
    definitions use; an `.option("x", ...)` written directly in dlt/ is reported.
    """
    problems = []
    for path in sorted((root / "dlt").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in ("option", "options"):
                continue
            shared = (
                node.func.attr == "options"
                and not node.args
                and len(node.keywords) == 1
                and node.keywords[0].arg is None
                and isinstance(call := node.keywords[0].value, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "autoloader_options"
            )
            if not shared:
                where = f"{path.relative_to(root)}:{node.func.end_lineno}"
                problems.append(f"{where}: reader option set outside autoloader_options()")
    return problems
