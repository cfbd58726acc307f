"""A fleet report: designs on one shared fleet under perturbation sweeps (``spikefleet evaluate --chips ...``).

:func:`fleet_report` draws the test trials, the chips and the runtime noise of a seed exactly as
the experiment runner does (:mod:`spikefleet.seeds`), runs the sweeps
(:func:`~spikefleet.fleet.sweep.run_sweeps`), compares the designs pairwise and formats a table.

The table's ``n_eff`` column is the number of distinct chips behind a row: the fleet size, or 1
where the condition does not vary from chip to chip (quantisation alone, mismatch 0); such rows
are marked with ``*`` and explained under the table, and get no paired comparison.
"""

from __future__ import annotations

import jax
import numpy as np

from spikefleet import seeds
from spikefleet.fleet.chip import fleet_keys
from spikefleet.fleet.plot import plot_robustness
from spikefleet.fleet.quantize import DEFAULT_QUANT_MATRICES
from spikefleet.fleet.stats import format_table as stats_table
from spikefleet.fleet.sweep import Sweep, compare_designs, run_sweeps
from spikefleet.seeds import seed_stream

__all__ = ["fleet_report"]


def fleet_report(designs: dict, task, *, seed: int, trials: int = 200, chips: int = 100, mismatch=None,
                 profile: str = "uniform", quant_bits=None, quant_matrices=DEFAULT_QUANT_MATRICES, noise=None,
                 dead=None, dead_select: str = "random",
                 gain_refit: bool = False, ads_compensation: bool = False, yield_threshold: float = 0.9,
                 chunk: int = 16, plot=None, progress: bool = False) -> dict:
    """Evaluate ``designs`` (name -> model) on one shared fleet under the requested sweeps.

    Test trials come from ``seed_stream(seed, 3)`` (as the test set of a design's test), chips
    from ``fleet_keys(seed, chips)``, runtime noise from ``PRNGKey(seed_stream(seed, RUN_NOISE))``;
    gain re-fitting (optional) uses separate validation trials and 5 separate chips
    (streams ``GAIN_VAL``/``GAIN_CHIPS``, see :mod:`spikefleet.seeds`).
    Returns a JSON-ready dict with per-chip records (each with ``n_effective``, the number of
    distinct chips), paired comparisons (none for conditions where no design varies from chip to
    chip) and a text table. ``progress``: a bar on stderr (design, condition, chips done / total).
    """
    sweeps = []
    if mismatch:
        sweeps.append(Sweep("mismatch", tuple(mismatch), profile=profile))
    if quant_bits:
        sweeps.append(Sweep("quant", tuple(quant_bits), quant_matrices=tuple(quant_matrices)))
    if noise:
        sweeps.append(Sweep("noise", tuple(noise)))
    if dead:
        sweeps.append(Sweep("dead", tuple(dead), dead_select=dead_select))
    if not sweeps:
        sweeps.append(Sweep("mismatch", (0.0,), profile=profile))
    batch = task.generate(trials, seed_stream(seed, seeds.TEST))
    keys = fleet_keys(seed, chips)
    run_key = jax.random.PRNGKey(seed_stream(seed, seeds.RUN_NOISE))
    val_batch = val_keys = None
    if gain_refit:
        val_batch = task.generate(min(trials, 100), seed_stream(seed, seeds.GAIN_VAL))
        val_keys = jax.random.split(jax.random.PRNGKey(seed_stream(seed, seeds.GAIN_CHIPS)), 5)
    records = run_sweeps(designs, task, batch, keys, sweeps, run_key=run_key, chunk=chunk, gain_refit=gain_refit,
                         val_batch=val_batch, val_keys=val_keys, yield_threshold=yield_threshold,
                         compensation=ads_compensation, progress=progress)
    comparisons = compare_designs(records)
    rows = []
    for r in records:
        a, m = r.summaries["accuracy"], r.summaries["mse"]
        same = r.n_effective == 1 and chips > 1
        row = {"design": r.design, "condition": r.condition + (" *" if same else ""), "n_eff": r.n_effective,
               "median acc": a["median"], "IQR": a["iqr"],
               "p5": a["p5"], "worst": a["worst"], f"yield>={yield_threshold:g}": a["yield"],
               "median MSE": m["median"], "rate Hz": r.summaries["rate_hz"]["median"]}
        if "margin" in r.metrics:  # frozen noise: "correct" = margin > 0 on every pattern
            margin = np.asarray(r.metrics["margin"])
            row.update({"correct": float(np.mean(margin > 0)), "median margin": float(np.median(margin)),
                        "p10 margin": float(np.percentile(margin, 10))})
        rows.append(row)
    table = stats_table(rows, list(rows[0]))
    if any(r.n_effective == 1 for r in records) and chips > 1:
        table += (f"\n* n_eff = 1: every one of the {chips} chips is the same network under this condition (no "
                  "mismatch draw, no per-chip death or noise):\n  its p5, worst and yield describe one network, and "
                  "no paired test compares designs there.")
    if plot is not None:
        plot_robustness(records, plot, title=f"{task.name}: {chips} chips x {trials} trials")
    return {"task": task.name, "seed": seed, "chips": chips, "trials": trials, "gain_refit": gain_refit,
            "ads_compensation": ads_compensation,
            "yield_threshold": yield_threshold, "records": [r.to_dict() for r in records],
            "comparisons": comparisons, "table": table}
