"""Find the real Databricks CLI that scripts/install-databricks-cli.sh builds."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPLICIT_ENV = "ORDERLAKE_DATABRICKS_CLI"
# Set to 1 where the CLI must be there (e.g. a CI that can reach the module): a missing CLI
# then fails the validate tests instead of skipping them.
REQUIRE_ENV = "ORDERLAKE_REQUIRE_DATABRICKS_CLI"
REFUSED_HINT = (
    "the Databricks CLI is not installed: the Go module proxy refused github.com/databricks/cli; "
    "run scripts/install-databricks-cli.sh where it is reachable "
    f"(or set {EXPLICIT_ENV} to a databricks binary)"
)
INSTALL_HINT = (
    "the Databricks CLI is not installed: run `bash scripts/install-databricks-cli.sh` "
    f"(or set {EXPLICIT_ENV} to a databricks binary)"
)


def pinned_version() -> str:
    return (ROOT / "scripts" / "databricks-cli.version").read_text().strip()


def cache_dir() -> Path:
    """Where the install script builds the pinned version (same rule as the script)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "orderlake" / "databricks-cli" / pinned_version()


def find_cli() -> Path | None:
    """ORDERLAKE_DATABRICKS_CLI, else the install script's cache path for the pinned version."""
    explicit = os.environ.get(EXPLICIT_ENV)
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    binary = cache_dir() / "bin" / "databricks"
    return binary if binary.is_file() else None


def cli_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


def missing_reason() -> str:
    """Why there is no CLI, from the install script's last build log when it has one."""
    explicit = os.environ.get(EXPLICIT_ENV)
    if explicit:
        return f"{EXPLICIT_ENV}={explicit} is not a file"
    log = cache_dir() / "build.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    if "403 Forbidden" in text or "not available" in text:
        return REFUSED_HINT
    return INSTALL_HINT
