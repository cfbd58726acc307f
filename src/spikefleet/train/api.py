"""High-level training/evaluation calls used by the CLI (and usable from Python).

``train_and_test`` trains a design and measures it on fresh test trials; ``fleet_report``
evaluates designs on one shared fleet under perturbation sweeps (``spikefleet evaluate``).
The main job (``spikefleet run``) lives in :mod:`spikefleet.experiments.runner`.
"""

from __future__ import annotations

import time

from spikefleet.evaluation import evaluate_model
from spikefleet import seeds
from spikefleet.errors import ConfigError, expect
from spikefleet.seeds import seed_stream
from spikefleet.train.recipes import TrainOutput, train

__all__ = ["train_and_test", "test", "default_model", "MODELS", "fleet_report", "TRAIN_METHODS", "TEACHER_METHODS",
           "train_from_teacher"]

#: every method ``spikefleet train`` offers: the gradient recipes plus Network ADS
TRAIN_METHODS = ("teacher", "bptt", "ads", "force", "reservoir")
#: methods that learn to reproduce a trained teacher's dynamics
TEACHER_METHODS = ("ads", "force")
#: neuron models of gradient-trained designs
MODELS = ("lif", "dynapse2")


def default_model(task_name: str) -> str:
    """``dynapse2`` for the DYNAP-SE2 frozen-noise task, ``lif`` otherwise."""
    return "dynapse2" if task_name == "frozen-noise" else "lif"


def test(model, task, seed: int, trials: int) -> dict:
    """Metrics on ``trials`` fresh test trials (task seed ``seed_stream(seed, 3)``).

    Frozen noise (fixed patterns): the patterns once each, plus spike ``counts`` per pattern and
    neuron and the ``margin`` (min over patterns of target minus other count).
    """
    if task.name == "frozen-noise":
        import numpy as np

        from spikefleet.evaluation import run_outputs
        from spikefleet.tasks.frozen_noise import margins, spike_counts

        batch = task.generate(task.n_out, 0)
        outputs, _ = run_outputs(model, batch.inputs)
        metrics = evaluate_model(model, task, batch)
        counts = spike_counts(outputs)
        return {"trials": task.n_out, **metrics, "counts": counts.astype(int).tolist(),
                "margin": float(np.min(margins(outputs, batch.labels)))}
    batch = task.generate(trials, seed_stream(seed, seeds.TEST))
    return {"trials": trials, **evaluate_model(model, task, batch)}


def train_from_teacher(method: str, task, seed: int, *, teacher=None, progress: bool = True,
                       **config_overrides) -> TrainOutput:
    """Network ADS (spec §8.1) or FORCE (§13.2) on the teacher's dynamics; trains the teacher first
    (same seed) if none is given.

    ``teacher`` is a :class:`~spikefleet.models.rate.RateNetwork`; ``config_overrides`` go to the
    method's config (:class:`~spikefleet.models.ads.ADSConfig`, e.g. ``fast``, ``epochs``,
    ``trials_per_epoch``, ``n``; :class:`~spikefleet.models.force.FORCEConfig`).
    """
    from spikefleet.models.ads import ADSConfig
    from spikefleet.models.force import FORCEConfig
    from spikefleet.train.ads import train_ads
    from spikefleet.train.force import train_force

    expect(method in TEACHER_METHODS, "method", f"one of {TEACHER_METHODS}", method)
    teacher_info = {"source": "given"}
    if teacher is None:
        trained = train(task, "teacher", seed, progress=progress)
        teacher, teacher_info = trained.model, {"source": "trained", "validation": trained.info["validation"]}
    config_cls, train_fn = (ADSConfig, train_ads) if method == "ads" else (FORCEConfig, train_force)
    model, info = train_fn(teacher, task, config_cls(**config_overrides), seed, progress=progress)
    info["teacher"] = teacher_info
    return TrainOutput(model=model, info=info)


def train_and_test(task, method: str, seed: int, *, test_trials: int = 200, teacher=None, fast: bool = True,
                   model: str = "lif", weight_noise: float = 0.0, **kwargs) -> TrainOutput:
    """Train with ``method`` (one of :data:`TRAIN_METHODS`) and test on fresh trials.

    ``model="dynapse2"`` (method ``bptt``): the DYNAP-SE2 recipe of
    :mod:`spikefleet.train.dynapse2` with weight-noise injection ``weight_noise`` (σ);
    ``steps`` sets the number of epochs.
    """
    start = time.perf_counter()
    expect(model in MODELS, "model", f"one of {MODELS}", model)
    if model == "dynapse2":
        from spikefleet.train.dynapse2 import DynapSE2TrainConfig, train_dynapse2

        expect(method == "bptt", "method", "'bptt' for model 'dynapse2'", method)
        steps = kwargs.pop("steps", None)
        progress = kwargs.pop("progress", True)
        unused = {k for k, v in kwargs.items() if v is not None}
        if unused:
            raise ConfigError(f"model 'dynapse2': options {sorted(unused)} do not apply")
        config = DynapSE2TrainConfig(weight_noise=weight_noise, **({} if steps is None else {"epochs": steps}))
        net, info = train_dynapse2(task, config, seed, progress=progress)
        out = TrainOutput(model=net, info=info)
        out.info["test"] = test(out.model, task, seed, test_trials)
        return out
    if method in TEACHER_METHODS or method == "reservoir":
        steps = kwargs.pop("steps", None)
        progress = kwargs.pop("progress", True)
        unused = {k for k, v in kwargs.items() if v is not None}
        if unused:
            raise ConfigError(f"method {method!r}: options {sorted(unused)} apply to gradient methods only")
    if method in TEACHER_METHODS:
        overrides = {} if steps is None else {"epochs": 1, "trials_per_epoch": steps}
        if method == "ads":
            overrides["fast"] = fast
        out = train_from_teacher(method, task, seed, teacher=teacher, progress=progress, **overrides)
    elif method == "reservoir":
        from spikefleet.train.reservoir import ReservoirConfig, train_reservoir

        config = ReservoirConfig() if steps is None else ReservoirConfig(train_trials=steps)
        model, info = train_reservoir(task, config, seed, progress=progress)
        out = TrainOutput(model=model, info=info)
    else:
        out = train(task, method, seed, **kwargs)
    out.info["train_seconds"] = time.perf_counter() - start
    out.info["test"] = test(out.model, task, seed, test_trials)
    return out


def fleet_report(designs: dict, task, *, seed: int, trials: int = 200, chips: int = 100, mismatch=None,
                 profile: str = "uniform", quant_bits=None, quant_matrices=("w_in", "w_rec", "w_out", "w_feedback"), noise=None,
                 dead=None, dead_select: str = "random",
                 gain_refit: bool = False, ads_compensation: bool = False, yield_threshold: float = 0.9,
                 chunk: int = 16, plot=None) -> dict:
    """Evaluate ``designs`` (name -> model) on one shared fleet under the requested sweeps.

    Test trials come from ``seed_stream(seed, 3)`` (as :func:`test`), chips from
    ``fleet_keys(seed, chips)``, runtime noise from ``PRNGKey(seed_stream(seed, RUN_NOISE))``;
    gain re-fitting (optional) uses separate validation trials and 5 separate chips
    (streams ``GAIN_VAL``/``GAIN_CHIPS``, see :mod:`spikefleet.seeds`).
    Returns a JSON-ready dict with per-chip records, paired comparisons and a text table.
    """
    import jax
    import numpy as np

    from spikefleet.fleet.chip import fleet_keys
    from spikefleet.fleet.plot import plot_robustness
    from spikefleet.fleet.stats import format_table as stats_table
    from spikefleet.fleet.sweep import Sweep, compare_designs, run_sweeps

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
                         compensation=ads_compensation)
    comparisons = compare_designs(records)
    rows = []
    for r in records:
        a, m = r.summaries["accuracy"], r.summaries["mse"]
        row = {"design": r.design, "condition": r.condition, "median acc": a["median"], "IQR": a["iqr"],
               "p5": a["p5"], "worst": a["worst"], f"yield>={yield_threshold:g}": a["yield"],
               "median MSE": m["median"], "rate Hz": r.summaries["rate_hz"]["median"]}
        if "margin" in r.metrics:  # frozen noise: "correct" = margin > 0 on every pattern
            margin = np.asarray(r.metrics["margin"])
            row.update({"correct": float(np.mean(margin > 0)), "median margin": float(np.median(margin)),
                        "p10 margin": float(np.percentile(margin, 10))})
        rows.append(row)
    table = stats_table(rows, list(rows[0]))
    if plot is not None:
        plot_robustness(records, plot, title=f"{task.name}: {chips} chips x {trials} trials")
    return {"task": task.name, "seed": seed, "chips": chips, "trials": trials, "gain_refit": gain_refit,
            "ads_compensation": ads_compensation,
            "yield_threshold": yield_threshold, "records": [r.to_dict() for r in records],
            "comparisons": comparisons, "table": table}
