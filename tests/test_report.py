"""`orderlake report` in a real headless Chromium: the page loads from file:// with no console
error and no network, every chart is drawn, and the figures on the page are the warehouse's."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.browser import BrowserMissing, chromium, open_page

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "orderlake" / "report" / "vendor"


@pytest.fixture(scope="module")
def browser() -> str:
    try:
        return chromium()
    except BrowserMissing as exc:
        if os.environ.get("ORDERLAKE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ORDERLAKE_REQUIRE_BROWSER=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def report(built_warehouse) -> Path:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    where = ["--volume", str(built_warehouse["volume"]),
             "--warehouse", str(built_warehouse["warehouse"])]
    made = subprocess.run([sys.executable, "-m", "orderlake.cli", "report", *where],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert made.returncode == 0, made.stderr
    path = built_warehouse["warehouse"] / "report.html"
    assert f"report written to {path}" in made.stdout
    return path


def test_the_vendored_echarts_is_the_pinned_one():
    pinned = (VENDOR / "echarts.min.js.sha256").read_text().split()[0]
    assert hashlib.sha256((VENDOR / "echarts.min.js").read_bytes()).hexdigest() == pinned
    assert (VENDOR / "LICENSE-echarts").is_file() and (VENDOR / "NOTICE-echarts").is_file()


def test_the_page_needs_no_network(report):
    text = report.read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text
    assert "http://" not in text.split('<script id="report-data"')[0]


CHARTS = """(() => {
  const out = {};
  for (const id of ['graph', 'updates-chart', 'expectations-chart', 'quarantine-chart']) {
    const el = document.getElementById(id);
    const chart = echarts.getInstanceByDom(el);
    const canvas = el.querySelector('canvas');
    out[id] = {instance: !!chart, width: canvas ? canvas.width : 0,
               height: canvas ? canvas.height : 0,
               series: chart ? chart.getOption().series.map((s) => s.data) : null};
  }
  return out;
})()"""

TABLE = """((id) => Array.from(document.querySelectorAll(`#${id} tbody tr`)).map(
  (tr) => Array.from(tr.cells).map((td) => td.textContent.trim())))"""


def test_the_report_renders_in_chromium(browser, report, built_warehouse):
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "orderlake.cli", "show", "--json",
             "--volume", str(built_warehouse["volume"]),
             "--warehouse", str(built_warehouse["warehouse"])],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
            cwd=REPO, timeout=300, check=True,
        ).stdout
    )
    with open_page(report.resolve().as_uri()) as page:
        page.wait_until("document.body.dataset.rendered === 'yes'")
        assert page.errors() == []
        charts = page.evaluate(CHARTS)
        for chart_id, chart in charts.items():
            assert chart["instance"], chart_id
            assert chart["width"] > 300 and chart["height"] > 200, (chart_id, chart)

        # graph: every dataset with the row count the Delta logs give
        nodes = {n["name"]: n for n in charts["graph"]["series"][0]}
        rows = {t["name"]: t["rows"] for t in data["tables"]}
        for name in ("orders_bronze", "orders_quarantine", "orders_target"):
            assert nodes[name]["rows"] == rows[name], name
        assert nodes["orders_clean"]["kind"] == "VIEW"
        assert "source files" in nodes
        edges = page.evaluate("window.orderlakeCharts.graph.getOption().series[0].links")
        target_edge = next(e for e in edges if e["target"] == "orders_target")
        assert (target_edge["source"], target_edge["kind"]) == ("orders_clean", "AUTO_CDC")
        assert target_edge["rows_in"] == 2 and target_edge["rows_out"] == 1

        # updates: the table and the chart hold the event log's figures
        updates = page.evaluate(TABLE + "('updates')")
        assert [u[0] for u in updates] == ["2", "1"]
        assert updates[1][1] == "COMPLETED" and updates[1][6] == "1" and updates[1][7] == "4"
        bars = charts["updates-chart"]["series"][0]
        assert [b["value"] for b in bars] == [u["bronze_rows"] for u in data["updates"]]

        # expectations: one series per rule, failed rows per update
        failed = {
            s: d for s, d in zip(
                page.evaluate("window.orderlakeCharts['expectations-chart'].getOption()"
                              ".series.map((s) => s.name)"),
                charts["expectations-chart"]["series"], strict=True,
            )
        }
        assert failed["order_id_present"] == [0, 1]
        assert failed["amount_not_negative"] == [1, 0]

        # quarantine reasons and sample rows as sent; rejected files with the reason
        assert sorted(charts["quarantine-chart"]["series"][0]) == sorted(
            data["quarantine_reasons"].values()
        )
        samples = page.evaluate(TABLE + "('quarantine')")
        negative = next(r for r in samples if r[0] == "amount_not_negative")
        assert negative[2:4] == ["day1.csv", "3"]
        assert negative[5] == built_warehouse["lines"]["day1.csv"][2]
        archive = built_warehouse["volume"] / "archive"
        assert negative[6] == str(archive / "day1.csv")  # where the file is now
        assert page.evaluate(TABLE + "('files')") == [
            ["day2.csv", "loaded", str(archive / "day2.csv")]
        ]
        # the last update's AUTO CDC rows, bucket by bucket, adding up to the rows in
        went = page.evaluate(TABLE + "('rows-went')")
        assert went == [["orders_target", "2", "1", "0", "0", "0", "1", "0"]]
        rejected = page.evaluate(TABLE + "('rejected')")
        assert [r[:2] for r in rejected] == [
            [r["file"], r["reason"]] for r in data["rejected_files"]
        ] and rejected[0][0] == "broken.csv"
        page.screenshot(report.with_suffix(".png"))
    assert report.with_suffix(".png").stat().st_size > 20_000
