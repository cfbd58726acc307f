r"""E7c: DYNAP-SE2 training from scratch on frozen noise, with and without weight-noise injection.

Spec ``dynapse2.md`` §10.3 and §13 (E7c). For every seed two networks train from the same
initial weights: **A** (no noise) and **B** (weight-noise injection ``σ = 0.1``). Each is then
evaluated on one shared fleet of ``chips`` chips drawn from the ``dynapse2-frozen`` profile
(all 24 circuit parameters, ``σ = level/3``) at each level; a chip is *correct* when the
target neuron fires strictly more than the other for both patterns (margin > 0).

Reported per run: nominal spike counts, loss start → end, correct fraction per level, median
margin at 30 %, 10th-percentile margin at 50 %; and averaged over seeds. Runs execute in
separate processes (``jobs``) — each run is sequential, tiny-array work that one core does best.

    python -m spikefleet.studies.frozen_noise --seeds 0,1,2,3 --epochs 30000 --jobs 8 --out e7c
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["run_one", "run_e7c", "format_e7c"]

LEVELS = (0.1, 0.3, 0.5)


def run_one(seed: int, sigma: float, epochs: int, chips: int = 200, levels=LEVELS, chip_seed: int = 2022,
            out_dir: str | None = None) -> dict:
    """Train one network and evaluate it on the shared fleet; returns a JSON-ready record."""
    from spikefleet import checkpoint
    from spikefleet.fleet.chip import Condition, fleet_keys
    from spikefleet.fleet.evaluate import evaluate_fleet
    from spikefleet.fleet.mismatch import get_profile
    from spikefleet.tasks import get_task
    from spikefleet.train.design import test_design as test
    from spikefleet.train.dynapse2 import DynapSE2TrainConfig, train_dynapse2

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
        checkpoint.save(path, net, info)
    return record


def _run_packed(args):
    return run_one(*args)


def run_e7c(seeds, epochs: int = 30_000, *, chips: int = 200, sigma: float = 0.1, jobs: int = 2,
            out_dir: str | None = None) -> list[dict]:
    """A (no noise) and B (``sigma``) for every seed, ``jobs`` processes in parallel."""
    import multiprocessing

    work = [(s, v, epochs, chips, LEVELS, 2022, out_dir) for s in seeds for v in (0.0, sigma)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
        return list(pool.map(_run_packed, work))


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m spikefleet.studies.frozen_noise", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2,3")
    p.add_argument("--epochs", type=int, default=30_000)
    p.add_argument("--chips", type=int, default=200)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="output directory (records.json, table.md, checkpoints)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    start = time.perf_counter()
    records = run_e7c(seeds, args.epochs, chips=args.chips, jobs=args.jobs, out_dir=str(args.out))
    table = format_e7c(records)
    from spikefleet.checkpoint import atomic_write_bytes

    atomic_write_bytes(args.out / "records.json", json.dumps(records, indent=1).encode())
    atomic_write_bytes(args.out / "table.md", (table + f"\n\nwall time {time.perf_counter() - start:.0f} s\n").encode())
    print(table)
    print(f"wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
