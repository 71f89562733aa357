"""The report's HTML: tables written here (readable without scripts), charts drawn in the
browser by the vendored ECharts from the same figures, embedded as JSON."""

from __future__ import annotations

import json
import re
from html import escape
from importlib.resources import files
from typing import Any

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 16px;
       color: #1f2933; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #52606d; font-size: 12px; }
.chart { width: 100%; height: 360px; border: 1px solid #e4e7eb; border-radius: 6px; }
#graph { height: 420px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 8px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e4e7eb;
         vertical-align: top; }
th { background: #f5f7fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.state-FAILED, td.state-CANCELED { color: #b42318; font-weight: 600; }
td.state-COMPLETED { color: #067647; }
code, .text { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap;
              word-break: break-all; }
.empty { color: #7b8794; font-style: italic; }
"""


def _n(value: Any) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else escape(str(value))


def _table(headers: list[str], rows: list[list[str]], table_id: str, numeric: set[int]) -> str:
    if not rows:
        return f'<p class="empty" id="{table_id}">none</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else (
                cell if cell.startswith("<td") else f"<td>{cell}</td>"
            )
            for i, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _tables_section(data: dict[str, Any]) -> str:
    rows = [[escape(t["name"]), _n(t["rows"]), _n(t["version"])] for t in data["tables"]]
    return _table(["table", "rows", "Delta version"], rows, "tables", {1, 2})


def _updates_section(data: dict[str, Any]) -> str:
    rows = []
    for u in reversed(data["updates"]):
        seconds = "" if u["seconds"] is None else f"{u['seconds']:.1f}"
        rows.append([
            _n(u["update_id"]),
            f'<td class="state-{escape(u["state"])}">{escape(u["state"])}</td>',
            escape(u["started"] or ""),
            seconds,
            _n(u["files_loaded"]),
            _n(u["files_empty"]),
            _n(u["files_rejected"]),
            _n(u["bronze_rows"]),
            _n(u["quarantined"]),
            f'<span class="text">{escape(u["error"] or "")}</span>',
        ])
    headers = ["update", "state", "started (UTC)", "seconds", "files loaded", "empty",
               "rejected", "rows into bronze", "quarantined", "error"]
    return _table(headers, rows, "updates", {0, 3, 4, 5, 6, 7, 8})


def _expectations_section(data: dict[str, Any]) -> str:
    if not data["updates"]:
        return _table([], [], "expectations", set())
    last = data["updates"][-1]
    rows = [
        [escape(rule["name"]), escape(flow["flow"]), _n(rule["passed_records"]),
         _n(rule["failed_records"])]
        for flow in last["flows"] for rule in flow["expectations"]
    ]
    table = _table(["rule", "flow", "passed", "failed"], rows, "expectations", {2, 3})
    return f"<p>Last update ({escape(last['update_id'])}):</p>{table}"


def _quarantine_section(data: dict[str, Any]) -> str:
    quarantine = data["quarantine"]
    rows = []
    for rule, count in quarantine["reasons"].items():
        for sample in quarantine["samples"].get(rule, []):
            rows.append([
                escape(rule), _n(count), escape(sample["file"]), _n(sample["row"]),
                escape(", ".join(sample["failed_rules"])),
                f'<span class="text">{escape(sample["text"])}</span>',
                f'<code>{escape(sample.get("now") or "")}</code>',
            ])
    headers = ["rule", "rows failing it", "file", "row", "all failed rules", "text as sent",
               "file now at"]
    intro = f"<p>{quarantine['total']:,} quarantined row(s); up to 5 samples per rule.</p>"
    return intro + _table(headers, rows, "quarantine", {1, 3})


def _rows_section(data: dict[str, Any]) -> str:
    """Where each AUTO CDC flow's rows went in the last update: the buckets add up to the
    rows in (`orderlake.engine.run.accounting`)."""
    last = data["updates"][-1] if data["updates"] else {"flows": []}
    flows = [f for f in last["flows"] if f.get("rows_went") is not None]
    labels: list[str] = []
    for flow in flows:
        labels.extend(label for label in flow["rows_went"] if label not in labels)
    rows = [
        [escape(f["flow"]), _n(f["rows_in"]), *[_n(f["rows_went"].get(lb, 0)) for lb in labels]]
        for f in flows
    ]
    numeric = set(range(1, len(labels) + 2))
    return _table(["flow", "rows in", *labels], rows, "rows-went", numeric)


def _files_section(data: dict[str, Any]) -> str:
    """The last update's files: what each was, and where it is now (rows keep the path they
    were loaded from, in `_source_file`)."""
    last = data["updates"][-1] if data["updates"] else {"files": []}
    rows = [
        [escape(f["file"]), escape(f["outcome"]), f'<code>{escape(f["moved_to"])}</code>']
        for f in last.get("files") or []
    ]
    return _table(["file", "outcome", "now at"], rows, "files", set())


def _rejected_section(data: dict[str, Any]) -> str:
    rows = [
        [escape(r["file"]), escape(r["reason"]), escape(r["update"]), escape(r["at"])]
        for r in data["rejected_files"]
    ]
    return _table(["file", "reason", "update", "at"], rows, "rejected", set())


SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const charts = {};
  const fmt = (v) => (v === null || v === undefined) ? '?' : v.toLocaleString('en-US');
  function make(id, option) {
    const el = document.getElementById(id);
    const chart = echarts.init(el, null, {renderer: 'canvas'});
    chart.setOption(Object.assign({animation: false}, option));
    charts[id] = chart;
  }
  // Graph: datasets placed by depth (longest path from a source), flows as edges.
  const nodes = data.graph.nodes, edges = data.graph.edges;
  const depth = {};
  nodes.forEach((n) => { depth[n.name] = 0; });
  for (let i = 0; i < nodes.length; i++) {
    edges.forEach((e) => {
      if (e.source in depth && e.target in depth && e.source !== e.target) {
        depth[e.target] = Math.max(depth[e.target], depth[e.source] + 1);
      }
    });
  }
  const column = {};
  const kindName = (k) => String(k).toLowerCase().replace(/_/g, ' ');
  const colors = {FILES: '#9aa5b1', STREAMING_TABLE: '#2f6fde', VIEW: '#7c5cd6'};
  make('graph', {
    tooltip: {formatter: (p) => p.dataType === 'edge'
      ? `${p.data.flow} (${p.data.kind})<br>${fmt(p.data.rows_in)} rows in, `
        + `${fmt(p.data.rows_out)} out (last update)`
      : `${p.data.name} (${p.data.kind})<br>${fmt(p.data.rows)} rows`},
    series: [{
      type: 'graph', layout: 'none', roam: true, symbol: 'roundRect',
      symbolSize: [190, 62], edgeSymbol: ['none', 'arrow'], edgeSymbolSize: 10,
      label: {show: true, color: '#fff', fontSize: 12, lineHeight: 16, formatter: (p) =>
        `${p.data.name}\n${kindName(p.data.kind)}`
        + (p.data.rows === null ? '' : `\n${fmt(p.data.rows)} rows`)},
      edgeLabel: {show: true, fontSize: 11, color: '#334e68', formatter: (p) =>
        `${p.data.flow}: ` + (p.data.rows_out === null ? kindName(p.data.kind)
          : (p.data.rows_in === null ? '' : `${fmt(p.data.rows_in)} in / `)
            + `${fmt(p.data.rows_out)} out`)},
      lineStyle: {width: 2, color: '#829ab1', curveness: 0},
      data: nodes.map((n) => {
        const d = depth[n.name];
        column[d] = (column[d] || 0) + 1;
        return Object.assign({}, n, {x: d * 300, y: column[d] * 140,
          itemStyle: {color: colors[n.kind] || '#3e4c59'}});
      }),
      links: edges,
    }],
  });
  // Updates: rows into bronze and quarantined (bars), duration (line).
  const ids = data.updates.map((u) => u.update_id);
  make('updates-chart', {
    tooltip: {trigger: 'axis'}, legend: {top: 0},
    grid: {left: 60, right: 60, top: 40, bottom: 40},
    xAxis: {type: 'category', name: 'update', data: ids},
    yAxis: [{type: 'value', name: 'rows'}, {type: 'value', name: 'seconds'}],
    series: [
      {name: 'rows into bronze', type: 'bar', data: data.updates.map((u) => ({
        value: u.bronze_rows,
        itemStyle: {color: u.state === 'COMPLETED' ? '#2f6fde' : '#d92d20'}}))},
      {name: 'quarantined', type: 'bar', data: data.updates.map((u) => u.quarantined)},
      {name: 'files rejected', type: 'bar', data: data.updates.map((u) => u.files_rejected)},
      {name: 'seconds', type: 'line', yAxisIndex: 1, data: data.updates.map((u) => u.seconds)},
    ],
  });
  // Expectations: failed rows per rule per update (stacked); the tooltip adds passed.
  const rules = data.expectations.rules;
  make('expectations-chart', {
    legend: {type: 'scroll', top: 0},
    tooltip: {trigger: 'axis', axisPointer: {type: 'shadow'}, formatter: (items) =>
      `update ${items[0].axisValue}<br>` + items.map((it) => {
        const passed = rules[it.seriesName].passed[it.dataIndex];
        return `${it.marker}${it.seriesName}: ${fmt(it.value)} failed, ${fmt(passed)} passed`;
      }).join('<br>')},
    grid: {left: 60, right: 20, top: 50, bottom: 40},
    xAxis: {type: 'category', name: 'update', data: data.expectations.updates},
    yAxis: {type: 'value', name: 'failed rows'},
    series: Object.keys(rules).map((name) => ({
      name, type: 'bar', stack: 'failed', data: rules[name].failed})),
  });
  const reasons = data.quarantine.reasons, names = Object.keys(reasons).reverse();
  make('quarantine-chart', {
    tooltip: {}, grid: {left: 180, right: 40, top: 20, bottom: 30},
    xAxis: {type: 'value', name: 'rows'},
    yAxis: {type: 'category', data: names},
    series: [{type: 'bar', data: names.map((n) => reasons[n]), itemStyle: {color: '#d97706'},
              label: {show: true, position: 'right'}}],
  });
  window.orderlakeCharts = charts;
  window.addEventListener('resize', () => Object.values(charts).forEach((c) => c.resize()));
  document.body.dataset.rendered = 'yes';
})();
"""


def _echarts() -> str:
    return (files("orderlake.report") / "vendor" / "echarts.min.js").read_text(encoding="utf-8")


def _script_text(text: str) -> str:
    """Script text that no `</script>` inside it can close early."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def render(data: dict[str, Any]) -> str:
    """The whole page, with ECharts and the figures inlined: one file, no network."""
    # `<` only occurs inside JSON strings, where \u003c means the same: no tag can end here.
    payload = json.dumps(data, default=str).replace("<", "\\u003c")
    last = data["updates"][-1] if data["updates"] else None
    summary = (
        f"last update {escape(last['update_id'])}: {escape(last['state'])}"
        if last else "no update has run yet"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>orderlake report</title><style>{CSS}</style></head>
<body>
<h1>orderlake pipeline report</h1>
<p class="meta">generated {escape(data['generated_at'])} from warehouse
<code>{escape(data['warehouse'])}</code> and volume <code>{escape(data['volume'])}</code>;
<span id="summary">{summary}</span></p>
<h2>Pipeline graph</h2>
<p class="meta">Datasets with their row counts; each arrow is a flow with the rows it read and
wrote in the last update.</p>
<div id="graph" class="chart"></div>
{_tables_section(data)}
<h2>Updates</h2>
<div id="updates-chart" class="chart"></div>
{_updates_section(data)}
<h3>Where the rows went (last update)</h3>
<p class="meta">Each AUTO CDC flow's rows in, bucket by bucket: the buckets add up to the rows
in.</p>
{_rows_section(data)}
<h3>Files of the last update</h3>
{_files_section(data)}
<h2>Expectations</h2>
<p class="meta">Rows failing each rule, per update (hover for passed rows).</p>
<div id="expectations-chart" class="chart"></div>
{_expectations_section(data)}
<h2>Quarantine</h2>
<div id="quarantine-chart" class="chart"></div>
{_quarantine_section(data)}
<h2>Rejected files</h2>
{_rejected_section(data)}
<script id="report-data" type="application/json">{payload}</script>
<script>{_script_text(_echarts())}</script>
<script>{SCRIPT}</script>
</body></html>
"""
