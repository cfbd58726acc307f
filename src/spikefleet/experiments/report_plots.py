"""Figures of the HTML fleet report (:mod:`spikefleet.experiments.report`), each returned as PNG bytes.

Every function builds a :class:`matplotlib.figure.Figure` on the Agg canvas (no pyplot, no global
state), so plots are deterministic for given inputs and ``seed`` and safe to make in any process.
``groups`` maps ``(design, sweep, level)`` to a :class:`~spikefleet.experiments.summary.Group` of per-chip
metrics pooled over seeds (:func:`~spikefleet.experiments.summary.pool_rows`).
"""

from __future__ import annotations

import io

import equinox as eqx
import jax
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spikefleet.fleet.chip import Condition, fleet_keys, realize
from spikefleet.fleet.mismatch import get_profile
from spikefleet.fleet.quantize import quantize_uniform, step_size
from spikefleet.models.dynapse2 import DynapSE2Network
from spikefleet.models.base import core_of
from spikefleet.simulation import simulate, trace_names

__all__ = ["design_colors", "sweep_levels", "level_label", "plot_overview", "plot_sweep", "sweep_figure",
           "plot_distributions", "plot_activity", "plot_weights", "YIELD_THRESHOLD", "QUANT_BITS"]

#: accuracy a chip needs to count towards the yield in the report
YIELD_THRESHOLD = 0.9
#: bits of the quantisation shown in the weight histograms
QUANT_BITS = 4
N_TRACE_NEURONS = 5
MAX_RASTER_NEURONS = 256
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#7f7f7f")
_XLABEL = {"mismatch": "mismatch level σ (relative std of each parameter)",
           "quant": "weight precision (bits per matrix)",
           "noise": "membrane noise s (fraction of threshold–reset gap per step)",
           "dead": "fraction of dead neurons"}
#: the percentile drawn as the worse tail of a metric (accuracy: the worst 5 % of chips; MSE: the top 5 %)
_TAIL = {"accuracy": 5, "agreement": 5, "mse": 95}
_YLABEL = {"accuracy": "accuracy (fraction of trials)", "mse": "output MSE vs target (output units²)",
           "rate_hz": "mean firing rate (Hz)", "agreement": "agreement with teacher (fraction)"}


def design_colors(names) -> dict:
    """One fixed colour per design, in order of first appearance."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def _kind(sweep: str) -> str:
    return sweep.split("+")[0].split(":")[0]


def sweep_levels(sweep: str, levels) -> list:
    """Levels in display order: quantisation sweeps full precision (0) first, then falling bits."""
    levels = sorted(set(float(v) for v in levels))
    if _kind(sweep) == "quant":
        return [v for v in levels if v == 0] + sorted((v for v in levels if v != 0), reverse=True)
    return levels


def level_label(sweep: str, level: float) -> str:
    """Axis label of a level: ``'float'`` or ``'4 bit'`` for quantisation sweeps, the number otherwise."""
    if _kind(sweep) == "quant":
        return "float" if level == 0 else f"{level:g} bit"
    return f"{level:g}"


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _finite(values) -> np.ndarray:
    arr = np.asarray(values, np.float64).reshape(-1)
    return arr[np.isfinite(arr)]


def _designs_of(groups) -> list:
    return list(dict.fromkeys(d for d, _, _ in groups))


# ----------------------------------------------------------------------------- overview and curves


def plot_overview(groups: dict, colors: dict, metric: str = "accuracy") -> bytes | None:
    """Heat map of the median ``metric`` per design (rows) and sweep level (columns)."""
    designs = _designs_of(groups)
    sweeps = list(dict.fromkeys(s for _, s, _ in groups))
    columns = [(s, lv) for s in sweeps for lv in sweep_levels(s, [lv for _, s2, lv in groups if s2 == s])]
    if not designs or not columns:
        return None
    table = np.full((len(designs), len(columns)), np.nan)
    for i, d in enumerate(designs):
        for j, (s, lv) in enumerate(columns):
            g = groups.get((d, s, lv))
            vals = _finite(g.metrics.get(metric, [])) if g else np.empty(0)
            if vals.size:
                table[i, j] = np.median(vals)
    fig = Figure(figsize=(min(2.0 + 0.75 * len(columns), 16), 1.2 + 0.45 * len(designs)))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(table), cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(designs)):
        for j in range(len(columns)):
            if np.isfinite(table[i, j]):
                ax.text(j, i, f"{table[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if 0.25 < table[i, j] < 0.85 else "white")
    ax.set_xticks(range(len(columns)), [f"{s}\n{level_label(s, lv)}" for s, lv in columns], fontsize=8)
    ax.set_yticks(range(len(designs)), designs, fontsize=9)
    for tick, d in zip(ax.get_yticklabels(), designs):
        tick.set_color(colors.get(d, "black"))
    ax.set_title(f"median {metric} per design and condition (chips pooled over seeds)", fontsize=10)
    fig.colorbar(im, ax=ax, label=_YLABEL.get(metric, metric), fraction=0.03, pad=0.02)
    fig.tight_layout()
    return to_png(fig)


def plot_sweep(sweep: str, groups: dict, colors: dict, metrics=("accuracy", "mse", "rate_hz")) -> bytes | None:
    """PNG of :func:`sweep_figure` (``None`` when no metric has values)."""
    fig = sweep_figure(sweep, groups, colors, metrics)
    return None if fig is None else to_png(fig)


def sweep_figure(sweep: str, groups: dict, colors: dict, metrics=("accuracy", "mse", "rate_hz")) -> Figure | None:
    """Median vs level per design with an IQR band, one panel per metric present in the rows, and the
    worse tail as a dashed line (label ``"<design> p5"``: 5th percentile of accuracy and agreement;
    ``"<design> p95"`` for the MSE): the chips a median hides."""
    mine = {k: g for k, g in groups.items() if k[1] == sweep}
    present = [m for m in metrics if any(_finite(g.metrics.get(m, [])).size for g in mine.values())]
    if not present:
        return None
    levels = sweep_levels(sweep, [lv for _, _, lv in mine])
    categorical = _kind(sweep) == "quant" or len(levels) == 1
    xpos = {lv: (i if categorical else lv) for i, lv in enumerate(levels)}
    designs = _designs_of(mine)
    fig = Figure(figsize=(4.6 * len(present), 3.8))
    axes = fig.subplots(1, len(present), squeeze=False)[0]
    for ax, metric in zip(axes, present):
        positive = True
        for k, d in enumerate(designs):
            pts = []
            for lv in levels:
                g = mine.get((d, sweep, lv))
                vals = _finite(g.metrics.get(metric, [])) if g else np.empty(0)
                if vals.size:
                    q25, med, q75, tail = np.percentile(vals, [25, 50, 75, _TAIL.get(metric, 50)])
                    pts.append((xpos[lv], med, q25, q75, tail))
                    positive &= bool(np.all(vals > 0))
            if not pts:
                continue
            x, med, lo, hi, tail = (np.array(c) for c in zip(*pts))
            tail_label = f"{d} p{_TAIL[metric]}" if metric in _TAIL else None
            n = max(mine[(d, sweep, lv)].n for lv in levels if (d, sweep, lv) in mine)
            label = f"{d} (n={n})"
            if len(pts) == 1:  # a single level: a marker with IQR whiskers, designs side by side
                dx = 0.08 * (k - (len(designs) - 1) / 2) * (1 if categorical else max(abs(x[0]), 1e-3))
                ax.errorbar(x + dx, med, yerr=[med - lo, hi - med], fmt="o", color=colors[d], capsize=4,
                            label=label)
                if tail_label:
                    ax.plot(x + dx, tail, linestyle="none", marker="v", color=colors[d], label=tail_label)
            else:
                ax.plot(x, med, "o-", color=colors[d], label=label, linewidth=1.8, markersize=4)
                ax.fill_between(x, lo, hi, color=colors[d], alpha=0.18, linewidth=0)
                if tail_label:
                    ax.plot(x, tail, "--", color=colors[d], label=tail_label, linewidth=1.2)
        if metric in ("accuracy", "agreement"):
            ax.set_ylim(-0.02, 1.02)
            ax.axhline(YIELD_THRESHOLD, color="0.5", linestyle=":", linewidth=1)
        elif metric == "mse" and positive:
            lo_hi = [v for g in mine.values() for v in _finite(g.metrics.get(metric, []))]
            if lo_hi and max(lo_hi) / max(min(lo_hi), 1e-12) > 30:
                ax.set_yscale("log")
        if categorical:
            ax.set_xticks(range(len(levels)), [level_label(sweep, lv) for lv in levels])
            ax.set_xlim(-0.5, len(levels) - 0.5)
        elif len(levels) <= 8:
            ax.set_xticks(levels, [level_label(sweep, lv) for lv in levels])
        ax.set_xlabel(_XLABEL.get(_kind(sweep), f"{sweep} level"))
        ax.set_ylabel(_YLABEL.get(metric, metric))
        tail_note = f", p{_TAIL[metric]} {'triangles' if len(levels) == 1 else 'dashed'}" if metric in _TAIL else ""
        ax.set_title(f"{sweep}: {metric} (median, IQR {'whiskers' if len(levels) == 1 else 'band'}{tail_note})",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_distributions(sweep: str, groups: dict, colors: dict, seed: int = 0,
                       metric: str = "accuracy") -> bytes | None:
    """Per-chip ``metric`` per design at every level of ``sweep``: violins with the chips as dots,
    or histograms when some design has fewer than 5 chips at a level."""
    mine = {k: g for k, g in groups.items() if k[1] == sweep and _finite(g.metrics.get(metric, [])).size}
    if not mine:
        return None
    levels = sweep_levels(sweep, [lv for _, _, lv in mine])
    designs = _designs_of(mine)
    rng = np.random.default_rng(seed)
    few = min(g.n for g in mine.values()) < 5
    ncol = min(len(levels), 4)
    nrow = -(-len(levels) // ncol)
    fig = Figure(figsize=(3.4 * ncol + 0.6, 3.4 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=not few)
    for ax in axes.flat[len(levels):]:
        ax.set_axis_off()
    bins = np.linspace(0, 1, 21) if metric == "accuracy" else 20
    for ax, lv in zip(axes.flat, levels):
        for k, d in enumerate(designs):
            g = mine.get((d, sweep, lv))
            if g is None:
                continue
            vals = _finite(g.metrics[metric])
            if few:
                ax.hist(vals, bins=bins, histtype="step", linewidth=1.8, color=colors[d], label=f"{d} (n={vals.size})")
                continue
            if np.ptp(vals) > 0:
                parts = ax.violinplot([vals], positions=[k], widths=0.8, showmedians=False, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(colors[d])
                    body.set_edgecolor(colors[d])
                    body.set_alpha(0.35)
            jitter = rng.uniform(-0.12, 0.12, vals.size)
            ax.scatter(k + jitter, vals, s=7, color=colors[d], alpha=0.75, linewidths=0)
            ax.hlines(np.median(vals), k - 0.3, k + 0.3, color="black", linewidth=1.5)
        title = f"{sweep} = {level_label(sweep, lv)}"
        if few:
            ax.set_xlabel(_YLABEL.get(metric, metric))
            ax.set_ylabel("chips")
            ax.legend(fontsize=7)
        else:
            ax.set_xticks(range(len(designs)), designs, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel(_YLABEL.get(metric, metric))
            if metric == "accuracy":
                ax.axhline(YIELD_THRESHOLD, color="0.5", linestyle=":", linewidth=1)
                ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"per-chip {metric} ({'histograms: few chips' if few else 'violins; dots = chips, bar = median'})",
                 fontsize=10)
    fig.tight_layout()
    return to_png(fig)


# ----------------------------------------------------------------------------- activity


def _mismatch_for(model):
    if isinstance(core_of(model), DynapSE2Network):
        return get_profile("dynapse2-frozen", 0.5), "dynapse2-frozen 0.5"
    return get_profile("uniform", 0.2), "uniform 20 %"


def _simulate(net, x, key, names):
    res = simulate(net, x, key=key, record=names)
    return res.outputs, res.traces


_JITTED: dict = {}


def _jitted(name: str, fn, **kw):
    """One compiled wrapper per function for the whole process (so repeated reports hit the cache)."""
    if name not in _JITTED:
        _JITTED[name] = eqx.filter_jit(fn, **kw)
    return _JITTED[name]


def _run(net, x, names, key):
    """One compiled simulation shared by the nominal and the mismatched chip (same structure)."""
    outputs, traces = _jitted("simulate", _simulate)(net, x, key, names)
    return np.asarray(outputs, np.float64), {k: np.asarray(v, np.float64) for k, v in traces.items()}


def _quantize(w, bits):
    return quantize_uniform(w, bits, straight_through=False), step_size(w, bits)


def plot_activity(name: str, model, task, seed: int, color: str) -> tuple[bytes | None, list[str]]:
    """Input, output, spike raster and membrane traces of one trial on the nominal chip and on chip 0
    of the fleet of ``seed`` with mismatch. Returns ``(png or None, notes)``."""
    notes = []
    batch = task.generate(1, seed)
    x = np.asarray(batch.inputs[0], np.float32)
    target = np.asarray(batch.targets[0], np.float64) if getattr(batch, "targets", None) is not None else None
    n_in = getattr(model.config, "n_in", None)
    if n_in != x.shape[-1]:
        return None, [f"{name}: the design takes {n_in} input channels, the task gives {x.shape[-1]}; skipped"]
    profile, profile_label = _mismatch_for(model)
    chip = realize(model, fleet_keys(int(seed), 1)[0], Condition(mismatch=profile))
    available = set(trace_names(model))
    spikes_name = "spikes" if "spikes" in available else None
    membrane = next((n for n in ("v", "vmem", "imem", "x") if n in available), None)
    activation = "a" if spikes_name is None and "a" in available else None
    names = tuple(n for n in (spikes_name, membrane, activation) if n)
    key = jax.random.PRNGKey(int(seed))
    runs = [("nominal chip", *_run(model, x, names, key)),
            (f"mismatched chip ({profile_label})", *_run(chip, x, names, key))]
    if spikes_name is None:
        notes.append(f"{name}: rate network (no spikes); showing unit activations instead of a raster")
    dt = float(getattr(task, "dt", None) or getattr(model, "dt", 1e-3))
    steps = x.shape[0]
    t = np.arange(steps) * dt
    nominal = runs[0][2]
    score = nominal[spikes_name].sum(0) if spikes_name else np.var(nominal[activation or membrane], axis=0)
    n_neurons = score.shape[0]
    chosen = np.sort(np.argsort(-score, kind="stable")[:min(N_TRACE_NEURONS, n_neurons)])
    mem = {label: traces[membrane][:, chosen] for label, _, traces in runs} if membrane else {}
    log_scale = membrane == "imem"
    if log_scale:
        mem = {k: np.log10(np.maximum(v, 1e-15)) for k, v in mem.items()}
    span = max((np.ptp(v) for v in mem.values()), default=1.0) or 1.0
    threshold = None
    neurons = getattr(core_of(model), "neurons", None)
    if membrane == "v" and neurons is not None and hasattr(neurons, "threshold"):
        threshold = np.asarray(neurons.threshold, np.float64).reshape(-1)[chosen]

    fig = Figure(figsize=(12, 9.5))
    axes = fig.subplots(4, 2, sharex=True, gridspec_kw={"height_ratios": [1, 1.2, 2.2, 2.2]})
    for col, (label, out, traces) in enumerate(runs):
        ax_in, ax_out, ax_r, ax_m = axes[:, col]
        if x.shape[1] <= 4:
            ax_in.plot(t, x, color="0.3", linewidth=1)
            ax_in.set_ylabel("input (a.u.)")
        else:
            ax_in.imshow(x.T, aspect="auto", origin="lower", cmap="Greys", extent=(0, steps * dt, 0, x.shape[1]),
                         interpolation="nearest")
            ax_in.set_ylabel("input channel")
        ax_in.set_title(f"{name}: {label}", fontsize=10, color=color)
        if out.shape[1] <= 4:
            ax_out.plot(t, out, color=color, linewidth=1.2, label="output")
            if target is not None and target.shape[1] == out.shape[1]:
                ax_out.plot(t, target, color="black", linestyle="--", linewidth=1, label="target")
            ax_out.set_ylabel("output (a.u.)")
            ax_out.legend(fontsize=7, loc="upper right")
        else:
            ax_out.plot(t, out.sum(1), color=color, linewidth=1)
            ax_out.set_ylabel("Σ output spikes")
        if spikes_name:
            s = traces[spikes_name][:, :MAX_RASTER_NEURONS]
            ts, ns = np.nonzero(s)
            ax_r.scatter(t[ts], ns, s=1.5, marker="|", color=color, linewidths=0.6)
            ax_r.set_ylim(-0.5, s.shape[1] - 0.5)
            rate = traces[spikes_name].sum() / max(n_neurons * steps * dt, 1e-12)
            ax_r.set_title(f"spike raster ({int(traces[spikes_name].sum())} spikes, mean {rate:.1f} Hz)", fontsize=9)
            if ts.size == 0:
                ax_r.text(0.5, 0.5, "no spikes", transform=ax_r.transAxes, ha="center", va="center", color="0.4")
            ax_r.set_ylabel("neuron" + (f" (first {MAX_RASTER_NEURONS})" if n_neurons > MAX_RASTER_NEURONS else ""))
        else:
            a = traces[activation or membrane]
            im = ax_r.imshow(a.T, aspect="auto", origin="lower", cmap="coolwarm", vmin=-1, vmax=1,
                             extent=(0, steps * dt, 0, a.shape[1]), interpolation="nearest")
            fig.colorbar(im, ax=ax_r, fraction=0.03, pad=0.01)
            ax_r.set_title("unit activations a = tanh(x) (rate network: no spikes)", fontsize=9)
            ax_r.set_ylabel("unit")
        if membrane:
            for i, j in enumerate(chosen):
                ax_m.plot(t, mem[label][:, i] + 1.15 * span * i, linewidth=0.9, color=_PALETTE[i % len(_PALETTE)])
                if threshold is not None:
                    ax_m.axhline(threshold[i] + 1.15 * span * i, color="0.6", linestyle=":", linewidth=0.7)
            ax_m.set_yticks([1.15 * span * i + np.median(mem[label][:, i]) for i in range(len(chosen))],
                            [f"#{j}" for j in chosen], fontsize=7)
            unit = {"v": "v (model units; dotted = threshold)", "vmem": "V_mem (V)", "imem": "log10 I_mem (A)",
                    "x": "unit state x"}[membrane]
            ax_m.set_ylabel(f"neuron, offset\n{unit}", fontsize=8)
            ax_m.set_title(f"{membrane} of {len(chosen)} most active neurons (stacked)", fontsize=9)
        ax_m.set_xlabel("time (s)")
        for ax in (ax_in, ax_out, ax_r, ax_m):
            ax.grid(alpha=0.25)
    fig.tight_layout()
    return to_png(fig, dpi=90), notes


# ----------------------------------------------------------------------------- weights


def _matrices(model) -> dict:
    core = core_of(model)
    out = {}
    for name in ("w_in", "w_rec", "w_fast", "w_out"):
        w = getattr(core, name, None)
        if w is not None:
            out[name] = np.asarray(w, np.float32)
    for name, get in dict(getattr(type(model), "CHIP_WEIGHTS", {})).items():
        out[name] = np.asarray(get(model), np.float32)
    return out


def plot_weights(name: str, model, color: str, bits: int = QUANT_BITS) -> tuple[bytes | None, list[str]]:
    """Histogram of every on-chip weight matrix with its ``bits``-bit quantisation levels
    (grid ``"zero"``, as the quant sweep) and the counts after quantisation."""
    quantize = _jitted("quantize", _quantize)  # one compilation per shape, not one per eager operation

    mats = _matrices(model)
    if not mats:
        return None, [f"{name}: no weight matrices found"]
    notes = []
    fig = Figure(figsize=(3.6 * len(mats) + 0.4, 3.4))
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    for ax, (mname, w) in zip(axes, mats.items()):
        flat = w.reshape(-1)
        ax.set_xlabel(f"{mname} weight (model units)")
        if flat.size == 0 or np.ptp(flat) == 0:
            value = float(flat[0]) if flat.size else float("nan")
            ax.text(0.5, 0.5, f"constant ({value:g})", transform=ax.transAxes, ha="center", va="center")
            ax.set_title(f"{mname} {tuple(w.shape)}", fontsize=9)
            notes.append(f"{name}.{mname} is constant ({value:g}); nothing to quantise")
            continue
        q, delta = quantize(w, bits)
        q, delta = np.asarray(q).reshape(-1), float(delta)
        ax.hist(flat, bins=int(np.clip(2 * np.sqrt(flat.size), 10, 60)), color=color, alpha=0.55,
                label="float weights")
        levels, counts = np.unique(q, return_counts=True)
        for lv in levels:
            ax.axvline(lv, color="0.45", linewidth=0.6, linestyle=":")
        twin = ax.twinx()
        twin.vlines(levels, 0, counts, color="black", linewidth=2.2, alpha=0.8, label=f"{bits}-bit values")
        twin.plot(levels, counts, "k.", markersize=4)
        twin.set_ylim(0, counts.max() * 1.1)
        twin.set_ylabel(f"weights per {bits}-bit level", fontsize=8)
        err = float(np.sqrt(np.mean((q - flat) ** 2)) / (np.std(flat) or 1.0))
        ax.set_title(f"{mname} {tuple(w.shape)}: {levels.size} levels, Δ={delta:.3g}\n"
                     f"RMS error {100 * err:.1f} % of std", fontsize=9)
        ax.set_ylabel("weights per bin (float)", fontsize=8)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left")
    fig.suptitle(f"{name}: on-chip weights, float (bars) and {bits}-bit quantised (black stems, dotted levels)",
                 fontsize=10, color=color)
    fig.tight_layout()
    return to_png(fig), notes
