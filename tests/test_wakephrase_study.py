"""The wake-phrase study through experiment files: shared teacher, boundaries, cached data, claims."""

import numpy as np
import pytest
import scipy.stats

from spikefleet.studies.claims import check_claims, claims_markdown, level_tables, pooled
from spikefleet.experiments.spec import parse_experiment_text
from spikefleet.experiments.units import build_units

BASE = """\
name = "wp"
seeds = [0, 1]

[task]
name = "wakephrase"
n_train = 4
n_validation = 4

[[methods]]
name = "teacher"
method = "teacher"
steps = 2
hidden = 4
{teacher_extra}
evaluate = false

[[methods]]
name = "ads"
method = "ads"
n = 8
steps = 1
epochs = 1

[fleet]
chips = 1
trials = 4

[perturbations]
mismatch = [0.0]
"""


def _spec(teacher_extra=""):
    return parse_experiment_text(BASE.format(teacher_extra=teacher_extra), "wp.toml")


def test_an_explicit_teacher_design_is_the_teacher_and_can_be_shared_across_seeds():
    spec = _spec()
    assert [d.name for d in spec.designs()] == ["teacher", "ads"]  # no implicit second "teacher"
    assert spec.designs()[0].steps == 2
    train = [u.unit_id for u in build_units(spec) if u.kind == "train"]
    assert train == ["train/teacher/seed0", "train/ads/seed0", "train/teacher/seed1", "train/ads/seed1"]
    shared = _spec("train_seed = 0")
    units = build_units(shared)
    assert [u.unit_id for u in units if u.kind == "train"] == ["train/teacher/seed0", "train/ads/seed0",
                                                                 "train/ads/seed1"]
    ads1 = next(u for u in units if u.unit_id == "train/ads/seed1")
    assert ads1.deps == ("train/teacher/seed0",)
    ev1 = next(u for u in units if u.unit_id.startswith("eval/ads/seed1"))
    assert ev1.deps == ("train/ads/seed1", "train/teacher/seed0")
    assert shared.train_seed("teacher", 1) == 0 and shared.train_seed("ads", 1) == 1


def test_wakephrase_task_options_are_restricted():
    from spikefleet.experiments.spec import ExperimentSpecError

    with pytest.raises(ExperimentSpecError, match="task.n_in"):
        parse_experiment_text(BASE.format(teacher_extra="").replace("n_train = 4", "n_in = 3"), "wp.toml")
    with pytest.raises(ExperimentSpecError, match="n_validation"):
        parse_experiment_text(BASE.format(teacher_extra="").replace("n_validation = 4", "n_validation = 1"),
                              "wp.toml")


def _records(values: dict) -> list:
    return [{"kind": "eval", "design": d, "sweep": s, "level": lv, "metrics": {"accuracy": list(v)}}
            for (d, s, lv), v in values.items()]


def test_claims_numbers_and_verdicts_match_scipy():
    rng = np.random.default_rng(0)
    hi, lo = rng.uniform(0.8, 0.9, 20), rng.uniform(0.5, 0.6, 20)
    values = {("ads", "mismatch", 0.0): np.full(20, 0.9), ("force", "mismatch", 0.0): np.full(20, 0.9),
              ("ads", "mismatch", 0.1): hi, ("force", "mismatch", 0.1): lo,
              ("ads", "mismatch", 0.2): lo, ("force", "mismatch", 0.2): hi,
              ("ads", "quant", 4.0): hi, ("force", "quant", 4.0): hi,
              ("ads", "dead", 0.4): hi, ("ads-nofast", "dead", 0.4): lo}
    claims = check_claims(pooled(_records(values)))
    assert [c["verdict"] for c in claims] == ["holds", "does not hold", "does not hold", "holds"]
    assert claims[0]["p"] == pytest.approx(scipy.stats.mannwhitneyu(hi, lo, alternative="greater").pvalue)
    assert claims[1]["p"] == pytest.approx(scipy.stats.mannwhitneyu(lo, hi, alternative="greater").pvalue)
    diff = np.median(hi) - np.median(lo)
    assert f"difference {diff:+.3f}" in claims[3]["numbers"]
    partial = check_claims(pooled(_records({("ads", "dead", 0.4): hi})))
    assert [c["verdict"] for c in partial] == ["not run"] * 4
    tables = dict(level_tables(pooled(_records(values))))
    rows = tables["mismatch: accuracy, median [IQR] over chips × instances"]
    assert rows[0] == ["level", "ads", "ads-nofast", "force"] and rows[1][2] == "—"
    q25, q50, q75 = np.percentile(hi, [25, 50, 75])
    assert rows[2][1] == f"{q50:.3f} [{q25:.3f}–{q75:.3f}]"
    assert "| 40 % neuron death" in claims_markdown(_records(values))


def test_tiny_wakephrase_study_end_to_end(tmp_path):
    from spikefleet.experiments.runner import run_experiment

    text = BASE.format(teacher_extra="train_seed = 0").replace("seeds = [0, 1]", "seeds = [0]")
    text = text.replace("steps = 1\nepochs = 1", "steps = 4\nepochs = 1\nparallel = 2\neta = 1e-4\nk0 = 50")
    spec = parse_experiment_text(text, "wp.toml")
    result = run_experiment(spec, tmp_path / "out", workers=1, progress=False)
    assert result.units_total == 3 and result.units_run == 3
    from spikefleet.experiments.store import ResultStore

    store = ResultStore(tmp_path / "out", spec)
    try:
        units = {u["unit_id"]: u for u in store.units()}
    finally:
        store.close()
    ads = units["train/ads/seed0"]["info"]
    assert np.isfinite(ads["boundary"]) and ads["test"]["rule"] == "integral" and ads["test"]["trials"] == 4
    cfg = ads["config"]  # the experiment's ADS options reach the recipe
    assert (cfg["rule"], cfg["parallel"], cfg["eta"], cfg["k0"], cfg["trials_per_epoch"]) == ("parallel", 2, 1e-4, 50.0, 4)
    assert units["train/teacher/seed0"]["info"]["test"]["rule"] == "teacher"
    cache = sorted(p.name for p in (tmp_path / "out" / "cache").iterdir())
    assert any("-test-s0-n4.npz" in c for c in cache) and any("-validation-s0-n4.npz" in c for c in cache)
    assert any("-train-s0-n4.npz" in c for c in cache)  # teacher and ADS train on the fixed set
    # the cached test set is the task's split "test" under seed_stream(0, TEST)
    from spikefleet import seeds
    from spikefleet.seeds import seed_stream
    from spikefleet.tasks.wakephrase.task import WakePhraseTask

    direct = WakePhraseTask(split="test").generate(4, seed_stream(0, seeds.TEST))
    with np.load(tmp_path / "out" / "cache" / next(c for c in cache if "-test-" in c)) as z:
        np.testing.assert_array_equal(z["inputs"], direct.inputs)
        np.testing.assert_array_equal(z["labels"], direct.labels)
    row = result.rows[0]
    assert row["design"] == "ads" and row["chips"] == 1 and row["agreement"] is not None


def test_schedule_puts_training_of_a_later_seed_before_evaluations_of_an_earlier_one():
    from spikefleet.experiments.runner import schedule

    text = BASE.format(teacher_extra="train_seed = 0").replace("steps = 1\nepochs = 1", "epochs = 4")
    text = text.replace("n = 8", "n = 512").replace("mismatch = [0.0]", "mismatch = [0.0, 0.1, 0.2]")
    spec = parse_experiment_text(text, "wp.toml")
    order = [u.unit_id for u in schedule(spec, build_units(spec))]
    assert order[0] == "train/teacher/seed0"  # every chain starts there
    first_eval = min(i for i, u in enumerate(order) if u.startswith("eval/"))
    assert order.index("train/ads/seed1") < first_eval  # not seed-major
    # equal costs keep the seed order
    evals = [u for u in order if u.startswith("eval/")]
    assert [u.split("/")[2] for u in evals] == ["seed0"] * 3 + ["seed1"] * 3


def test_parallel_must_divide_the_training_set_when_steps_is_left_out():
    from spikefleet.experiments.spec import ExperimentSpecError

    text = BASE.format(teacher_extra="").replace("steps = 1\nepochs = 1", "epochs = 2\nparallel = 3")
    with pytest.raises(ExperimentSpecError, match=r"methods\[1\]\.parallel: expected a divisor of task\.n_train = 4"):
        parse_experiment_text(text, "wp.toml")
    ok = parse_experiment_text(text.replace("parallel = 3", "parallel = 2"), "wp.toml")
    assert [d.parallel for d in ok.designs() if d.method == "ads"] == [2]


def test_teacher_calibration_flags_teachers_outside_the_spec_band_with_a_wilson_interval():
    from spikefleet.studies.claims import teacher_calibration

    def teacher(acc, n, seed=0):
        return {"kind": "train", "design": "teacher", "seed": seed,
                "info": {"method": "teacher", "test": {"accuracy": acc, "trials": n}, "validation": {"accuracy": 0.89}}}

    other = {"kind": "train", "design": "ads", "seed": 0, "info": {"method": "ads", "test": {"accuracy": 0.5}}}
    rows = teacher_calibration([teacher(0.9, 100), teacher(0.969, 32, seed=1), teacher(0.88, 50), other])
    assert [r["verdict"] for r in rows] == ["inside", "outside: flagged", "inside"]
    # Wilson 95 % interval of 90/100, written out: centre (p + z²/2n)/(1 + z²/n), half-width
    # z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n), z = 1.96 -> 0.8256 ... 0.9448
    lo, hi = rows[0]["interval"]
    assert lo == pytest.approx(0.82559, abs=1e-4) and hi == pytest.approx(0.94477, abs=1e-4)
    assert rows[1]["validation"] == 0.89
    md = claims_markdown([], [teacher(31 / 32, 32)])
    assert "Teacher calibration" in md
    assert "| teacher (seed 0) | 0.969 | 32 | 0.843–0.994 | 0.890 | outside: flagged |" in md
    assert "Teacher calibration" not in claims_markdown([])


def test_integral_fit_rule_scores_with_the_boundary_fitted_on_the_judged_outputs():
    """BPTT model selection: a trained output (a long 0.6 plateau on positives) must beat an
    untrained one whose brief 0.9 blips fool the teacher rule (max > 0.7)."""
    from spikefleet.errors import ConfigError
    from spikefleet.tasks.wakephrase.task import WakePhraseTask

    out = np.zeros((4, 1000, 1), np.float32)
    out[:2, 300:600] = 0.6      # positives: the smoothed output passes θ0 = 0.5 and integrates
    out[2:, 500:503] = 0.9      # negatives: 3-step blips, never above θ0 after smoothing
    labels = np.array([1, 1, 0, 0])
    assert WakePhraseTask(rule="integral-fit").accuracy(out, labels) == 1.0
    assert WakePhraseTask(rule="teacher").accuracy(out, labels) == 0.0
    flipped = WakePhraseTask(rule="integral-fit").accuracy(out, 1 - labels)
    assert flipped == 0.5  # no boundary separates "plateau = negative": the best is all one class
    with pytest.raises(ConfigError, match="integral-fit"):
        WakePhraseTask(rule="integral-fit").decide(out)
    with pytest.raises(ConfigError, match="WakePhraseTask.rule"):
        WakePhraseTask(rule="fitted")
