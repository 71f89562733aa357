"""The bad-input catalogue (see catalogue.py): one test per kind of malformed input."""

from __future__ import annotations

import pytest

from .catalogue import CASES, catalogue_table
from .harness import REPO, check_files


def test_catalogue_has_enough_kinds() -> None:
    assert len(CASES) >= 25
    assert len({c.number for c in CASES}) == len(CASES)
    outcomes = {c.outcome for c in CASES}
    assert {"loaded", "quarantined", "rejected"} <= outcomes


@pytest.mark.parametrize("case", CASES, ids=[f"{c.number:02d}_{c.name}" for c in CASES])
def test_bad_input(case, catalogue_run) -> None:
    case.check(catalogue_run)


def test_no_update_failed_and_no_file_lost(catalogue_run) -> None:
    """Every update completed; every file is in exactly one folder; the idle update is a no-op."""
    check_files(catalogue_run.volume)
    first, second, idle = catalogue_run.updates
    assert first.ingest[0].rejected and second.ingest[0].loaded
    assert not idle.ingest[0].loaded and not idle.ingest[0].rejected and idle.bronze_rows == 0
    assert all(not (f.input_rows or f.output_rows) for f in idle.flows)


def test_no_silent_loss(catalogue_run) -> None:
    """Each bronze row ends in the target's input or in quarantine: nothing vanishes."""
    kept = catalogue_run.updates[0].flow("orders_target").quality.total
    kept += catalogue_run.updates[1].flow("orders_target").quality.total
    assert kept == len(catalogue_run.bronze)
    dropped = sum(u.flow("orders_target").quality.dropped for u in catalogue_run.updates[:2])
    assert dropped == len(catalogue_run.quarantine)


def test_doc_lists_every_case() -> None:
    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    missing = [c.name for c in CASES if f"`{c.name}`" not in doc]
    assert not missing, f"docs/reliability.md lacks {missing}; regenerate with:\n" + (
        catalogue_table()
    )
