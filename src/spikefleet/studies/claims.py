r"""The Network ADS paper's comparisons, checked on an experiment's recorded results.

``spikefleet study claims DIR`` (also a table of ``spikefleet report DIR``: :func:`report_tables`)
reads the result store of a wake-phrase study (``experiments/network-ads.toml``) and writes

* per sweep, one table of median [IQR] accuracy per design and level, over every chip of every
  instance (``seeds × fleet.chips`` values per cell; pooled as the paper pools its 10 instances
  × 10 mismatch draws);
* the paper's qualitative claims (Büchel et al. 2021: comparisons that must be reproduced on substitute data), each with its numbers, a
  one-sided Mann–Whitney U test and a verdict ``holds`` / ``does not hold`` / ``not run``:

  1. mismatch 10 % and 20 %: ADS degrades less than FORCE (drop of the median accuracy from
     nominal smaller; Mann–Whitney U on the per-chip accuracies, ADS > FORCE);
  2. 4-bit weights: ADS accuracy above FORCE (U test, ADS > FORCE);
  3. 40 % neuron death: ADS with fast weights keeps a median accuracy at least 0.2 above ADS
     without them (U test, ads > ads-nofast).

With the training records, the report also checks the teacher's calibration (Büchel et al. 2021: difficulty calibration: test
accuracy 0.90 ± 0.02 with the max ŷ > 0.7 rule; :func:`teacher_calibration`), flagging a teacher
outside the band, with a 95 % Wilson interval since the study's test sets are small.

Design names are those of ``experiments/network-ads.toml`` (``ads``, ``ads-nofast``,
``force``, ``bptt``, ``reservoir``); a claim whose designs or levels are missing is ``not run``.
The significance level for ``holds`` is ``ALPHA = 0.01`` (the paper's level).
"""

from __future__ import annotations

import numpy as np

from spikefleet.experiments.store import ResultStore, read_stored_spec
from spikefleet.experiments.store_report import register_tables
from spikefleet.experiments.summary import pool_rows
from spikefleet.fleet.stats import unpaired_comparison

__all__ = ["ALPHA", "CALIBRATION", "pooled", "level_tables", "check_claims", "teacher_calibration", "claims_markdown",
           "claims_of_dir", "report_tables"]

ALPHA = 0.01

#: Büchel et al. 2021: difficulty calibration: the teacher's test accuracy must be 0.90 ± 0.02
CALIBRATION = (0.90, 0.02)


def pooled(records) -> dict:
    """``{(design, sweep, level): per-chip accuracies of all instances}`` from eval records
    (:func:`~spikefleet.experiments.summary.pool_rows`)."""
    groups = pool_rows([r for r in records if r["kind"] == "eval"])
    return {key: group.metrics["accuracy"] for key, group in groups.items()}


def _nominal(data, design):
    return data.get((design, "mismatch", 0.0))


def _med_iqr(x) -> str:
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    return f"{q50:.3f} [{q25:.3f}–{q75:.3f}]"


def level_tables(data: dict) -> list[tuple[str, list]]:
    """One ``(title, rows)`` table per sweep: rows = levels, columns = designs, cells median [IQR]."""
    order = ("ads", "ads-nofast", "force", "bptt", "bptt-noise", "reservoir")
    designs = sorted(dict.fromkeys(d for d, _, _ in data), key=lambda d: (order.index(d) if d in order else 99, d))
    tables = []
    for sweep in dict.fromkeys(s for _, s, _ in data):
        levels = sorted({lv for _, s, lv in data if s == sweep}, reverse=sweep == "quant")
        rows = [["level"] + designs]
        for lv in levels:
            rows.append([f"{lv:g}"] + [(_med_iqr(data[(d, sweep, lv)]) if (d, sweep, lv) in data else "—")
                                       for d in designs])
        tables.append((f"{sweep}: accuracy, median [IQR] over chips × instances", rows))
    return tables


def _test(a, b) -> float:
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0  # identical constant samples: no evidence either way
    return unpaired_comparison(a, b, alternative="greater").p_value


def check_claims(data: dict) -> list[dict]:
    """The claims of the module docstring: dicts with ``claim``, ``numbers``, ``p``, ``verdict``."""
    out = []

    def add(claim, numbers, p, ok):
        verdict = "not run" if ok is None else ("holds" if ok else "does not hold")
        out.append({"claim": claim, "numbers": numbers, "p": p, "verdict": verdict})

    for level in (0.1, 0.2):
        claim = f"mismatch {level:.0%}: ADS degrades less than FORCE"
        keys = [("ads", "mismatch", level), ("force", "mismatch", level)]
        if not all(k in data for k in keys) or _nominal(data, "ads") is None or _nominal(data, "force") is None:
            add(claim, "designs or levels missing", None, None)
            continue
        a, f = data[keys[0]], data[keys[1]]
        drop_a = float(np.median(_nominal(data, "ads")) - np.median(a))
        drop_f = float(np.median(_nominal(data, "force")) - np.median(f))
        p = _test(a, f)
        numbers = (f"median accuracy ADS {np.median(a):.3f} (drop {drop_a:+.3f} from nominal), FORCE "
                   f"{np.median(f):.3f} (drop {drop_f:+.3f}); n = {a.size}/{f.size} chips")
        add(claim, numbers, p, drop_a < drop_f and p < ALPHA)
    claim = "4-bit weights: ADS accuracy above FORCE"
    keys = [("ads", "quant", 4.0), ("force", "quant", 4.0)]
    if all(k in data for k in keys):
        a, f = data[keys[0]], data[keys[1]]
        p = _test(a, f)
        add(claim, f"median accuracy ADS {np.median(a):.3f}, FORCE {np.median(f):.3f}; n = {a.size}/{f.size}",
            p, float(np.median(a)) > float(np.median(f)) and p < ALPHA)
    else:
        add(claim, "designs or levels missing", None, None)
    claim = "40 % neuron death: ADS with fast weights ≥ 0.2 above ADS without"
    keys = [("ads", "dead", 0.4), ("ads-nofast", "dead", 0.4)]
    if all(k in data for k in keys):
        a, b = data[keys[0]], data[keys[1]]
        p = _test(a, b)
        diff = float(np.median(a) - np.median(b))
        add(claim, f"median accuracy with Ω^f {np.median(a):.3f}, without {np.median(b):.3f} (difference "
            f"{diff:+.3f}); n = {a.size}/{b.size}", p, diff >= 0.2 and p < ALPHA)
    else:
        add(claim, "designs or levels missing", None, None)
    return out


def _wilson(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def teacher_calibration(train_records) -> list[dict]:
    """One row per recorded teacher unit: ``design``, ``seed``, ``accuracy`` (test, teacher rule),
    ``trials``, ``interval`` (95 % Wilson), ``validation`` and ``verdict`` (``inside`` /
    ``outside: flagged``) against :data:`CALIBRATION`."""
    target, tol = CALIBRATION
    rows = []
    for r in train_records:
        info = r.get("info") or {}
        test = info.get("test") or {}
        if info.get("method") != "teacher" or "accuracy" not in test:
            continue
        acc, n = float(test["accuracy"]), int(test.get("trials") or 0)
        inside = abs(acc - target) <= tol + 1e-12
        rows.append({"design": r.get("design"), "seed": r.get("seed"), "accuracy": acc, "trials": n,
                     "interval": _wilson(acc, n) if n > 0 else None,
                     "validation": (info.get("validation") or {}).get("accuracy"),
                     "verdict": "inside" if inside else "outside: flagged"})
    return rows


def claims_markdown(records, train_records=None) -> str:
    """The tables and the claims as Markdown (with ``train_records``, the teacher's calibration first)."""
    data = pooled(records)
    parts = []
    rows = teacher_calibration(train_records or [])
    if rows:
        target, tol = CALIBRATION
        parts.append(f"### Teacher calibration (Büchel et al. 2021: difficulty calibration: test accuracy {target:.2f} ± {tol:.2f}, max ŷ > 0.7)\n")
        parts.append("| teacher | test accuracy | test samples | 95 % interval | validation | verdict |")
        parts.append("|---|---|---|---|---|---|")
        for c in rows:
            ci = "—" if c["interval"] is None else f"{c['interval'][0]:.3f}–{c['interval'][1]:.3f}"
            val = "—" if c["validation"] is None else f"{c['validation']:.3f}"
            parts.append(f"| {c['design']} (seed {c['seed']}) | {c['accuracy']:.3f} | {c['trials']} | {ci} | {val} "
                         f"| {c['verdict']} |")
        parts.append("")
    for title, rows in level_tables(data):
        parts.append(f"### {title}\n")
        parts.append("| " + " | ".join(rows[0]) + " |")
        parts.append("|" + "---|" * len(rows[0]))
        parts += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        parts.append("")
    parts.append("### The paper's claims (one-sided Mann–Whitney U, α = 0.01)\n")
    parts.append("| claim | numbers | p | verdict |")
    parts.append("|---|---|---|---|")
    for c in check_claims(data):
        p = "—" if c["p"] is None else f"{c['p']:.2g}"
        parts.append(f"| {c['claim']} | {c['numbers']} | {p} | {c['verdict']} |")
    return "\n".join(parts) + "\n"


def claims_of_dir(out_dir) -> str:
    """:func:`claims_markdown` of the experiment recorded in ``out_dir`` (``spikefleet study claims DIR``)."""
    spec = read_stored_spec(out_dir)
    store = ResultStore(out_dir, spec)
    try:
        records = store.units()
    finally:
        store.close()
    return claims_markdown([r for r in records if r["kind"] == "eval"], [r for r in records if r["kind"] == "train"])


@register_tables
def report_tables(spec, records) -> list:
    """The claims as a table of ``spikefleet report`` for a wake-phrase study with an ADS design; else none."""
    if spec.task != "wakephrase" or not any(d.method == "ads" for d in spec.designs()):
        return []
    return [("Network ADS paper's comparisons (all instances pooled)",
             claims_markdown([r for r in records if r["kind"] == "eval"],
                             [r for r in records if r["kind"] == "train"]))]
