"""Jinja2 templates, style sheet and the table script of the report.

Kept as Python strings (a DictLoader) so they ship inside the package like any module:
no package-data entry to forget, and `instbench report` works from a wheel as from a
checkout. Pages link only to each other, to `style.css`, `table.js` and copied raw files,
all with relative URLs: the site works from a folder, file:// and GitHub Pages.
"""

from __future__ import annotations

STYLE = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg-alt: #f6f8fa; --link: #0550ae; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0; }
header { background: #24292f; color: #fff; padding: .6rem 1.2rem; }
header a { color: #fff; margin-right: 1.2rem; text-decoration: none; }
header a[aria-current="page"] { text-decoration: underline; font-weight: 600; }
main { padding: 1rem 1.2rem 3rem; max-width: 1280px; }
a { color: var(--link); }
.muted, figcaption { color: var(--muted); }
.banner { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem .8rem; }
.empty { font-size: 1.2rem; padding: 2rem; border: 2px dashed var(--line); }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .6rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--bg-alt); }
th button { all: unset; cursor: pointer; font-weight: 600; }
th button:focus-visible { outline: 2px solid var(--link); }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
.filters { display: flex; gap: 1rem; flex-wrap: wrap; align-items: end; }
.filters label { display: flex; flex-direction: column; font-size: .9rem; }
figure { margin: 1rem 0 2rem; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
dl.details { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.details dt { font-weight: 600; }
code { background: var(--bg-alt); padding: 0 .2rem; }
.flag { color: #9a6700; }
"""

TABLE_JS = """
// Sorting and filtering of tables marked data-sortable, in plain JavaScript.
(function () {
  "use strict";
  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-value");
    if (raw === null) { raw = cell.textContent.trim(); }
    if (numeric) {
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    return raw.toLowerCase();
  }
  function sortBy(table, th) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var index = headers.indexOf(th);
    var numeric = th.getAttribute("data-type") === "number";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }  // unknown values last, either direction
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function applyFilters(table) {
    var text = document.getElementById("filter-text");
    var arch = document.getElementById("filter-arch");
    var q = text ? text.value.trim().toLowerCase() : "";
    var a = arch ? arch.value : "";
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var ok = (!q || row.textContent.toLowerCase().indexOf(q) !== -1) &&
               (!a || row.getAttribute("data-arch") === a);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    var count = document.getElementById("filter-count");
    if (count) { count.textContent = shown + " of " + table.tBodies[0].rows.length + " types"; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"),
      function (table) {
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
          var button = th.querySelector("button");
          if (button) { button.addEventListener("click", function () { sortBy(table, th); }); }
        });
        if (table.hasAttribute("data-unfiltered")) { return; }  // e.g. legacy history
        ["filter-text", "filter-arch"].forEach(function (id) {
          var el = document.getElementById(id);
          if (el) { el.addEventListener("input", function () { applyFilters(table); }); }
        });
        applyFilters(table);
      });
  });
})();
"""

BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · instbench</title>
<link rel="stylesheet" href="{{ root }}style.css">
<script src="{{ root }}table.js" defer></script>
</head>
<body>
<header><nav aria-label="Report">
{%- for href, label, name in nav %}
<a href="{{ root }}{{ href }}"{% if name == page %} aria-current="page"{% endif %}>{{ label }}</a>
{%- endfor %}
</nav></header>
<main>
{% if data.include_sandbox and data.collection_methods
      and data.collection_methods.keys() | reject("equalto", "aws") | list %}
<p class="banner" role="note">This report includes sandbox, local or quick-mode results
(<code>--include-sandbox</code>): they demonstrate the tool and are not measurements of EC2.</p>
{% endif %}
{% block content %}{% endblock %}
<p class="muted">Generated by instbench {{ version }} from {{ data.documents }} result documents;
last measurement {{ last or "none" }}.</p>
</main>
</body>
</html>
"""

EMPTY = """
<p class="empty" role="status">No results in this dataset yet: nothing to show.
Run <code>instbench run</code> (or <code>instbench sync</code>) and build the report again.
{%- if data.excluded %} ({% for why, n in data.excluded.items() %}{{ n }} {{ why
}}{% if not loop.last %}, {% endif %}{% endfor %} left out; pass <code>--include-sandbox</code>
to show them.){% endif %}</p>
"""

INDEX = (
    """{% extends "base.html" %}
{% block title %}Overview{% endblock %}
{% block content %}
<h1>EC2 memory bandwidth: overview</h1>
{% if data.empty %}"""
    + EMPTY
    + """{% else %}
<p>STREAM Triad with every vCPU busy: mean over independent instances, with its 95 %
confidence interval. Click a column header to sort; type to filter.
{% if not has_prices %}No price data was given, so prices are not shown
(<code>--prices FILE</code>).{% endif %}</p>
<div class="filters">
<label>Filter <input id="filter-text" type="search" placeholder="m7, Intel, arm64..."></label>
<label>Architecture <select id="filter-arch"><option value="">all</option>
{% for a in architectures %}<option>{{ a }}</option>{% endfor %}</select></label>
<span id="filter-count" class="muted" aria-live="polite"></span>
</div>
<table id="overview" data-sortable>
<caption class="muted">Instance types measured</caption>
<thead><tr>
{% for label, kind in columns %}<th scope="col" data-type="{{ kind }}"{% if kind == "number"
 %} class="num"{% endif %}><button type="button">{{ label }}</button></th>{% endfor %}
</tr></thead>
<tbody>
{% for r in data.types %}
<tr data-arch="{{ r.architecture or '' }}">
<td data-value="{{ r.instance_type }}"><a href="types/{{ r.instance_type }}.html">{{
 r.instance_type }}</a></td>
<td>{{ r.architecture or "—" }}</td>
<td>{{ r.manufacturer or "—" }}</td>
<td class="num" data-value="{{ r.vcpus or '' }}">{{ r.vcpus or "—" }}</td>
<td class="num" data-value="{{ r.memory_gib or '' }}">{{ fmt(r.memory_gib, 1) }}</td>
<td class="num" data-value="{{ r.triad if r.triad is not none else '' }}">{{ fmt(r.triad) }}
{%- if r.ci_low is not none %} <span class="muted">[{{ fmt(r.ci_low) }}–{{ fmt(r.ci_high)
}}]</span>{% endif %}</td>
<td class="num" data-value="{{ r.per_vcpu if r.per_vcpu is not none else '' }}">{{
 fmt(r.per_vcpu) }}</td>
{% if has_prices %}
<td class="num" data-value="{{ r.price_per_hour or '' }}">{{ fmt(r.price_per_hour, 4) }}</td>
<td class="num" data-value="{{ r.gbps_per_dollar or '' }}">{{ fmt(r.gbps_per_dollar, 1) }}</td>
{% endif %}
<td class="num" data-value="{{ r.n }}">{{ r.n }}</td>
<td data-value="{{ r.last }}">{{ r.last[:10] }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if data.legacy %}
{% from "legacy.html" import legacy_table with context %}
<section id="legacy-history">
<h2>History: the earlier Go collector</h2>
{{ legacy_table(data.legacy, true, "") }}
</section>
{% endif %}
{% endblock %}
"""
)

CHARTS = (
    """{% extends "base.html" %}
{% block title %}Charts{% endblock %}
{% block content %}
<h1>Charts</h1>
{% if data.empty %}"""
    + EMPTY
    + """{% else %}
{% for chart in charts %}
<section>
<h2>{{ chart.title }}</h2>
{% if chart.svg %}
<figure class="chart" role="group" aria-labelledby="cap-{{ chart.name }}">
{{ chart.svg | safe }}
<figcaption id="cap-{{ chart.name }}">{{ chart.caption }}</figcaption>
</figure>
{% else %}
<p class="note" role="note">{{ chart.missing }}</p>
{% endif %}
</section>
{% endfor %}
{% endif %}
{% endblock %}
"""
)

TYPE = """{% extends "base.html" %}
{% block title %}{{ row.instance_type }}{% endblock %}
{% block content %}
<h1>{{ row.instance_type }}</h1>
<p>{{ row.architecture or "?" }} · {{ row.manufacturer or "?" }} · {{ row.vcpus or "?" }} vCPUs ·
{{ fmt(row.memory_gib, 1) }} GiB · {{ row.n }} instance{{ "s" if row.n != 1 }} measured,
last {{ row.last[:10] }}.</p>
<h2>Results</h2>
<p class="muted">n counts instances; the interval is the 95 % t interval of the mean; CV
between instances; within-CV is the spread of trials inside one instance.</p>
<table data-sortable>
<thead><tr>
{% for label, kind in result_columns %}<th scope="col" data-type="{{ kind }}"{% if kind ==
 "number" %} class="num"{% endif %}><button type="button">{{ label }}</button></th>{% endfor %}
</tr></thead>
<tbody>
{% for s in summaries %}
<tr><td>{{ s.benchmark }}</td><td>{{ s.test }}</td><td>{{ s.thread_mode }}</td>
<td>{{ s.metric }} ({{ s.unit }})</td>
<td class="num" data-value="{{ s.n }}">{{ s.n }}</td>
<td class="num" data-value="{{ s.mean }}">{{ fmt(s.mean) }}</td>
<td class="num" data-value="{{ s.median }}">{{ fmt(s.median) }}</td>
<td class="num">{% if s.ci_low is not none %}{{ fmt(s.ci_low) }}–{{ fmt(s.ci_high) }}{% else
 %}—{% endif %}</td>
<td class="num" data-value="{{ s.min }}">{{ fmt(s.min) }}</td>
<td class="num" data-value="{{ s.max }}">{{ fmt(s.max) }}</td>
<td class="num" data-value="{{ s.cv if s.cv is not none else '' }}">{{ pct(s.cv) }}</td>
<td class="num" data-value="{{ s.within_cv if s.within_cv is not none else '' }}">{{
 pct(s.within_cv) }}</td></tr>
{% endfor %}
</tbody>
</table>
<h2>Spread between instances</h2>
{% if spread_svg %}
<figure class="chart" role="group" aria-labelledby="cap-spread">
{{ spread_svg | safe }}
<figcaption id="cap-spread">Each tick is one instance's best-of-trials bandwidth.</figcaption>
</figure>
{% else %}<p class="note">No STREAM samples.</p>{% endif %}
{% if storage_svg %}
<h2>Storage</h2>
<figure class="chart" role="group" aria-labelledby="cap-storage">
{{ storage_svg | safe }}
<figcaption id="cap-storage">IOPS of each fio job with O_DIRECT after the test area was
written once (ebs: an empty gp3 data volume; instance-store: each NVMe disk); a black
tick on a bar is that disk's advertised IOPS ceiling (the volume's provisioned IOPS or
the type's EBS maximum, whichever is lower). Latency percentiles and measured/advertised
ratios are in the table above.</figcaption>
</figure>
{% endif %}
{% if history_svg %}
<h2>History</h2>
<figure class="chart" role="group" aria-labelledby="cap-history">
{{ history_svg | safe }}
<figcaption id="cap-history">Triad (all threads) per ISO week with 95 % intervals; a dashed
line marks a change point, labelled with its size and 95 % interval.</figcaption>
</figure>
{% endif %}
<h2>Change points</h2>
<p class="muted">Each series (benchmark, test, threads, metric) is searched as a whole,
within one CPU model at a time; a change is reported once, at the first week after it, when
it is significant at a 5 % false-discovery rate across the dataset and at least
{{ pct(min_effect) if min_effect is not none else "5 %" }} of the mean.</p>
{% if changes %}
<table id="changes">
<thead><tr><th scope="col">From week</th><th scope="col">Benchmark</th><th scope="col">Test</th>
<th scope="col">Threads</th><th scope="col">Metric</th><th scope="col">CPU model</th>
<th scope="col" class="num">Change [95 % CI]</th>
<th scope="col" class="num">Mean before → after</th>
<th scope="col" class="num">n before / after</th><th scope="col" class="num">q</th></tr></thead>
<tbody>
{% for c in changes %}
<tr class="{{ 'worse' if c.worse else 'better' }}"><td>{{ c.window }}</td><td>{{ c.benchmark }}</td>
<td>{{ c.test }}</td><td>{{ c.thread_mode }}</td><td>{{ c.metric }}</td>
<td>{{ c.cpu_model or "all models" }}</td><td class="num">{{ change_label(c) }}</td>
<td class="num">{{ fmt(c.mean_before) }} → {{ fmt(c.mean_after) }}</td>
<td class="num">{{ c.n_before }} / {{ c.n_after }}</td>
<td class="num">{{ "%.2g" | format(c.q_value) }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p id="no-changes">No change point found.</p>
{% endif %}
{% if mix_changes %}
<ul id="mix-changes">
{% for m in mix_changes %}<li>{{ m.window }}, {{ m.benchmark }} {{ m.test }} {{ m.thread_mode }}
{{ m.metric }}: {{ m.message }} — not a regression (all models pooled: {{
 "%+.1f" | format(m.change * 100) }} %).</li>
{% endfor %}
</ul>
{% endif %}
{% if untested %}
<h3>Not tested</h3>
<ul id="untested">
{% for u in untested %}<li>{{ u.benchmark }} {{ u.test }} {{ u.thread_mode }} {{ u.metric }}{%
 if u.cpu_model %} ({{ u.cpu_model }}){% endif %}: {{ u.reason }}</li>
{% endfor %}
</ul>
{% endif %}
{% if legacy %}
{% from "legacy.html" import legacy_table with context %}
<section id="legacy-history">
<h2>History: the earlier Go collector</h2>
{{ legacy_table(legacy, false, "../") }}
</section>
{% endif %}
<h2>Machine</h2>
{% if machine %}
<dl class="details">
<dt>CPU model</dt><dd>{{ machine.cpu_model }}</dd>
<dt>Architecture</dt><dd>{{ machine.architecture }} ({{ machine.manufacturer }})</dd>
<dt>vCPUs / sockets / NUMA nodes</dt><dd>{{ machine.vcpus }} / {{ machine.sockets }} / {{
 machine.numa_nodes }}</dd>
<dt>Memory</dt><dd>{{ fmt(machine.memory_gib, 2) }} GiB (MemTotal)</dd>
<dt>Compiler</dt><dd><code>{{ machine.compiler or "none recorded" }}</code></dd>
<dt>Flags</dt><dd><code>{{ machine.cflags }}</code></dd>
<dt>AMI</dt><dd>{{ machine.ami_id or "not on EC2" }}</dd>
<dt>OS / kernel</dt><dd>{{ machine.os }} / {{ machine.kernel }}</dd>
<dt>Transparent huge pages</dt><dd>{{ machine.thp or "unknown" }}</dd>
<dt>Region</dt><dd>{{ machine.region }}</dd>
<dt>Collected</dt><dd>{{ machine.collection_method }}</dd>
</dl>
<p class="muted">From the newest result, <a href="../{{ machine.key }}">{{ machine.key }}</a>.</p>
{% else %}<p>No machine details could be read.</p>{% endif %}
<h2>Raw results</h2>
<ul>
{% for key in raw_keys %}<li><a href="../{{ key }}">{{ key }}</a></li>{% endfor %}
</ul>
{% endblock %}
"""

METHODOLOGY = (
    """{% extends "base.html" %}
{% block title %}Methodology{% endblock %}
{% block content %}
<h1>Methodology</h1>
{% if data.empty %}"""
    + EMPTY
    + """{% endif %}
<h2>What is measured</h2>
<p>STREAM (instbench's kernel): Copy, Scale, Add and Triad over arrays far larger than the
caches, with parallel first-touch initialisation, the best of the counted trials after a
discarded first one, and result verification. Bandwidth counts STREAM's bytes (16 per
element for Copy/Scale, 24 for Add/Triad) in GB/s (10<sup>9</sup> bytes/s). Kernels are
compiled on the instance itself with its own compiler.</p>
<dl class="details">
<dt>Compilers</dt><dd>{% for c in data.compilers %}<code>{{ c }}</code>{% if not loop.last
 %}<br>{% endif %}{% else %}none recorded{% endfor %}</dd>
<dt>Flags</dt><dd>{% for c in data.cflags %}<code>{{ c }}</code>{% if not loop.last
 %}<br>{% endif %}{% else %}none recorded{% endfor %}</dd>
<dt>Counted trials (median)</dt><dd>{{ trials or "unknown" }}</dd>
{% for label, values in stream_notes %}
<dt>{{ label }}</dt><dd>{% for v in values %}{{ v }}{% if not loop.last %}<br>{% endif
 %}{% else %}unknown{% endfor %}</dd>
{% endfor %}
</dl>
<h2>Metrics</h2>
<table><thead><tr><th scope="col">Metric</th><th scope="col">Unit</th>
<th scope="col">Better</th><th scope="col">Meaning</th></tr></thead><tbody>
{% for m in metrics %}<tr><td>{{ m.name }}</td><td>{{ m.unit }}</td>
<td>{{ "higher" if m.higher_is_better else "lower" }}</td><td>{{ m.description }}</td></tr>
{% endfor %}</tbody></table>
<h2>Statistics</h2>
<p>The unit of replication is the instance: n counts independent instances (result
documents) of a type. Figures are means over instances with the {{ confidence_pct }} %
t confidence interval of the mean (shown only when n ≥ 2), the median with an
order-statistic interval, and the coefficient of variation between instances. The spread
of trials within one instance is reported beside it, never mixed in.</p>
<h2>This dataset</h2>
<dl class="details">
<dt>Input</dt><dd><code>{{ data.input_dir }}</code></dd>
{% if data.ingest %}
<dt>Documents</dt><dd>{{ data.ingest.files }} files: {{ data.ingest.accepted }} accepted,
{{ data.ingest.duplicates }} duplicates, {{ data.ingest.rejected }} rejected
(quarantined with their reason)</dd>
{% endif %}
<dt>Collection</dt><dd>{% for m, n in data.collection_methods.items() %}{{ n }} {{ m }}{% if
 not loop.last %}, {% endif %}{% else %}none{% endfor %}</dd>
<dt>Left out</dt><dd>{% for why, n in data.excluded.items() %}{{ n }} {{ why }}{% if not
 loop.last %}, {% endif %}{% else %}nothing{% endfor %}{% if not data.include_sandbox %}
(only results measured on real EC2 in full mode are shown){% endif %}</dd>
<dt>Prices</dt><dd>{% if data.prices %}on-demand USD/h, {{ data.prices.region }}, read {{
 data.prices.as_of }} from {{ data.prices.source }}{% else %}no price data{% endif %}</dd>
</dl>
{% endblock %}
"""
)

LEGACY = """{% macro legacy_table(figures, with_type, root) %}
<dl class="details legacy-methods">
{% for f in figures | unique(attribute="benchmark") %}<dt>{{ f.benchmark }}</dt>
<dd>{{ f.method }}</dd>{% endfor %}
</dl>
<table class="legacy" data-sortable data-unfiltered>
<caption class="muted">Files of the earlier Go collector, imported with
<code>instbench import legacy</code>: each measured once, by a different method (see
above), so never averaged with ours or published in the data files. Flags say what in
the file contradicts the instance type; placeholder files are not shown.</caption>
<thead><tr>{% if with_type %}<th scope="col"><button type="button">Type</button></th>{% endif
%}<th scope="col"><button type="button">Measured</button></th>
<th scope="col"><button type="button">Series</button></th>
<th scope="col" data-type="number" class="num"><button type="button">Figures</button></th>
<th scope="col">How</th><th scope="col">Flags</th><th scope="col">Source</th></tr></thead>
<tbody>
{% for f in figures %}<tr>{% if with_type %}<td>{% if f.instance_type in linked %}<a
 href="{{ root }}types/{{ f.instance_type }}.html">{{ f.instance_type }}</a>{% else %}{{
 f.instance_type }}{% endif %}</td>{% endif %}
<td data-value="{{ f.timestamp }}">{{ f.timestamp[:16] | replace("T", " ") }}</td>
<td>{{ f.benchmark }}</td>
<td class="num" data-value="{{ f.headline }}">{% for test, value, unit in f.figures
 %}{{ test }} {{ fmt(value) }}{% if loop.last %} {{ unit }}{% else %}<br>{% endif %}{%
 endfor %}</td>
<td>{{ f.method.split(":")[0] }}</td>
<td>{% for flag in f.flags %}<span class="flag">{{ flag }}</span>{% if not loop.last
 %}<br>{% endif %}{% endfor %}</td>
<td><code>{{ f.source_path }}</code></td></tr>
{% endfor %}
</tbody>
</table>
{% endmacro %}"""

TEMPLATES: dict[str, str] = {
    "base.html": BASE,
    "index.html": INDEX,
    "charts.html": CHARTS,
    "type.html": TYPE,
    "methodology.html": METHODOLOGY,
    "legacy.html": LEGACY,
}
