r"""Robustness of the Network ADS paper's methods on temporal XOR, on one shared fleet.

Designs (one instance each, seed ``seed``; missing checkpoints are trained first):

=============  ==============================================================================
``ads``        Network ADS with fast balancing weights Ω^f (N = 320, κ = 0.5, k = 75)
``ads-nofast`` the Ω^f = 0 ablation
``bptt``       surrogate-gradient BPTT LIF network (N = 128)
``bptt-noise`` the same trained with parameter-noise injection (uniform profile, σ = 0.2)
``force``      FORCE (RLS) LIF network
``reservoir``  liquid-state machine with a ridge readout
=============  ==============================================================================

Sweeps (the Network ADS figures' perturbations, one at a time): uniform mismatch 0/5/10/20 %
(Büchel et al. 2021: parameter mismatch: Ω^f, τ_f, τ_r exempt; FORCE's feedback encoders E perturbed), quantisation
full/6/5/4/3 bits per matrix (``quant``: W_in, Ω^s, W_out and FORCE's E; Ω^f *not* quantised,
as the reference; ``quant+fast``: Ω^f quantised too, ADS designs only), membrane noise
s = 0/0.01/0.05/0.1 of the threshold–reset gap per step, neuron death 0/40 % (random neurons,
whole trial).

Every design sees the same chips (``fleet_keys(seed, chips)``) and test trials, so per-chip
results are paired. Accuracy is scored against the **true** label; ``agreement`` against the
**teacher's** decision (the label the paper uses for ADS and FORCE). Gains and the Büchel et al. 2021: general protocol
down-scaling are off unless ``--gain-refit`` / ``--ads-compensation`` are given; the table
header states which.

    spikefleet study xor-robustness --out xor-robustness [--checkpoints DIR] \
        [--chips 100] [--trials 200] [--seed 0] [--gain-refit] [--ads-compensation]
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from spikefleet import checkpoint, seeds
from spikefleet.errors import ConfigError
from spikefleet.simulation import run_outputs
from spikefleet.fleet.chip import fleet_keys
from spikefleet.fleet.plot import plot_robustness
from spikefleet.fleet.sweep import Sweep, run_sweeps
from spikefleet.io import atomic_write_text, write_json
from spikefleet.seeds import seed_stream
from spikefleet.tasks import get_task
from spikefleet.models.ads import ADSNetwork
from spikefleet.train.design import train_and_test

__all__ = ["DESIGNS", "SWEEPS", "load_or_train", "run", "format_tables", "run_study"]

#: design name -> (method, train options)
DESIGNS = {
    "ads": ("ads", {}),
    "ads-nofast": ("ads", {"fast": False}),
    "bptt": ("bptt", {}),
    "bptt-noise": ("bptt", {"robust": 0.2}),
    "force": ("force", {}),
    "reservoir": ("reservoir", {}),
}

#: perturbation levels of each sweep of the study (quant 0 = full precision)
SWEEPS = {
    "mismatch": (0.0, 0.05, 0.1, 0.2),
    "quant": (0, 6, 5, 4, 3),
    "noise": (0.0, 0.01, 0.05, 0.1),
    "dead": (0.0, 0.4),
}


def load_or_train(directory: Path, seed: int, *, designs=tuple(DESIGNS), progress: bool = True) -> dict:
    """``{name: model}`` from ``directory/<name>.sfc`` (plus ``teacher``), training what is missing."""
    task = get_task("xor")
    directory.mkdir(parents=True, exist_ok=True)
    models = {}
    path = directory / "teacher.sfc"
    if path.exists():
        models["teacher"] = checkpoint.load(path, kind="rate").model
    else:
        out = train_and_test(task, "teacher", seed, progress=progress)
        checkpoint.save(path, out.model, out.info, overwrite=False)  # trained because missing
        models["teacher"] = out.model
    for name in designs:
        path = directory / f"{name}.sfc"
        if path.exists():
            models[name] = checkpoint.load(path).model
            continue
        method, options = DESIGNS[name]
        kwargs = {"progress": progress}
        if method in ("ads", "force"):
            kwargs["teacher"] = models["teacher"]
        if "fast" in options:
            kwargs["fast"] = options["fast"]
        if "robust" in options:
            kwargs.update(robust="noise", robust_profile="uniform", robust_level=options["robust"])
        out = train_and_test(task, method, seed, **kwargs)
        checkpoint.save(path, out.model, out.info, overwrite=False)  # trained because missing
        models[name] = out.model
    return models


def run(models: dict, *, seed: int = 0, chips: int = 100, trials: int = 200, gain_refit: bool = False,
        ads_compensation: bool = False, chunk: int = 16, sweeps: dict = SWEEPS, progress=None) -> list:
    """Evaluate every design (not the teacher) under every sweep; returns the sweep records."""
    task = get_task("xor")
    batch = task.generate(trials, seed_stream(seed, seeds.TEST))
    teacher_outputs, _ = run_outputs(models["teacher"], batch.inputs)
    teacher_labels = task.decide(teacher_outputs)
    keys = fleet_keys(seed, chips)
    run_key = jax.random.PRNGKey(seed_stream(seed, seeds.RUN_NOISE))
    val = {}
    if gain_refit:
        val = {"val_batch": task.generate(min(trials, 100), seed_stream(seed, seeds.GAIN_VAL)),
               "val_keys": jax.random.split(jax.random.PRNGKey(seed_stream(seed, seeds.GAIN_CHIPS)), 5)}
    designs = {k: v for k, v in models.items() if k != "teacher"}
    plan = [Sweep("mismatch", sweeps["mismatch"]), Sweep("quant", sweeps["quant"]),
            Sweep("noise", sweeps["noise"]), Sweep("dead", sweeps["dead"])]
    common = dict(run_key=run_key, chunk=chunk, gain_refit=gain_refit, compensation=ads_compensation,
                  reference_labels=teacher_labels, progress=progress, **val)
    records = run_sweeps(designs, task, batch, keys, plan, **common)
    ads = {k: v for k, v in designs.items() if isinstance(v, ADSNetwork)}
    if ads:
        fast = Sweep("quant", tuple(b for b in sweeps["quant"] if b), name="quant+fast",
                     quant_matrices=("w_in", "w_rec", "w_out", "w_fast"))
        records += run_sweeps(ads, task, batch, keys, [fast], **common)
    return records


def _cell(values) -> str:
    q1, med, q3 = np.percentile(np.asarray(values), [25, 50, 75])
    return f"{med:.3f} [{q1:.3f}–{q3:.3f}]"


def format_tables(records, *, chips: int, trials: int, gain_refit: bool, ads_compensation: bool) -> str:
    """Markdown tables: accuracy (true label) and agreement with the teacher, median [IQR] over chips."""
    designs = list(dict.fromkeys(r.design for r in records))
    rows = list(dict.fromkeys((r.sweep, r.level) for r in records))
    by = {(r.design, r.sweep, r.level): r for r in records}
    note = (f"{chips} chips x {trials} test trials per cell; median [IQR] over chips; output gain re-fit: "
            f"{'yes' if gain_refit else 'no'}; ADS Ω down-scaling (Büchel et al. 2021: general protocol): {'yes' if ads_compensation else 'no'}; "
            "reference-compatible mode")
    out = []
    for metric, title in (("accuracy", "accuracy vs the true label"), ("agreement", "agreement with the teacher"),
                          ("mse", "output MSE vs target"), ("rate_hz", "firing rate (Hz)")):
        out += [f"### XOR robustness: {title}", "", note, "",
                "| sweep | level | " + " | ".join(designs) + " |", "|---|---|" + "---|" * len(designs)]
        for sweep, level in rows:
            cells = []
            for d in designs:
                r = by.get((d, sweep, level))
                cells.append(_cell(r.metrics[metric]) if r is not None else "—")
            out.append(f"| {sweep} | {level:g} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def run_study(out_dir, *, checkpoints=None, seed: int = 0, chips: int = 100, trials: int = 200, chunk: int = 16,
              designs=tuple(DESIGNS), gain_refit: bool = False, ads_compensation: bool = False,
              progress: bool = True, on_record=None) -> tuple[str, float]:
    """The whole study: :func:`load_or_train` (from ``checkpoints``, default ``out_dir/designs``), :func:`run`,
    then ``out_dir/tables.md``, ``records.json`` and ``robustness.png``. ``on_record(record, seconds)`` is
    called after each evaluated sweep level. Returns the tables and the wall time in seconds."""
    out_dir = Path(out_dir)
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown:
        raise ConfigError(f"--designs: unknown {unknown}; known: {list(DESIGNS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    models = load_or_train(Path(checkpoints) if checkpoints else out_dir / "designs", seed, designs=tuple(designs),
                           progress=progress)

    def each(record):
        if on_record is not None:
            on_record(record, time.perf_counter() - start)

    records = run(models, seed=seed, chips=chips, trials=trials, gain_refit=gain_refit,
                  ads_compensation=ads_compensation, chunk=chunk, progress=each)
    tables = format_tables(records, chips=chips, trials=trials, gain_refit=gain_refit,
                           ads_compensation=ads_compensation)
    seconds = time.perf_counter() - start
    atomic_write_text(out_dir / "tables.md", tables + f"\nwall time {seconds:.0f} s\n")
    write_json(out_dir / "records.json", [r.to_dict() for r in records], end="")
    plot_robustness(records, out_dir / "robustness.png", title=f"XOR: {chips} chips x {trials} trials")
    return tables, seconds
