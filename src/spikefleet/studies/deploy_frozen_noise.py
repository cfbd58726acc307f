r"""Deployment of the frozen-noise networks to DYNAP-SE2 and check what was deployed.

Çakal et al. 2024: weight quantisation, Çakal et al. 2024: mapping and hardware configuration, Çakal et al. 2024: acceptance experiments. For every checkpoint (a trained
:class:`~spikefleet.models.dynapse2.DynapSE2Network`) and each quantisation method
(``alternating``, ``autoencoder``):

1. **Quantisation check** — quantise (through :func:`~spikefleet.hardware.dynapse2.config.deploy`, seed 0) and check
   loss ≤ 6e-3, max |ΔW_in| ≤ 5, max |ΔW_rec| ≤ 3 (simulator units) and every base current of the used
   core > 0;
2. **Round-trip check** — write the configuration (JSON), load it back, check that the masks and signs recovered from
   the file equal the quantiser's, and rebuild the simulator of what was deployed
   (:func:`~spikefleet.hardware.dynapse2.reverse.network_from_config`: read-back Iw and bias currents);
3. nominal classification of both patterns by the rebuilt network (margin > 0);
4. robustness: the same 200 chips (``fleet_keys(2022, 200)``) at 30 % and 50 % ``dynapse2-frozen``
   mismatch (σ = level/3 on the 24 circuit parameters); fraction correct = fraction of chips with
   margin > 0 — for the float design and for each deployed network.

Target (issue): the deployed network classifies both patterns on ≥ 90 % of the chips at 30 %.

    spikefleet study deploy-frozen-noise --checkpoints /tmp/runs/e7c --out e7d
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from spikefleet import checkpoint
from spikefleet.errors import ConfigError
from spikefleet.fleet.chip import Condition, fleet_keys
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import get_profile
from spikefleet.hardware.dynapse2.config import HardwareConfig, deploy
from spikefleet.hardware.dynapse2.reverse import network_from_config, recover
from spikefleet.io import atomic_write_text, write_json
from spikefleet.tasks import get_task
from spikefleet.train.design import test_design as test

__all__ = ["LIMITS", "LEVELS", "run_one", "format_table", "run_study"]

#: Acceptance limits of the quantisation check (Çakal et al. 2024: quality reporting, Çakal et al. 2024: acceptance experiments).
LIMITS = {"loss": 6e-3, "max_abs_in": 5.0, "max_abs_rec": 3.0}
#: ``dynapse2-frozen`` mismatch levels of the robustness check (σ = level/3)
LEVELS = (0.3, 0.5)
METHODS = ("alternating", "autoencoder")


def _fleet(net, task, batch, keys, levels) -> dict:
    out = {}
    for level in levels:
        m = evaluate_fleet(net, task, batch, keys, Condition(mismatch=get_profile("dynapse2-frozen", level)))
        m = m.metrics["margin"]
        out[f"{level:g}"] = {"correct": float(np.mean(m > 0)), "median_margin": float(np.median(m)),
                             "p10_margin": float(np.percentile(m, 10))}
    return out


def run_one(path, out_dir, *, chips: int = 200, chip_seed: int = 2022, levels=LEVELS, methods=METHODS,
            seed: int = 0) -> dict:
    """Float reference plus one deployment per method for the checkpoint at ``path``; a JSON-ready record."""
    path, out_dir = Path(path), Path(out_dir)
    ckpt = checkpoint.load(path, kind="dynapse2")
    net = ckpt.model
    task = get_task("frozen-noise")
    batch = task.generate(task.n_out, 0)
    keys = fleet_keys(chip_seed, chips)
    nominal = test(net, task, 0, task.n_out)
    record = {"checkpoint": str(path), "name": path.stem, "seed": ckpt.info.get("seed"),
              "weight_noise": ckpt.info.get("weight_noise"), "chips": chips, "chip_seed": chip_seed,
              "float": {"counts": nominal["counts"], "margin": nominal["margin"],
                        "levels": _fleet(net, task, batch, keys, levels)}, "deployed": {}}
    w_in, w_rec = np.asarray(net.w_in, np.float64), np.asarray(net.w_rec, np.float64)
    for method in methods:
        start = time.perf_counter()
        dep = deploy(net, method=method, key=seed)
        q = dep.quantization
        seconds = time.perf_counter() - start
        e = q.errors(w_in, w_rec)
        used = list(dep.placement.used_cores)
        iw = q.base_currents[used]
        checks = {"loss": e["loss"] <= LIMITS["loss"], "max_abs_in": e["max_abs_in"] <= LIMITS["max_abs_in"],
                  "max_abs_rec": e["max_abs_rec"] <= LIMITS["max_abs_rec"], "iw_positive": bool(np.all(iw > 0))}
        cfg_path = dep.save(out_dir / "configs" / f"{path.stem}-{method}.json")
        loaded = HardwareConfig.load(cfg_path)
        r = recover(loaded)
        digital = bool(np.array_equal(r.masks_in, q.masks_in) and np.array_equal(r.masks_rec, q.masks_rec)
                       and np.array_equal(r.signs_in, q.signs_in * (q.masks_in > 0))
                       and np.array_equal(r.signs_rec, q.signs_rec * (q.masks_rec > 0)))
        rebuilt = network_from_config(loaded)
        nom = test(rebuilt, task, 0, task.n_out)
        record["deployed"][method] = {
            "quantize_seconds": seconds, "loss": e["loss"], "max_abs_in": e["max_abs_in"],
            "max_abs_rec": e["max_abs_rec"], "rel_fro": e["rel_fro"], "n_allocated": e["n_allocated"],
            "n_synapses": e["n_synapses"], "iw_nA": [float(x) * 1e9 for x in iw.ravel()],
            "iw_read_back_nA": [dep.translations[g].currents[f"Iw_{b}"] * 1e9 for g in used for b in range(4)],
            "e7d": checks, "e7d_pass": all(checks.values()), "digital_round_trip": digital,
            "config": str(cfg_path), "counts": nom["counts"], "margin": nom["margin"],
            "levels": _fleet(rebuilt, task, batch, keys, levels)}
    return record


def format_table(records: list[dict]) -> str:
    """Markdown: one row per (checkpoint, float / method), then per-variant means."""
    lines = ["| network | design | loss | max \\|ΔW_in\\| | max \\|ΔW_rec\\| | Iw (nA) | quantisation check | round trip "
             "| nominal counts (p0 / p1) | correct @ 30 / 50 % | p10 margin @ 50 % |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r.get("weight_noise") or 0, r.get("seed") or 0)):
        variant = "A" if not r.get("weight_noise") else "B"
        name = f"seed {r['seed']} {variant}"
        rows = [("float", r["float"], None)] + [(m, d, d) for m, d in r["deployed"].items()]
        for label, d, q in rows:
            counts = " / ".join(str(c) for c in d["counts"])
            lv = d["levels"]
            quant = "— | — | — | — | — | —"
            if q:
                quant = (f"{q['loss']:.2e} | {q['max_abs_in']:.2f} | {q['max_abs_rec']:.2f} | "
                         f"{', '.join(f'{x:.1f}' for x in q['iw_nA'])} | {'pass' if q['e7d_pass'] else 'FAIL'} | "
                         f"{'exact' if q['digital_round_trip'] else 'DIFFERS'}")
            lines.append(f"| {name} | {label} | {quant} | {counts} | {lv['0.3']['correct']:.3f} / "
                         f"{lv['0.5']['correct']:.3f} | {lv['0.5']['p10_margin']:g} |")
    lines.append("")
    lines.append("| variant | design | nominal correct | mean correct @ 30 / 50 % | networks ≥ 0.90 @ 30 % |")
    lines.append("|---|---|---|---|---|")
    for variant, pick in (("A (no noise)", lambda r: not r.get("weight_noise")),
                          ("B (weight noise)", lambda r: bool(r.get("weight_noise")))):
        rs = [r for r in records if pick(r)]
        if not rs:
            continue
        for design in ["float", *rs[0]["deployed"]]:
            ds = [r["float"] if design == "float" else r["deployed"][design] for r in rs]
            c30 = [d["levels"]["0.3"]["correct"] for d in ds]
            c50 = [d["levels"]["0.5"]["correct"] for d in ds]
            lines.append(f"| {variant} | {design} | {sum(d['margin'] > 0 for d in ds)}/{len(ds)} | "
                         f"{np.mean(c30):.3f} / {np.mean(c50):.3f} | {sum(c >= 0.9 for c in c30)}/{len(ds)} |")
    return "\n".join(lines)


def run_study(checkpoints, out_dir, *, chips: int = 200, seed: int = 0, on_record=None) -> tuple[str, float]:
    """:func:`run_one` for every checkpoint (``*.sfc``) in the directory ``checkpoints``, writing
    ``out_dir/records.json``, ``table.md`` and ``configs/``; ``on_record(path, record)`` is called after each.
    Returns the table and the wall time in seconds."""
    checkpoints, out_dir = Path(checkpoints), Path(out_dir)
    paths = sorted(checkpoints.glob("*.sfc"))
    if not paths:
        raise ConfigError(f"--checkpoints: expected a directory of frozen-noise study checkpoints (*.sfc), got none in {checkpoints}")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    records = []
    for path in paths:
        records.append(run_one(path, out_dir, chips=chips, seed=seed))
        if on_record is not None:
            on_record(path, records[-1])
    table = format_table(records)
    write_json(out_dir / "records.json", records, end="")
    atomic_write_text(out_dir / "table.md", table + f"\n\nwall time {time.perf_counter() - start:.0f} s\n")
    return table, time.perf_counter() - start
