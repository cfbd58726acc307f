"""A self-contained HTML report of a fleet evaluation: robustness curves, per-chip distributions,
spike rasters and membrane traces, weight/quantisation histograms and summary tables.

    from spikefleet.experiments.report import render_report
    render_report(rows, "out/report.html", designs={"bptt": net}, task=get_task("xor"), title="XOR")

``rows`` are evaluation results, one per (design, seed, sweep, level)::

    {"design": "bptt", "seed": 0, "sweep": "mismatch", "level": 0.1, "condition": "mismatch=uniformx0.1",
     "metrics": {"accuracy": [per-chip floats], "mse": [...], "rate_hz": [...]}}

:class:`~spikefleet.fleet.sweep.SweepRecord` objects and their ``to_dict()`` (``per_chip``) are
accepted too (seed 0 unless they carry one). Chips of the same design and condition are pooled
over seeds for every summary (:func:`~spikefleet.experiments.summary.pool_rows`); ``n`` (chips) and
the seeds are shown next to each number.

The page has no external references: figures are base64 PNGs, the style sheet is inline, and a
small inline script marks on ``<body>`` whether every image decoded (``data-images-ok``), for
headless-browser checks. The file is written atomically. Missing pieces are skipped with a note
(no ``designs`` or ``task``: no rasters or weights; one level: markers instead of curves).
"""

from __future__ import annotations

import base64
import html
import math
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from spikefleet import _version
from spikefleet.errors import expect
from spikefleet.experiments import report_plots as rp
from spikefleet.experiments.summary import pool_rows
from spikefleet.fleet.stats import summarize
from spikefleet.io import atomic_write_text

__all__ = ["render_report", "summary_rows", "markdown_to_html", "SECTIONS"]

#: (anchor, heading, what the section shows)
SECTIONS = (
    ("overview", "Overview", "Median accuracy of every design under every condition at a glance (green = robust)."),
    ("robustness", "Robustness curves", "For each sweep: median per-chip metric vs perturbation level per design; "
     "the shaded band is the inter-quartile range over chips, the dashed line the 5th percentile of accuracy "
     "(the worst chips; 95th for the MSE) (dotted line: the 0.9 yield threshold)."),
    ("distributions", "Per-chip distributions", "Accuracy of every chip at each level of the mismatch sweep: "
     "the spread and the worst chips that medians hide."),
    ("activity", "Spike rasters and membrane traces", "One task trial on the nominal chip and on a mismatched chip "
     "(uniform 20 %; DYNAP-SE2: dynapse2-frozen 0.5): input, output vs target, raster and a few neurons' traces."),
    ("weights", "Weights and quantisation", "Histograms of the on-chip weight matrices with the 4-bit "
     "quantisation levels and how many weights land on each level."),
    ("tables", "Summary tables", "Per design and condition: median, IQR, 5th percentile, worst chip and yield "
     "(fraction of chips with accuracy ≥ 0.9), chips pooled over seeds."),
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1240px;margin:0 auto;padding:16px 24px 48px}
header{background:#1d2a44;color:#fff;padding:18px 24px}header h1{margin:0 0 6px;font-size:1.6em}
header .meta{font-size:.85em;opacity:.85}
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:18px 0;padding:8px 18px 14px}
h2{border-bottom:2px solid #e3e7ee;padding-bottom:4px}h3{margin:14px 0 6px;font-size:1.05em}
p.what{color:#4a5468;margin-top:0}p.note{color:#8a5a00;background:#fff7e6;padding:4px 8px;border-radius:4px}
figure{margin:8px 0 16px}figure img{max-width:100%;height:auto;display:block;border:1px solid #eef0f4}
figcaption{font-size:.85em;color:#4a5468;margin-top:4px}
table{border-collapse:collapse;font-size:.85em;margin:6px 0 14px}th,td{border:1px solid #dde1e8;padding:3px 8px}
th{background:#eef1f6;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
nav ol{margin:6px 0}nav li{margin:2px 0}.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;
vertical-align:middle;margin-right:4px}
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, broken = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) { broken++; imgs[i].setAttribute("data-broken", "1"); }
  }
  document.body.setAttribute("data-images-total", String(imgs.length));
  document.body.setAttribute("data-images-broken", String(broken));
  document.body.setAttribute("data-images-ok", broken === 0 ? "true" : "false");
});
"""

_MAIN_METRIC = "accuracy"


# ----------------------------------------------------------------------------- rows


def _ordered_keys(groups) -> list:
    designs = list(dict.fromkeys(d for d, _, _ in groups))
    sweeps = list(dict.fromkeys(s for _, s, _ in groups))
    out = []
    for s in sweeps:
        for lv in rp.sweep_levels(s, [lv for _, s2, lv in groups if s2 == s]):
            out += [(d, s, lv) for d in designs if (d, s, lv) in groups]
    return out


def summary_rows(groups: dict, threshold: float = rp.YIELD_THRESHOLD) -> list[dict]:
    """One dict per design and condition: accuracy median/IQR/p5/worst/yield, medians of other metrics."""
    out = []
    for d, s, lv in _ordered_keys(groups):
        g = groups[(d, s, lv)]
        row = {"design": d, "sweep": s, "level": rp.level_label(s, lv), "condition": g.condition or "-",
               "seeds": ",".join(str(x) for x in g.seeds), "n": g.n, "n_eff": g.n_effective}
        acc = g.metrics.get(_MAIN_METRIC)
        if acc is not None and np.isfinite(acc).any():
            sm = summarize(acc, threshold=threshold, nan_policy="omit")
            row.update(median=sm.median, IQR=sm.iqr, p5=sm.p5, worst=sm.worst, **{"yield": sm.yield_})
        for m, vals in g.metrics.items():
            if m != _MAIN_METRIC and np.isfinite(vals).any():
                row[f"median {m}"] = float(np.nanmedian(vals))
        out.append(row)
    return out


# ----------------------------------------------------------------------------- html helpers


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "-" if not math.isfinite(value) else f"{float(value):.4g}"
    return str(value)


def _shade(value: float) -> str:
    """Red (0) → amber → green (1) background for a fraction."""
    v = min(max(float(value), 0.0), 1.0)
    r, g = (255, int(90 + 165 * v / 0.5)) if v < 0.5 else (int(255 - 155 * (v - 0.5) / 0.5), 235)
    return f"background:rgba({r},{g},110,0.45)"


def _table(rows: list[dict], shade=("median", "p5", "worst", "yield")) -> str:
    if not rows:
        return "<p class='note'>(empty table)</p>"
    columns = list(dict.fromkeys(c for r in rows for c in r))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            style = f" style='{_shade(v)}'" if num and c in shade and math.isfinite(float(v)) else ""
            cells.append(f"<td{' class=num' if num else ''}{style}>{_e(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _split_row(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(text: str) -> str:
    """A small Markdown subset, escaped: ``|`` tables, ``#`` headings and paragraphs."""
    out, block = [], []

    def flush():
        if not block:
            return
        rows = [_split_row(x) for x in block if not set(x.replace("|", "").strip()) <= set("-: ")]
        head, rest = rows[0], rows[1:]
        out.append("<table><thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in head) + "</tr></thead><tbody>"
                   + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rest)
                   + "</tbody></table>")
        block.clear()

    for line in str(text).splitlines():
        if line.strip().startswith("|"):
            block.append(line)
            continue
        flush()
        stripped = line.strip()
        if stripped.startswith("#"):
            out.append(f"<h4>{_e(stripped.lstrip('#').strip())}</h4>")
        elif stripped:
            out.append(f"<p>{_e(stripped)}</p>")
    flush()
    return "\n".join(out)


def _extra_table(content) -> str:
    if isinstance(content, str):
        return markdown_to_html(content)
    content = list(content)
    if content and all(isinstance(r, dict) for r in content):
        return _table(content, shade=())
    if content and all(isinstance(r, (list, tuple)) for r in content):
        header = [str(c) for c in content[0]]
        return _table([dict(zip(header, r)) for r in content[1:]], shade=())
    return f"<pre>{_e(content)}</pre>"


def _figure(png: bytes | None, alt: str, caption: str) -> str:
    if not png:
        return f"<p class='note'>{_e(alt)}: nothing to plot.</p>"
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _notes(notes) -> str:
    return "".join(f"<p class='note'>{_e(n)}</p>" for n in notes)


def _versions() -> dict:
    out = {"spikefleet": _version.__version__}
    for mod in ("jax", "numpy", "matplotlib"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - reported, never fatal
            out[mod] = "unavailable"
    out["python"] = platform.python_version()
    return out


# ----------------------------------------------------------------------------- sections


def _section(anchor: str, body: str) -> str:
    _, heading, what = next(s for s in SECTIONS if s[0] == anchor)
    return f"<section id='{anchor}'><h2>{_e(heading)}</h2><p class='what'>{_e(what)}</p>{body}</section>"


def _chips_note(groups) -> str:
    ns = sorted({g.n for g in groups.values()})
    seeds = sorted({s for g in groups.values() for s in g.seeds})
    chips = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    return f"n = {chips} chips per design and condition, pooled over {len(seeds)} seed(s) {seeds}"


def _robustness(groups, colors) -> str:
    if not groups:
        return "<p class='note'>No evaluation rows: no curves.</p>"
    parts = []
    for sweep in dict.fromkeys(s for _, s, _ in groups):
        levels = {lv for _, s, lv in groups if s == sweep}
        shape = "markers with IQR whiskers (one level)" if len(levels) == 1 else "median lines with IQR bands"
        parts.append(f"<h3>{_e(sweep)}</h3>")
        parts.append(_figure(rp.plot_sweep(sweep, groups, colors), f"robustness: {sweep}",
                             f"{sweep} sweep: {shape}; {_chips_note({k: g for k, g in groups.items() if k[1] == sweep})}."))
    return "".join(parts)


def _distributions(groups, colors, seed) -> str:
    sweeps = list(dict.fromkeys(s for _, s, _ in groups))
    if not sweeps:
        return "<p class='note'>No evaluation rows: no distributions.</p>"
    sweep = next((s for s in sweeps if s == "mismatch"), None) or next(
        (s for s in sweeps if s.startswith("mismatch")), None)
    note = ""
    if sweep is None:
        sweep = sweeps[0]
        note = _notes([f"No mismatch sweep in the rows; showing the {sweep!r} sweep instead."])
    png = rp.plot_distributions(sweep, groups, colors, seed=seed)
    mine = {k: g for k, g in groups.items() if k[1] == sweep}
    return note + _figure(png, f"per-chip accuracy: {sweep}", f"{sweep} sweep; {_chips_note(mine)}.")


def _activity(designs, task, colors, seed) -> str:
    if not designs:
        return "<p class='note'>No designs given: rasters and traces skipped.</p>"
    if task is None:
        return "<p class='note'>No task given: rasters and traces skipped.</p>"
    parts = []
    for name, model in designs.items():
        parts.append(f"<h3>{_e(name)}</h3>")
        try:
            png, notes = rp.plot_activity(name, model, task, seed, colors[name])
        except Exception as exc:  # one design's failure must not lose the report
            png, notes = None, [f"{name}: could not simulate ({type(exc).__name__}: {exc})"]
        parts.append(_notes(notes))
        if png:
            parts.append(_figure(png, f"activity: {name}", f"{name}: trial 0 of task.generate(1, {seed}); "
                                 f"mismatched chip = chip 0 of fleet_keys({seed}, ·)."))
    return "".join(parts)


def _weights(designs, colors) -> str:
    if not designs:
        return "<p class='note'>No designs given: weight histograms skipped.</p>"
    parts = []
    for name, model in designs.items():
        try:
            png, notes = rp.plot_weights(name, model, colors[name])
        except Exception as exc:
            png, notes = None, [f"{name}: could not read weights ({type(exc).__name__}: {exc})"]
        parts.append(_notes(notes))
        if png:
            parts.append(_figure(png, f"weights: {name}", f"{name}: float weights and their "
                                 f"{rp.QUANT_BITS}-bit uniform quantisation (grid 'zero', per matrix)."))
    return "".join(parts)


def _tables(groups, tables) -> str:
    parts = []
    rows = summary_rows(groups)
    if rows:
        for sweep in dict.fromkeys(r["sweep"] for r in rows):
            parts.append(f"<h3>{_e(sweep)}</h3>")
            parts.append(_table([{k: v for k, v in r.items() if k != "sweep"} for r in rows if r["sweep"] == sweep]))
        parts.append("<p class='what'>median, IQR, p5, worst: per-chip accuracy; yield: fraction of chips with "
                     f"accuracy ≥ {rp.YIELD_THRESHOLD}; n: chips pooled over the listed seeds; n_eff: distinct "
                     "networks among them (one per seed where the condition is the same on every chip: "
                     "quantisation only, mismatch 0 — there p5, worst and yield describe n_eff networks, "
                     "not n chips).</p>")
    else:
        parts.append("<p class='note'>No evaluation rows.</p>")
    for i, item in enumerate(tables or ()):
        title, content = item if isinstance(item, (list, tuple)) and len(item) == 2 else (f"table {i + 1}", item)
        parts.append(f"<h3>{_e(title)}</h3>{_extra_table(content)}")
    return "".join(parts)


def _header(title, groups, designs, colors) -> str:
    versions = " · ".join(f"{k} {_e(v)}" for k, v in _versions().items())
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    names = list(colors)
    legend = " ".join(f"<span class='swatch' style='background:{colors[d]}'></span>{_e(d)}" for d in names)
    sweeps = ", ".join(_e(s) for s in dict.fromkeys(s for _, s, _ in groups)) or "none"
    toc = "".join(f"<li><a href='#{a}'>{_e(h)}</a>: {_e(w)}</li>" for a, h, w in SECTIONS)
    data = _e(_chips_note(groups)) if groups else "no evaluation rows"
    return (f"<header><h1>{_e(title or 'spikefleet fleet report')}</h1>"
            f"<div class='meta'>generated {date} · {versions}</div></header><main>"
            f"<section id='contents'><h2>Contents</h2><p>Designs: {legend or 'none'}<br>Sweeps: {sweeps}<br>"
            f"Data: {data}; simulated designs: {len(designs or {})}.</p><nav><ol>{toc}</ol></nav></section>")


def render_report(rows, out_path, *, designs=None, task=None, title: str = "", tables=None, seed: int = 0) -> Path:
    """Write the HTML report of ``rows`` (see the module docstring) to ``out_path``; returns the path.

    ``designs``: ``{name: model}`` for rasters, traces and weight histograms (optional);
    ``task``: its ``generate(1, seed)`` trial drives the rasters; ``tables``: extra
    ``(title, markdown string | list of dicts | list of rows with a header row)`` appended to the
    tables section; ``seed``: the trial, the mismatched chip and the jitter of the dots.
    """
    expect(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", "a non-negative integer", seed)
    expect(designs is None or isinstance(designs, dict), "designs", "a dict name -> model", type(designs).__name__)
    groups = pool_rows(list(rows))
    colors = rp.design_colors([d for d, _, _ in groups] + list(designs or {}))
    body = [
        _header(title, groups, designs, colors),
        _section("overview", _figure(rp.plot_overview(groups, colors), "overview heat map",
                                     "Median per-chip accuracy; columns are sweep levels.") if groups
                 else "<p class='note'>No evaluation rows.</p>"),
        _section("robustness", _robustness(groups, colors)),
        _section("distributions", _distributions(groups, colors, seed)),
        _section("activity", _activity(designs, task, colors, seed)),
        _section("weights", _weights(designs, colors)),
        _section("tables", _tables(groups, tables)),
    ]
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title or 'spikefleet fleet report')}</title><style>{_CSS}</style>"
            f"<script>{_SCRIPT}</script></head><body>{''.join(body)}</main></body></html>\n")
    out = Path(out_path)
    atomic_write_text(out, page)
    return out
