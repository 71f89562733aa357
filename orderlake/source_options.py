"""Auto Loader options for the order files, shared by Databricks and the local engine."""

from __future__ import annotations

from orderlake.contract import RESCUED
from orderlake.settings import PipelineSettings


def autoloader_options(settings: PipelineSettings) -> dict[str, str]:
    """The `cloudFiles` reader options; the local engine honours the same ones."""
    return {
        "cloudFiles.format": "csv",
        "header": "true",
        # Quoted fields may hold newlines; it also keeps a file in one piece (row positions).
        "multiLine": "true",
        # Every column is read as text; what does not fit lands here instead of vanishing.
        "rescuedDataColumn": RESCUED,
        # Header names match the contract's in any case (README). Auto Loader's default (true)
        # would rescue the values of a column whose header case differs, leaving it empty.
        "readerCaseSensitive": "false",
        "cloudFiles.schemaEvolutionMode": "none",
        # Files are moved away once loaded, so a later upload under the same name is new data.
        "cloudFiles.allowOverwrites": "true",
        "cloudFiles.cleanSource": "MOVE",
        "cloudFiles.cleanSource.moveDestination": settings.archive_path,
        "cloudFiles.cleanSource.retentionDuration": settings.archive_retention,
    }
