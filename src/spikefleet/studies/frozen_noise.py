r"""DYNAP-SE2 training from scratch on frozen noise, with and without weight-noise injection.

Çakal et al. 2024: results and Çakal et al. 2024: acceptance experiments. For every seed two networks train from the same
initial weights: **A** (no noise) and **B** (weight-noise injection ``σ = 0.1``). Each is then
evaluated on one shared fleet of ``chips`` chips drawn from the ``dynapse2-frozen`` profile
(all 24 circuit parameters, ``σ = level/3``) at each level; a chip is *correct* when the
target neuron fires strictly more than the other for both patterns (margin > 0).

Reported per run: nominal spike counts, loss start → end, correct fraction per level, median
margin at 30 %, 10th-percentile margin at 50 %; and averaged over seeds. The runs are independent
units on the experiment engine's backends (:func:`~spikefleet.experiments.backends.run_all`: ``jobs``
local worker processes, or Ray) — each run is sequential, tiny-array work that one core does best.

    spikefleet study frozen-noise --seeds 0,1,2,3 --epochs 30000 --jobs 8 --out e7c
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from spikefleet import checkpoint
from spikefleet.experiments.backends import run_all
from spikefleet.fleet.chip import Condition, fleet_keys
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import get_profile
from spikefleet.io import atomic_write_text, write_json
from spikefleet.tasks import get_task
from spikefleet.train.design import test_design as test
from spikefleet.train.dynapse2 import DynapSE2TrainConfig, train_dynapse2

__all__ = ["run_one", "run_e7c", "format_e7c", "run_study"]

LEVELS = (0.1, 0.3, 0.5)


def run_one(seed: int, sigma: float, epochs: int, chips: int = 200, levels=LEVELS, chip_seed: int = 2022,
            out_dir: str | None = None) -> dict:
    """Train one network and evaluate it on the shared fleet; returns a JSON-ready record."""
    task = get_task("frozen-noise")
    start = time.perf_counter()
    net, info = train_dynapse2(task, DynapSE2TrainConfig(epochs=epochs, weight_noise=sigma), seed, progress=False)
    train_s = time.perf_counter() - start
    nominal = test(net, task, seed, task.n_out)
    batch = task.generate(task.n_out, 0)
    keys = fleet_keys(chip_seed, chips)
    per_level = {}
    for level in levels:
        result = evaluate_fleet(net, task, batch, keys, Condition(mismatch=get_profile("dynapse2-frozen", level)))
        margin = result.metrics["margin"]
        per_level[f"{level:g}"] = {"correct": float(np.mean(margin > 0)), "median_margin": float(np.median(margin)),
                                   "p10_margin": float(np.percentile(margin, 10)),
                                   "margins": [float(m) for m in margin]}
    record = {"seed": seed, "weight_noise": sigma, "epochs": epochs, "chips": chips, "chip_seed": chip_seed,
              "loss_start": info["loss_start"], "loss_end": info["loss_end"], "train_seconds": train_s,
              "nominal_counts": nominal["counts"], "nominal_margin": nominal["margin"], "levels": per_level}
    if out_dir is not None:
        path = Path(out_dir) / f"dynapse2-seed{seed}-noise{sigma:g}.sfc"
        checkpoint.save(path, net, info, overwrite=True)  # the study's own file: a re-run replaces it
    return record


def _run_unit(payload: dict) -> dict:
    """One run in a backend worker: :func:`run_one` of the payload's keyword arguments."""
    return run_one(**payload)


def run_e7c(seeds, epochs: int = 30_000, *, chips: int = 200, sigma: float = 0.1, jobs: int = 2,
            out_dir: str | None = None, backend: str = "local", address: str | None = None) -> list[dict]:
    """A (no noise) and B (``sigma``) for every seed, ``jobs`` runs at once on ``backend`` (``"local"``
    worker processes or ``"ray"``, :mod:`spikefleet.experiments.backends`); records in (seed, A, B) order."""
    work = [{"seed": s, "sigma": v, "epochs": epochs, "chips": chips, "levels": LEVELS, "chip_seed": 2022,
             "out_dir": out_dir} for s in seeds for v in (0.0, sigma)]
    return run_all(_run_unit, work, backend=backend, workers=max(1, jobs), address=address)


def format_e7c(records: list[dict]) -> str:
    """A Markdown table of the runs (A/B pairs per seed) and the means over seeds."""
    lines = ["| seed | variant | loss start → end | nominal counts (p0 / p1) | correct @ 10 / 30 / 50 % "
             "| median margin @ 30 % | p10 margin @ 50 % |", "|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["seed"], r["weight_noise"])):
        lv = r["levels"]
        variant = "A (no noise)" if r["weight_noise"] == 0 else f"B (σ = {r['weight_noise']:g})"
        counts = " / ".join(str(c) for c in r["nominal_counts"])
        lines.append(f"| {r['seed']} | {variant} | {r['loss_start']:.3f} → {r['loss_end']:.3f} | {counts} | "
                     f"{lv['0.1']['correct']:.3f} / {lv['0.3']['correct']:.3f} / {lv['0.5']['correct']:.3f} | "
                     f"{lv['0.3']['median_margin']:g} | {lv['0.5']['p10_margin']:g} |")
    for name, pick in (("A", lambda r: r["weight_noise"] == 0), ("B", lambda r: r["weight_noise"] > 0)):
        rs = [r for r in records if pick(r)]
        if rs:
            mean = {k: np.mean([r["levels"][k]["correct"] for r in rs]) for k in ("0.1", "0.3", "0.5")}
            p10 = np.mean([r["levels"]["0.5"]["p10_margin"] for r in rs])
            nominal_ok = sum(r["nominal_margin"] > 0 for r in rs)
            lines.append(f"| mean | {name} ({nominal_ok}/{len(rs)} correct at nominal) | | | {mean['0.1']:.3f} / "
                         f"{mean['0.3']:.3f} / {mean['0.5']:.3f} | | {p10:.1f} |")
    return "\n".join(lines)


def run_study(out_dir, seeds, epochs: int = 30_000, *, chips: int = 200, jobs: int = 2, backend: str = "local",
              address: str | None = None) -> tuple[str, float]:
    """:func:`run_e7c` writing ``out_dir/records.json``, ``table.md`` and the checkpoints; returns the table
    and the wall time in seconds."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    records = run_e7c(seeds, epochs, chips=chips, jobs=jobs, out_dir=str(out_dir), backend=backend, address=address)
    table = format_e7c(records)
    write_json(out_dir / "records.json", records, end="")
    atomic_write_text(out_dir / "table.md", table + f"\n\nwall time {time.perf_counter() - start:.0f} s\n")
    return table, time.perf_counter() - start
