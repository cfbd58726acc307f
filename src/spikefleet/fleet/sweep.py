"""Robustness sweeps: several designs × perturbation levels on one shared fleet.

Each sweep varies one perturbation type at a time (as in the Network ADS figures):

* ``mismatch`` — levels are profile levels (``uniform``: the relative sigma); level 0 is the
  nominal chip;
* ``quant`` — bits per weight matrix (level ``0`` means full precision);
* ``noise`` — membrane noise, fraction of the threshold–reset gap per step;
* ``dead`` — fraction of silenced neurons.

All designs see the same chips (same keys) and the same trials, so per-chip results are
paired: :func:`compare_designs` runs a Wilcoxon signed-rank test per condition — except where no
design varies from chip to chip (``n_effective == 1``: quantisation alone, mismatch 0, death of the
first neurons), where the "chips" are copies of one network and a test over them means nothing.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from spikefleet.errors import expect
from spikefleet.fleet.chip import Condition
from spikefleet.fleet.evaluate import evaluate_fleet, fit_gain
from spikefleet.fleet.mismatch import ProfilePartlyAppliedWarning, check_profile, get_profile
from spikefleet.fleet.quantize import DEFAULT_QUANT_MATRICES
from spikefleet.fleet.stats import paired_comparison
from spikefleet.models.base import recurrent_compensation

__all__ = ["Sweep", "build_conditions", "run_sweeps", "compare_designs", "SWEEP_KINDS"]

#: perturbation types a :class:`Sweep` can vary (module docstring)
SWEEP_KINDS = ("mismatch", "quant", "noise", "dead")


@dataclass(frozen=True)
class Sweep:
    """One perturbation ``kind`` (mismatch, quant, noise, dead) at several ``levels``, with its options; ``name`` labels its records."""

    kind: str
    levels: tuple
    profile: str = "uniform"
    dead_select: str = "random"
    quant_matrices: tuple = DEFAULT_QUANT_MATRICES
    name: str = ""  # how records name this sweep (default: the kind); tells two sweeps of one kind apart

    @property
    def label(self) -> str:
        return self.name or self.kind

    def __post_init__(self):
        expect(self.kind in SWEEP_KINDS, "sweep", f"one of {SWEEP_KINDS}", self.kind)
        expect(len(self.levels) > 0, f"{self.kind} levels", "at least one level", self.levels)
        for level in self.levels:
            expect(level >= 0, f"{self.kind} level", "a non-negative number", level)
            if self.kind == "quant":
                expect(float(level).is_integer() and level <= 32, "quant-bits", "integers in [1, 32] (0 = full precision)",
                       level)
            if self.kind == "dead":
                expect(level <= 1, "dead", "a fraction in [0, 1]", level)


def build_conditions(sweep: Sweep) -> list[tuple[float, Condition]]:
    """``[(level, Condition), ...]`` of a sweep (mismatch level 0 = nominal; quant level 0 = full precision)."""
    out = []
    for level in sweep.levels:
        if sweep.kind == "mismatch":
            cond = Condition(mismatch=get_profile(sweep.profile, level) if level > 0 else None,
                             label=f"mismatch {sweep.profile} {level:g}")
        elif sweep.kind == "quant":
            bits = int(level) or None
            cond = Condition(quant_bits=bits, quant_matrices=sweep.quant_matrices,
                             label=f"{bits}-bit" if bits else "full precision")
        elif sweep.kind == "noise":
            cond = Condition(noise=float(level), label=f"noise {level:g}")
        else:
            cond = Condition(dead=float(level), dead_select=sweep.dead_select, label=f"dead {level:g}")
        out.append((float(level), cond))
    return out


@dataclass
class SweepRecord:
    design: str
    sweep: str
    level: float
    condition: str
    metrics: dict  # name -> np.ndarray [chips]
    gain: float = 1.0
    summaries: dict = field(default_factory=dict)
    n_effective: int | None = None  # distinct chips (1: every chip the same network); None: unknown

    def to_dict(self, per_chip: bool = True) -> dict:
        d = {"design": self.design, "sweep": self.sweep, "level": self.level, "condition": self.condition,
             "gain": self.gain, "n_effective": self.n_effective, "summary": self.summaries}
        if per_chip:
            d["per_chip"] = {k: [float(x) for x in v] for k, v in self.metrics.items()}
        return d


def run_sweeps(designs: dict, task, batch, chip_keys, sweeps: list[Sweep], *, run_key=None, chunk: int = 16,
               gain_refit: bool = False, val_batch=None, val_keys=None, yield_threshold: float = 0.9,
               compensation: bool = False, progress: bool | Callable = False,
               reference_labels=None) -> list[SweepRecord]:
    """Evaluate every design under every sweep level on the same fleet; one record per pair.

    ``gain_refit``: fit an output gain per design and level on ``val_batch``/``val_keys``
    (separate trials and chips) before testing (Network ADS protocol; off by default).
    ``compensation``: multiply the recurrent weights of each design by the factor the design
    gives for the sweep and level (:func:`spikefleet.models.base.recurrent_compensation`; Network
    ADS: its down-scaling table, other designs: 1); off by default.
    ``reference_labels``: also score every chip's decisions against these labels (``agreement``,
    e.g. the teacher's decisions).
    ``progress``: ``True`` shows one bar on stderr over all designs, conditions and chips (design
    and condition in its label, chips done / total); a callable is instead called with each
    finished :class:`SweepRecord`. Off by default.

    Every mismatch profile is checked against every design before anything runs
    (:func:`~spikefleet.fleet.mismatch.check_profile`): one that perturbs nothing is an error.
    """
    records = []
    jobs = [(s, level, cond) for s in sweeps for level, cond in build_conditions(s)]
    with warnings.catch_warnings():  # errors now; the warnings come once, from the evaluation
        warnings.simplefilter("ignore", ProfilePartlyAppliedWarning)
        for design in designs.values():
            for _, _, cond in jobs:
                check_profile(design, cond.mismatch)
    n_chips = int(np.shape(chip_keys)[0])
    callback = progress if callable(progress) else None
    with tqdm(total=len(designs) * len(jobs) * n_chips, unit="chip", disable=callback is not None or not progress,
              leave=False, dynamic_ncols=True) as bar:
        for name, design in designs.items():
            for sweep, level, cond in jobs:
                key = None if run_key is None else jax.random.fold_in(run_key, int(level * 1e6))
                if compensation:
                    factor = recurrent_compensation(design, sweep.kind, level)
                    if factor != 1.0:
                        cond = dataclasses.replace(cond, recurrent_scale=factor,
                                                   label=f"{cond.describe()} (Ω x{factor:g})")
                bar.set_description(f"{name} | {cond.describe()}")
                gain = 1.0
                if gain_refit:
                    gain = fit_gain(design, task, val_batch, val_keys, cond, run_key=key)
                result = evaluate_fleet(design, task, batch, chip_keys, cond, run_key=key, chunk=chunk, gain=gain,
                                        reference_labels=reference_labels, on_chunk=bar.update)
                summaries = {m: result.summary(m, threshold=yield_threshold if m in ("accuracy", "agreement")
                                               else None).to_dict()
                             for m in result.metrics}
                records.append(SweepRecord(name, sweep.label, level, cond.describe(), result.metrics, gain, summaries,
                                           result.n_effective))
                if callback is not None:
                    callback(records[-1])
    return records


def compare_designs(records: list[SweepRecord], metric: str = "accuracy") -> list[dict]:
    """Paired Wilcoxon tests of the first design against each other one, per (sweep, level).

    A pair is left out when neither record varies from chip to chip (both ``n_effective == 1``):
    its chips are copies of one network each, and a paired test over them would report a
    p-value for one comparison of two numbers.
    """
    designs = list(dict.fromkeys(r.design for r in records))
    if len(designs) < 2:
        return []
    by_key = {(r.design, r.sweep, r.level): r for r in records}
    out = []
    for r in records:
        if r.design != designs[0]:
            continue
        for other in designs[1:]:
            o = by_key.get((other, r.sweep, r.level))
            if o is None or (r.n_effective == 1 and o.n_effective == 1):
                continue
            cmp = paired_comparison(np.asarray(r.metrics[metric]), np.asarray(o.metrics[metric]))
            out.append({"a": designs[0], "b": other, "sweep": r.sweep, "level": r.level, "metric": metric,
                        **cmp.to_dict()})
    return out
