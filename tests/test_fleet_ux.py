"""What a user of the fleet tools meets: profiles that perturb nothing, statistics over identical
chips, the worst-chip line of the robustness plots and the progress bar (issue 23)."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

from spikefleet.errors import ConfigError, SpikefleetError
from spikefleet.experiments import report_plots
from spikefleet.experiments.summary import pool_rows
from spikefleet.fleet.chip import Condition, fleet_keys, varies_by_chip
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import (MismatchProfile, ProfileNotApplicableError, ProfilePartlyAppliedWarning,
                                       get_profile)
from spikefleet.fleet.plot import robustness_figure
from spikefleet.fleet.report import fleet_report
from spikefleet.fleet.sweep import Sweep, compare_designs, run_sweeps
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.neurons.dynapse2 import FROZEN_MISMATCH_PARAMETERS
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig

TASK = get_task("xor", config=XorConfig(duration=0.1))  # 100 steps
BATCH = TASK.generate(4, 1)
CHIPS = 3
KEYS = fleet_keys(0, CHIPS)


def _lif(seed: int):
    return init_spiking(SpikingConfig(n_in=TASK.n_in, n_hidden=6, n_out=TASK.n_out), jax.random.PRNGKey(seed),
                        in_scale=20.0)


A, B = _lif(2), _lif(3)
LIF_PARAMETERS = ["w_in", "w_rec", "w_out", "tau_mem", "tau_syn", "tau_out", "threshold", "bias"]


# ----------------------------------------------------------------------------- (a) profiles that do not apply


def test_dynapse2_profile_on_a_lif_model_is_an_error_naming_both_sides():
    with pytest.raises(ProfileNotApplicableError) as info:
        evaluate_fleet(A, TASK, BATCH, KEYS, Condition(mismatch=get_profile("dynapse2-frozen", 0.3)))
    message = str(info.value)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, SpikefleetError)
    assert "'dynapse2-frozen'" in message and "'spiking' (SpikingNetwork)" in message
    for name in FROZEN_MISMATCH_PARAMETERS:  # the profile's parameters ...
        assert repr(name) in message
    for name in LIF_PARAMETERS:  # ... and the model's
        assert repr(name) in message


def test_fleet_report_refuses_the_profile_before_evaluating_anything():
    # old behaviour: three identical rows, one per level, nothing perturbed
    with pytest.raises(ProfileNotApplicableError, match="dynapse2-frozen"):
        fleet_report({"a": A}, TASK, seed=0, trials=4, chips=2, mismatch=[0.0, 0.1, 1.0], profile="dynapse2-frozen")
    with pytest.raises(ProfileNotApplicableError, match="dynapse2-frozen"):
        run_sweeps({"a": A}, TASK, BATCH, KEYS, [Sweep("quant", (4,)), Sweep("mismatch", (0.1,),
                                                                              profile="dynapse2-frozen")])


def test_file_profile_with_only_parameters_the_model_lacks_is_an_error(tmp_path):
    path = tmp_path / "chip.toml"
    path.write_text('[sigmas]\nItau_mem = 0.1\nIgain_mem = 0.2\n')
    with pytest.raises(ProfileNotApplicableError) as info:
        evaluate_fleet(A, TASK, BATCH, KEYS, Condition(mismatch=get_profile(str(path), 1.0)))
    assert "'chip'" in str(info.value) and "'Igain_mem'" in str(info.value) and "'Itau_mem'" in str(info.value)


def test_profile_touching_some_parameters_warns_naming_the_skipped_ones(tmp_path):
    path = tmp_path / "mixed.toml"
    path.write_text('[sigmas]\ntau_mem = 0.1\nItau_mem = 0.2\nw_fast = 0.3\n')
    profile = get_profile(str(path), 0.5)
    with pytest.warns(ProfilePartlyAppliedWarning) as caught:
        result = evaluate_fleet(A, TASK, BATCH, KEYS, Condition(mismatch=profile))
    (warning,) = [w for w in caught if w.category is ProfilePartlyAppliedWarning]
    text = str(warning.message)
    # the net has no fast weights and no DynapSim currents: both skipped, tau_mem applied
    assert "'mixed'" in text and "['Itau_mem', 'w_fast']" in text and "applied: ['tau_mem']" in text
    assert result.n_effective == CHIPS  # tau_mem still varies per chip


def test_builtin_profiles_spanning_model_kinds_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProfilePartlyAppliedWarning)
        # uniform also names the rate nets' tau and FORCE's w_feedback; dynapse1 the fast synapses
        for profile in (get_profile("uniform", 0.1), get_profile("dynapse1-measured", 1.0)):
            evaluate_fleet(A, TASK, BATCH, KEYS[:1], Condition(mismatch=profile))


# ----------------------------------------------------------------------------- (b) identical chips


def test_varies_by_chip_follows_the_condition_definition():
    profile = get_profile("uniform", 0.1)
    assert varies_by_chip(A, Condition(mismatch=profile))
    assert not varies_by_chip(A, Condition(mismatch=get_profile("uniform", 0.0)))
    assert not varies_by_chip(A, Condition(quant_bits=4))
    assert varies_by_chip(A, Condition(noise=0.05))  # membrane noise: one draw per chip
    assert varies_by_chip(A, Condition(input_noise=0.1))
    assert varies_by_chip(A, Condition(dead=0.5))  # 3 of 6 neurons, drawn per chip
    assert not varies_by_chip(A, Condition(dead=0.5, dead_select="first"))
    assert not varies_by_chip(A, Condition(dead=0.1))  # floor(0.6) = 0 neurons die
    assert not varies_by_chip(A, Condition(dead=1.0))  # all die on every chip
    only_w_fast = MismatchProfile("fast", (("w_fast", 0.2), ("w_rec", 0.0)))
    assert not varies_by_chip(A, Condition(mismatch=only_w_fast))  # w_rec at sigma 0, no w_fast


def test_identical_chips_get_n_effective_1_and_no_paired_test():
    sweeps = [Sweep("mismatch", (0.0, 0.1)), Sweep("quant", (4,))]
    records = run_sweeps({"a": A, "b": B}, TASK, BATCH, KEYS, sweeps)
    n_eff = {(r.design, r.sweep, r.level): r.n_effective for r in records}
    assert n_eff == {("a", "mismatch", 0.0): 1, ("a", "mismatch", 0.1): CHIPS, ("a", "quant", 4.0): 1,
                     ("b", "mismatch", 0.0): 1, ("b", "mismatch", 0.1): CHIPS, ("b", "quant", 4.0): 1}
    for r in records:
        assert r.to_dict(per_chip=False)["n_effective"] == n_eff[(r.design, r.sweep, r.level)]
        if r.n_effective == 1:  # really one network: every chip the same
            assert np.all(r.metrics["mse"] == r.metrics["mse"][0])
    (cmp,) = compare_designs(records)
    assert (cmp["sweep"], cmp["level"], cmp["a"], cmp["b"]) == ("mismatch", 0.1, "a", "b")
    assert isinstance(cmp["p_value"], float)


def test_fleet_report_marks_identical_chips_in_table_and_json():
    report = fleet_report({"a": A, "b": B}, TASK, seed=0, trials=4, chips=2, mismatch=[0.0, 0.2], quant_bits=[4])
    assert [r["n_effective"] for r in report["records"]] == [1, 2, 1, 1, 2, 1]
    assert [(c["sweep"], c["level"]) for c in report["comparisons"]] == [("mismatch", 0.2)]
    lines = report["table"].splitlines()
    header = lines[0].split()
    assert header[:3] == ["design", "condition", "n_eff"]
    marked = [line for line in lines[2:] if " * " in line]
    assert len(marked) == 4 and all("mismatch uniform 0.2" not in line for line in marked)
    assert lines[-2].startswith("* n_eff = 1: every one of the 2 chips is the same network")
    assert "no paired test" in lines[-1]


def test_pooled_rows_count_distinct_networks():
    rows = [{"design": "a", "seed": s, "sweep": sweep, "level": level, "metrics": {"accuracy": [1.0] * 4}}
            for s in (0, 1) for sweep, level in (("quant", 4.0), ("mismatch", 0.0), ("mismatch", 0.1),
                                                  ("noise", 0.05), ("quant+fast", 2.0))]
    rows.append({"design": "b", "seed": 0, "sweep": "quant", "level": 4.0, "n_effective": 4,
                 "metrics": {"accuracy": [1.0] * 4}})  # recorded by the unit: wins over the definition
    groups = pool_rows(rows)
    assert {k: g.n_effective for k, g in groups.items()} == {
        ("a", "quant", 4.0): 2, ("a", "mismatch", 0.0): 2, ("a", "mismatch", 0.1): 8, ("a", "noise", 0.05): 8,
        ("a", "quant+fast", 2.0): 2, ("b", "quant", 4.0): 4}


# ----------------------------------------------------------------------------- (c) the worst chips in the plots


def test_robustness_figure_draws_the_5th_percentile_dashed():
    records = run_sweeps({"a": A, "b": B}, TASK, BATCH, KEYS, [Sweep("mismatch", (0.0, 0.3))])
    fig = robustness_figure(records)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"a", "b", "a p5", "b p5"} <= set(lines)
    for design in ("a", "b"):
        mine = [r for r in records if r.design == design]
        p5 = [np.percentile(r.metrics["accuracy"], 5) for r in mine]
        assert lines[f"{design} p5"].get_linestyle() == "--"
        np.testing.assert_allclose(lines[f"{design} p5"].get_ydata(), p5)
        np.testing.assert_allclose(lines[design].get_ydata(), [np.median(r.metrics["accuracy"]) for r in mine])
    assert {"a p5", "b p5"} <= {t.get_text() for t in ax.get_legend().get_texts()}


def test_report_sweep_figure_draws_the_worse_tail():
    acc = {0.0: [1.0, 1.0, 1.0, 1.0], 0.2: [1.0, 0.9, 0.5, 0.75]}
    rows = [{"design": "a", "sweep": "mismatch", "level": lv, "metrics": {"accuracy": v, "mse": [0.1, 0.2, 0.3, 0.4]}}
            for lv, v in acc.items()]
    groups = pool_rows(rows)
    fig = report_plots.sweep_figure("mismatch", groups, {"a": "#1f77b4"})
    acc_ax, mse_ax = fig.axes[:2]
    (p5,) = [line for line in acc_ax.get_lines() if line.get_label() == "a p5"]
    # numpy's linear percentile: position 0.15 between 0.5 and 0.75
    np.testing.assert_allclose(p5.get_ydata(), [1.0, 0.5 + 0.15 * 0.25])
    assert p5.get_linestyle() == "--"
    (p95,) = [line for line in mse_ax.get_lines() if line.get_label() == "a p95"]
    np.testing.assert_allclose(p95.get_ydata(), [0.1 + 2.85 * 0.1] * 2)


# ----------------------------------------------------------------------------- (d) progress


def test_evaluate_fleet_progress_bar_goes_to_stderr_only_when_asked(capsys):
    cond = Condition(mismatch=get_profile("uniform", 0.1), label="mismatch uniform 0.1")
    quiet = evaluate_fleet(A, TASK, BATCH, KEYS, cond, chunk=2)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    loud = evaluate_fleet(A, TASK, BATCH, KEYS, cond, chunk=2, progress=True)
    captured = capsys.readouterr()
    assert "mismatch uniform 0.1" in captured.err and f"/{CHIPS}" in captured.err and "chip" in captured.err
    assert captured.out == ""
    for name in quiet.metrics:  # the bar does not change a bit of the results
        np.testing.assert_array_equal(quiet.metrics[name], loud.metrics[name])


def test_run_sweeps_and_fleet_report_progress(capsys):
    ticks = []
    run_sweeps({"a": A}, TASK, BATCH, KEYS, [Sweep("quant", (4,))], progress=ticks.append)  # a callback: no bar
    assert len(ticks) == 1 and capsys.readouterr().err == ""
    fleet_report({"a": A, "b": B}, TASK, seed=0, trials=4, chips=2, mismatch=[0.1])
    assert capsys.readouterr().err == ""
    fleet_report({"a": A, "b": B}, TASK, seed=0, trials=4, chips=2, mismatch=[0.1], progress=True)
    err = capsys.readouterr().err
    assert "a | mismatch uniform 0.1" in err and "b | mismatch uniform 0.1" in err and "/4" in err
