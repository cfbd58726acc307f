r"""Results pooled over seeds: the one pooling function and the run summary built on it.

:func:`pool_rows` groups evaluation rows by ``(design, sweep, level)`` and concatenates their per-chip
metrics over seeds (in seed order): a cell of ``seeds × chips`` values, as the Network ADS paper pools
its instances × mismatch draws (Büchel et al. 2021, Sci. Rep.). The run summary
(:func:`summarize_store`), the HTML report (:mod:`spikefleet.experiments.report`) and the paper's claims
(:mod:`spikefleet.studies.claims`) all pool through it.

Summary table (:func:`summarize_store`): one row per design and condition: median accuracy,
interquartile range, yield (fraction of chips with accuracy ≥ ``fleet.yield_threshold``), 5th
percentile, worst chip, median MSE and firing rate, and for ads/force designs the median agreement
with the teacher's decisions. :func:`write_summary` writes it as ``summary.txt`` and ``summary.json``.

``n_effective`` counts the distinct networks behind a row's chips: per seed, the fleet size where
chips differ (mismatch > 0, noise, random neuron death) and 1 where the condition is the same on
every chip (quantisation only, mismatch 0), summed over seeds. Each eval unit records it
(``info["n_effective"]``); for units recorded before it did, it follows from the sweep kind and
level (:func:`n_effective_by_definition`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikefleet.errors import ConfigError, expect
from spikefleet.fleet.stats import format_table, summarize
from spikefleet.io import atomic_write_text, write_json

__all__ = ["Group", "pool_rows", "n_effective_by_definition", "eval_rows", "summarize_store", "summary_table",
           "write_summary"]


@dataclass(frozen=True)
class Group:
    """Per-chip metrics of one design at one sweep level, chips pooled over ``seeds``."""

    condition: str
    seeds: tuple
    metrics: dict  # name -> 1-D float array [chips]
    n_effective: int | None = None  # distinct networks among the pooled chips (None: unknown)

    @property
    def n(self) -> int:
        return max((v.size for v in self.metrics.values()), default=0)


def _field(row, name, default=None):
    return row.get(name, default) if isinstance(row, dict) else getattr(row, name, default)


def n_effective_by_definition(sweep: str, level: float, chips: int) -> int | None:
    """Distinct chips of one seed's fleet from the sweep's kind and level alone: 1 for quantisation
    and level 0 (nominal), ``chips`` for mismatch, noise and neuron death (death assumed random, as by
    default); ``None`` for a sweep name of no known kind."""
    kind = sweep.split("+")[0].split(":")[0]
    if kind == "quant" or (kind in ("mismatch", "noise", "dead") and float(level) == 0):
        return 1
    return chips if kind in ("mismatch", "noise", "dead") else None


def pool_rows(rows) -> dict:
    """``{(design, sweep, level): Group}``: per-chip metrics concatenated over seeds (in seed order).

    ``rows``: dicts (or objects) with ``design``, ``sweep``, ``level``, ``metrics`` (or ``per_chip``:
    ``{name: per-chip values}``) and optionally ``seed`` (default 0) and ``condition``, e.g.
    :func:`eval_rows` of a result store or :class:`~spikefleet.fleet.sweep.SweepRecord` objects. A
    group's condition is that of its first seed; its ``n_effective`` is the sum of the rows'
    ``n_effective`` (:func:`n_effective_by_definition` for a row without one).
    """
    expect(isinstance(rows, (list, tuple)), "rows", "a list of evaluation rows", type(rows).__name__)
    parts: dict = {}
    for i, row in enumerate(rows):
        design, sweep, level = _field(row, "design"), _field(row, "sweep"), _field(row, "level")
        metrics = _field(row, "metrics") or _field(row, "per_chip")
        expect(isinstance(design, str) and isinstance(sweep, str), f"rows[{i}]",
               "a row with string 'design' and 'sweep'", {"design": design, "sweep": sweep})
        try:
            level = float(level)
        except (TypeError, ValueError):
            raise ConfigError(f"rows[{i}].level: expected a number, got {level!r}") from None
        expect(isinstance(metrics, dict), f"rows[{i}].metrics", "a dict of per-chip lists", type(metrics).__name__)
        seed = int(_field(row, "seed", 0) or 0)
        cond = str(_field(row, "condition", "") or "")
        metrics = {m: np.asarray(v, np.float64).reshape(-1) for m, v in metrics.items()}
        n_eff = _field(row, "n_effective")
        if n_eff is None:
            n_eff = n_effective_by_definition(sweep, level, max((v.size for v in metrics.values()), default=0))
        parts.setdefault((design, sweep, level), []).append((seed, cond, metrics, n_eff))
    groups = {}
    for key, runs in parts.items():
        runs = sorted(runs, key=lambda r: r[0])
        names = list(dict.fromkeys(m for _, _, ms, _ in runs for m in ms))
        metrics = {m: np.concatenate([ms[m] for _, _, ms, _ in runs if m in ms]) for m in names}
        counts = [n for *_, n in runs]
        n_eff = None if None in counts else int(sum(counts))
        groups[key] = Group(runs[0][1], tuple(dict.fromkeys(s for s, _, _, _ in runs)), metrics, n_eff)
    return groups


def eval_rows(records) -> list[dict]:
    """The evaluation rows of result-store records (:meth:`~spikefleet.experiments.store.ResultStore.units`)."""
    return [{"design": r["design"], "seed": r["seed"], "sweep": r["sweep"], "level": r["level"],
             "condition": r["info"]["condition"], "metrics": r["metrics"], "n_effective": r["info"].get("n_effective")}
            for r in records if r["kind"] == "eval"]


def summarize_store(store, spec) -> list[dict]:
    """Summary rows from the recorded eval units (chips of all seeds pooled; module docstring)."""
    groups = pool_rows(eval_rows(store.units("eval")))
    threshold = spec.fleet.yield_threshold
    rows = []
    for design in (d for d in spec.designs() if d.evaluate):
        for sweep, level in spec.perturbations.levels():
            group = groups.get((design.name, sweep, float(level)))
            if group is None:
                continue
            pooled = group.metrics
            acc = summarize(pooled["accuracy"], higher_is_better=True, threshold=threshold)
            row = {"design": design.name, "condition": group.condition, "sweep": sweep,
                   "level": float(level), "seeds": len(group.seeds), "chips": int(acc.n),
                   "n_effective": group.n_effective, "median acc": acc.median,
                   "IQR": acc.iqr, f"yield>={threshold:g}": acc.yield_, "p5": acc.p5, "worst": acc.worst,
                   "median MSE": float(np.median(pooled["mse"])), "rate Hz": float(np.median(pooled["rate_hz"])),
                   "agreement": float(np.median(pooled["agreement"])) if "agreement" in pooled else None}
            rows.append(row)
    return rows


def summary_table(rows: list[dict], spec) -> str:
    """The text table of :func:`summarize_store` rows, headed by a line naming the experiment."""
    if not rows:
        return "(no evaluated units)"
    columns = [c for c in rows[0] if c not in ("sweep", "level")]
    note = (f"{spec.name}: {spec.task}, seeds {list(spec.seeds)}, {spec.fleet.chips} chips x {spec.fleet.trials} "
            "trials per seed; accuracy over chips (all seeds pooled)")
    table = note + "\n" + format_table(rows, columns)
    if any(r.get("n_effective") is not None and r["n_effective"] < r["chips"] for r in rows):
        table += ("\nn_effective < chips: the condition is the same on every chip (quantisation only, mismatch 0), "
                  "so the chips of a seed are one network; p5, worst and yield describe n_effective networks")
    return table


def write_summary(out_dir: Path, spec, rows: list[dict], table: str) -> None:
    """``out_dir/summary.txt`` (the table) and ``out_dir/summary.json`` (experiment, spec hash, rows)."""
    atomic_write_text(out_dir / "summary.txt", table + "\n")
    write_json(out_dir / "summary.json", {"experiment": spec.name, "spec_hash": spec.hash(), "rows": rows})
