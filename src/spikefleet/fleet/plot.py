"""Robustness plots: metric vs perturbation level, median with IQR band, one line per design."""

from __future__ import annotations

import io
from pathlib import Path
import matplotlib
import matplotlib.pyplot as plt

from spikefleet.io import atomic_write_bytes

__all__ = ["plot_robustness"]

_XLABEL = {"mismatch": "mismatch level (relative σ)", "quant": "weight bits (0 = full precision)",
           "noise": "membrane noise s (fraction of gap per step)", "dead": "fraction of dead neurons"}
_YLABEL = {"accuracy": "accuracy", "mse": "output MSE vs target", "rate_hz": "firing rate (Hz)"}


def plot_robustness(records, path: str | Path, metric: str = "accuracy", title: str | None = None) -> Path:
    """Write a PNG with one panel per sweep kind; returns the path (written atomically)."""

    matplotlib.use("Agg")

    sweeps = list(dict.fromkeys(r.sweep for r in records))
    designs = list(dict.fromkeys(r.design for r in records))
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.2 * len(sweeps), 3.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
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
        ax.set_xlabel(_XLABEL.get(sweep, sweep))
        ax.set_ylabel(_YLABEL.get(metric, metric))
        if metric == "accuracy":
            ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"{sweep} (median, IQR band)", fontsize=10)
    axes[0][0].legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
