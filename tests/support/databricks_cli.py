"""Find the real Databricks CLI that scripts/install-databricks-cli.sh builds."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = (
    "the Databricks CLI is not installed: run `bash scripts/install-databricks-cli.sh` "
    "(or set ORDERLAKE_DATABRICKS_CLI to a databricks binary)"
)


def pinned_version() -> str:
    return (ROOT / "scripts" / "databricks-cli.version").read_text().strip()


def find_cli() -> Path | None:
    """ORDERLAKE_DATABRICKS_CLI, else the install script's cache path for the pinned version."""
    explicit = os.environ.get("ORDERLAKE_DATABRICKS_CLI")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    binary = cache / "orderlake" / "databricks-cli" / pinned_version() / "bin" / "databricks"
    return binary if binary.is_file() else None
