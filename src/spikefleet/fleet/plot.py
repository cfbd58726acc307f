"""Robustness plots: metric vs perturbation level, one colour per design: the median (solid, with
the IQR as a band) and the 5th percentile over chips (dashed: the chips a median hides; the 95th
for a metric where lower is better).

Built on :class:`matplotlib.figure.Figure` and the Agg canvas, never ``matplotlib.pyplot`` (no
global figure state, and no pyplot import on every start of the command line).
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spikefleet.io import atomic_write_bytes

__all__ = ["plot_robustness", "robustness_figure"]

_XLABEL = {"mismatch": "mismatch level (relative σ)", "quant": "weight bits (0 = full precision)",
           "noise": "membrane noise s (fraction of gap per step)", "dead": "fraction of dead neurons"}
_YLABEL = {"accuracy": "accuracy", "mse": "output MSE vs target", "rate_hz": "firing rate (Hz)"}


def robustness_figure(records, metric: str = "accuracy", title: str | None = None) -> Figure:
    """The figure of :func:`plot_robustness`: one panel per sweep kind; per design a solid median line
    (label: the design), an IQR band and a dashed 5th-percentile line (label: ``"<design> p5"``; the
    95th, ``"<design> p95"``, for a metric where lower is better, such as the MSE)."""
    sweeps = list(dict.fromkeys(r.sweep for r in records))
    designs = list(dict.fromkeys(r.design for r in records))
    fig = Figure(figsize=(4.2 * len(sweeps), 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(sweeps), squeeze=False)
    colors = rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, sweep in zip(axes[0], sweeps):
        for i, design in enumerate(designs):
            rows = sorted((r for r in records if r.sweep == sweep and r.design == design), key=lambda r: r.level)
            if not rows:
                continue
            x = [r.level for r in rows]
            s = [r.summaries[metric] for r in rows]
            color = colors[i % len(colors)]
            ax.plot(x, [v["median"] for v in s], "o-", color=color, label=design)
            ax.fill_between(x, [v["q25"] for v in s], [v["q75"] for v in s], color=color, alpha=0.2, linewidth=0)
            tail = "p5" if s[0].get("higher_is_better", True) else "p95"  # the worse chips' side
            ax.plot(x, [v[tail] for v in s], "--", color=color, linewidth=1.2, label=f"{design} {tail}")
        ax.set_xlabel(_XLABEL.get(sweep, sweep))
        ax.set_ylabel(_YLABEL.get(metric, metric))
        if metric == "accuracy":
            ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"{sweep} (median, IQR band, dashed: worst 5 % of chips)", fontsize=9)
    axes[0][0].legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_robustness(records, path: str | Path, metric: str = "accuracy", title: str | None = None) -> Path:
    """Write a PNG with one panel per sweep kind (:func:`robustness_figure`); returns the path (written atomically)."""
    fig = robustness_figure(records, metric, title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
