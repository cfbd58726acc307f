"""CLI sweep: bad input to every command is one line ``spikefleet <command>: error: ...`` naming the option or
file, exit code 2, and found before any work (issue 23, "what a new user meets").

Every case runs ``spikefleet.cli.main.main`` in-process with the work replaced by a function that fails the
test (training, testing, fleet evaluation, deployment, experiment runs, studies): a case passes only if its
error is found before the work starts. The checkpoints are built once per module with the Python API
(untrained networks with the metadata ``spikefleet train`` records).
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import pytest

import spikefleet.cli.deploy as cli_deploy
import spikefleet.cli.evaluate as cli_evaluate
import spikefleet.cli.run as cli_run
import spikefleet.train.design as design
from spikefleet import checkpoint
from spikefleet.cli.main import build_parser, main
from spikefleet.experiments.spec import DEFAULT_TOML, load_experiment
from spikefleet.experiments.store import read_stored_spec
from spikefleet.models.dynapse2 import DynapSE2Config, DynapSE2Network
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.neurons.dynapse2 import DynapSE2
from spikefleet.studies import deploy_frozen_noise, frozen_noise, xor_robustness


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``{placeholder: path}``: tiny checkpoints and files the cases refer to as ``{name}``."""
    d = tmp_path_factory.mktemp("sweep")
    key = jax.random.PRNGKey(0)
    lif = init_spiking(SpikingConfig(n_in=1, n_hidden=4, n_out=1), key)
    rng = np.random.default_rng(7)
    fn = DynapSE2Network(w_in=np.asarray(rng.normal(0, 4, (60, 2)), np.float32),
                         w_rec=np.asarray(rng.normal(0, 2, (2, 2)), np.float32),
                         neurons=DynapSE2.create(2), config=DynapSE2Config(60, 2))
    paths = {
        "bptt": checkpoint.save(d / "bptt.sfc", lif, {"task": "xor", "method": "bptt", "seed": 0}),
        "fn": checkpoint.save(d / "fn.sfc", fn, {"task": "frozen-noise", "method": "dynapse2", "seed": 0}),
        # no metadata: its 16 inputs (a wake-phrase shape) tell that it was not trained on xor
        "wide": checkpoint.save(d / "wide.sfc", init_rate(RateConfig(16, 8, 1), key)),
        "textfile": d / "notes.txt",
        "bad_mismatch": d / "bad-mismatch.toml",
        "bad_dead": d / "bad-dead.toml",
    }
    paths["textfile"].write_text("not a checkpoint")
    nominal = 'mismatch = [0.0, 0.05, 0.1, 0.2]\nprofile = "uniform"'
    paths["bad_mismatch"].write_text(DEFAULT_TOML.replace(nominal, 'mismatch = [0.0, 2.0]\nprofile = "uniform"'))
    paths["bad_dead"].write_text(DEFAULT_TOML.replace(nominal, "mismatch = [0.0]\ndead = [1.0]"))
    return {"dir": d, **{k: str(v) for k, v in paths.items()}}


@pytest.fixture
def no_work(monkeypatch):
    """Every expensive call fails the test: the errors must be found before the work."""
    def work(*args, **kwargs):
        pytest.fail("the command started its work before refusing the input")

    def run_experiment(spec=None, out_dir=None, **kwargs):
        if spec is not None:
            load_experiment(spec)  # the engine's first step: validating the file
        work()

    def report_dir(out_dir, out_path=None, **kwargs):
        read_stored_spec(out_dir)
        work()

    for target, name in ((design, "train_and_test"), (design, "test_design"), (cli_evaluate, "fleet_report"),
                         (cli_deploy, "deploy"), (xor_robustness, "run_study"), (frozen_noise, "run_study"),
                         (deploy_frozen_noise, "run_study")):
        monkeypatch.setattr(target, name, work)
    monkeypatch.setattr(cli_run, "run_experiment", run_experiment)
    monkeypatch.setattr(cli_run, "report_dir", report_dir)


TRAIN = ["train", "--task", "xor", "--seed", "0"]
EVAL = ["evaluate", "{bptt}", "--task", "xor", "--seed", "0"]
FLEET = EVAL + ["--chips", "2"]
DEPLOY = ["deploy", "{fn}", "--target", "dynapse2"]

#: (argv, command of the prefix, fragments of the message); ``{name}`` is a path of the ``files`` fixture,
#: ``{tmp}`` a fresh directory per case (``{tmp}/missing`` never exists)
CASES = [
    # ---- train
    (TRAIN + ["--model", "dynapse2", "--out", "{tmp}/a.sfc"], "train",
     ["--model dynapse2: the DYNAP-SE2 recipe (--method bptt --model dynapse2) is defined for --task frozen-noise "
      "only; --task xor trains LIF designs: leave --model out (--method teacher/bptt/ads/force/reservoir), or train "
      "--task frozen-noise --model dynapse2"]),
    (["train", "--task", "frozen-noise", "--method", "ads", "--seed", "0", "--out", "{tmp}/a.sfc"], "train",
     ["--method ads: --task frozen-noise trains DYNAP-SE2 designs (--model dynapse2), which --method bptt trains"]),
    (TRAIN + ["--out", "{tmp}/missing/a.sfc"], "train",
     ["--out {tmp}/missing/a.sfc: the directory {tmp}/missing does not exist; create it first (mkdir -p "
      "{tmp}/missing)"]),
    (TRAIN + ["--out", "{textfile}/a.sfc"], "train", ["--out {textfile}/a.sfc: the directory {textfile} is not a "
                                                      "directory"]),
    (TRAIN + ["--out", "{tmp}"], "train", ["--out {tmp}: is a directory; give a file path"]),
    (TRAIN + ["--out", "{bptt}"], "train", ["--out {bptt}: already exists; choose another path or pass --overwrite"]),
    (["train", "--task", "sudoku", "--seed", "0", "--out", "{tmp}/a.sfc"], "train", ["argument --task: invalid choice"]),
    (TRAIN[:3] + ["--method", "magic", "--seed", "0", "--out", "{tmp}/a.sfc"], "train",
     ["argument --method: invalid choice: 'magic'"]),
    (["train", "--task", "xor", "--seed", "-1", "--out", "{tmp}/a.sfc"], "train",
     ["argument --seed: expected a non-negative integer seed, got -1"]),
    (["train", "--task", "xor", "--seed", "1.5", "--out", "{tmp}/a.sfc"], "train", ["argument --seed", "'1.5'"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--test-trials", "0"], "train", ["argument --test-trials"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--steps", "abc"], "train", ["argument --steps", "'abc'"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--robust", "noise", "--robust-level", "2.0"], "train",
     ["argument --robust-level: expected a number in [0.0, 1.0], got 2.0"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--robust", "noise", "--robust-level", "nan"], "train",
     ["argument --robust-level"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--robust-chips", "3"], "train",
     ["--robust-chips sets the robust objective; it has no effect without --robust noise or adversarial"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--robust", "adversarial", "--robust-chips", "4"], "train",
     ["--robust-chips applies to --robust noise only", "got --robust adversarial"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--robust", "noise", "--robust-chips", "3"], "train",
     ["--robust-chips: expected a divisor of the batch size 32", "got 3"]),
    (["train", "--task", "wakephrase", "--seed", "0", "--out", "{tmp}/a.sfc", "--robust", "noise",
      "--robust-chips", "32"], "train",
     ["--robust-chips: expected a divisor of the batch size 16 of --task wakephrase (each chip gets an equal share "
      "of the batch), got 32; use 1, 2, 4, 8, 16"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--method", "ads", "--teacher", "{bptt}"], "train",
     ["--teacher: {bptt} holds a LIF network trained with --method bptt on xor; expected a teacher, a rate network "
      "trained with --method teacher"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--method", "ads", "--teacher", "{tmp}/nope.sfc"], "train",
     ["checkpoint {tmp}/nope.sfc: no such file"]),
    (TRAIN + ["--out", "{tmp}/a.sfc", "--method", "ads", "--hidden", "8"], "train", ["--hidden"]),
    # ---- evaluate
    (["evaluate", "{bptt}", "--task", "frozen-noise", "--seed", "0"], "evaluate",
     ["{bptt} was trained on --task xor, but --task frozen-noise was asked for; evaluate it with --task xor"]),
    (["evaluate", "{wide}", "--task", "xor", "--seed", "0"], "evaluate",
     ["{wide} holds a network with 16 input and 1 output channels, but --task xor has 1 and 1"]),
    (EVAL + ["--mismatch", "2.0"], "evaluate",
     ["--mismatch: expected levels in [0, 1] for --profile uniform", "got 2"]),
    (EVAL + ["--mismatch", "4", "--profile", "dynapse2-frozen"], "evaluate",
     ["--mismatch: expected levels in [0, 3] for --profile dynapse2-frozen", "got 4"]),
    (EVAL + ["--mismatch", "inf"], "evaluate", ["argument --mismatch", "(inf is not a finite number)"]),
    (EVAL + ["--mismatch", "nan"], "evaluate", ["argument --mismatch", "(nan is not a finite number)"]),
    (EVAL + ["--mismatch", "0.1,,0.2"], "evaluate", ["argument --mismatch", "got '0.1,,0.2' (entry 2 is empty)"]),
    (EVAL + ["--mismatch", "0.1,"], "evaluate", ["argument --mismatch", "(entry 2 is empty)"]),
    (EVAL + ["--mismatch", "-0.1"], "evaluate", ["argument --mismatch", "(-0.1 is out of range)"]),
    (EVAL + ["--mismatch", "0.1,0.1"], "evaluate", ["argument --mismatch", "(0.1 is repeated)"]),
    (EVAL + ["--mismatch", "1e"], "evaluate", ["argument --mismatch", "('1e' is not a number)"]),
    (EVAL + ["--quant-bits", "40"], "evaluate",
     ["argument --quant-bits: expected comma-separated weight bits, integers in [0, 32], got '40' "
      "(40 is out of range)"]),
    (EVAL + ["--quant-bits", "2.5"], "evaluate", ["argument --quant-bits", "('2.5' is not an integer)"]),
    (EVAL + ["--quant-bits", "4", "--quant-matrices", "w_inn"], "evaluate",
     ["argument --quant-matrices: expected comma-separated weight matrices from w_in, w_rec, w_out, w_feedback, "
      "w_fast, got 'w_inn' (unknown name 'w_inn')"]),
    (EVAL + ["--quant-matrices", "w_in"], "evaluate", ["--quant-matrices applies with --quant-bits only"]),
    (EVAL + ["--noise", "-0.05"], "evaluate", ["argument --noise", "(-0.05 is out of range)"]),
    (EVAL + ["--noise", "inf"], "evaluate", ["argument --noise", "(inf is not a finite number)"]),
    (EVAL + ["--dead", "1.0"], "evaluate", ["argument --dead: expected comma-separated fractions of dead neurons in "
                                            "[0, 1), got '1.0' (1.0 is out of range)"]),
    (EVAL + ["--dead", "0.4,"], "evaluate", ["argument --dead", "(entry 2 is empty)"]),
    (EVAL + ["--dead-select", "first"], "evaluate", ["--dead-select applies with --dead only"]),
    (EVAL + ["--mismatch", "0.1", "--profile", "nope"], "evaluate",
     ["--profile: expected one of uniform, dynapse1-measured, dynapse2-frozen, dynapse2-dynamic or a .toml/.json "
      "profile file, got 'nope'"]),
    (EVAL + ["--mismatch", "0.1", "--profile", "{tmp}/missing.toml"], "evaluate",
     ["--profile: profile file {tmp}/missing.toml: no such file"]),
    (EVAL + ["--profile", "dynapse2-frozen"], "evaluate", ["--profile applies with --mismatch only"]),
    (EVAL + ["--plot", "{tmp}/p.png"], "evaluate", ["--plot applies to a fleet evaluation only"]),
    (EVAL + ["--gain-refit"], "evaluate", ["--gain-refit applies to a fleet evaluation only"]),
    (EVAL + ["--json", "{tmp}/missing/m.json"], "evaluate",
     ["--json {tmp}/missing/m.json: the directory {tmp}/missing does not exist"]),
    (FLEET + ["--plot", "{tmp}/missing/p.png"], "evaluate",
     ["--plot {tmp}/missing/p.png: the directory {tmp}/missing does not exist"]),
    (FLEET + ["--json", "{tmp}/m.png"], "evaluate", ["--json and --plot name the same file"]),
    (EVAL + ["--json", "{tmp}"], "evaluate", ["--json {tmp}: is a directory"]),
    (EVAL + ["--trials", "0"], "evaluate", ["argument --trials: expected a positive integer, got 0"]),
    (EVAL + ["--chips", "-2"], "evaluate", ["argument --chips"]),
    (EVAL + ["--chips", "2", "--yield-threshold", "1.5"], "evaluate", ["argument --yield-threshold"]),
    (EVAL + ["--chips", "2", "--chunk", "0"], "evaluate", ["argument --chunk"]),
    (["evaluate", "{tmp}/nope.sfc", "--task", "xor", "--seed", "0"], "evaluate",
     ["checkpoint {tmp}/nope.sfc: no such file"]),
    (["evaluate", "{tmp}", "--task", "xor", "--seed", "0"], "evaluate", ["checkpoint {tmp}: no such file (a directory)"]),
    (["evaluate", "{textfile}", "--task", "xor", "--seed", "0"], "evaluate", ["checkpoint {textfile}: not a zip"]),
    (["evaluate", "{bptt}", "--task", "chess", "--seed", "0"], "evaluate", ["argument --task: invalid choice"]),
    (["evaluate", "{bptt}", "--task", "xor"], "evaluate", ["the following arguments are required: --seed"]),
    # ---- profiles
    (["profiles", "--all"], "profiles", ["unrecognized arguments: --all"]),
    # ---- run / report
    (["run", "{tmp}/nope.toml", "--out", "{tmp}/o"], "run", ["{tmp}/nope.toml: no such experiment file"]),
    (["run", "{bad_mismatch}", "--out", "{tmp}/o"], "run",
     ["{bad_mismatch}: perturbations.mismatch[1]: expected a level in [0, 1] (profile uniform: its relative sigmas "
      "at most 1), got 2.0"]),
    (["run", "{bad_dead}", "--out", "{tmp}/o"], "run",
     ["{bad_dead}: perturbations.dead[0]: expected a fraction in [0, 1), got 1.0"]),
    (["run", "--out", "{tmp}/missing/o"], "run",
     ["--out {tmp}/missing/o: the directory {tmp}/missing does not exist", "creates only the last directory"]),
    (["run", "--out", "{textfile}"], "run", ["--out {textfile}: is a file, expected a directory"]),
    (["run", "--workers", "0"], "run", ["argument --workers"]),
    (["run", "--address", "10.0.0.1:6379"], "run", ["--address applies to --backend ray only"]),
    (["run", "--backend", "slurm"], "run", ["argument --backend: invalid choice"]),
    (["report", "{tmp}/nothing"], "report", ["{tmp}/nothing: no experiment results here"]),
    (["report", "{tmp}", "--out", "{tmp}/missing/r.html"], "report",
     ["--out {tmp}/missing/r.html: the directory {tmp}/missing does not exist"]),
    # ---- deploy / inspect
    (["deploy", "{bptt}", "--target", "dynapse2", "--out", "{tmp}/c.json"], "deploy",
     ["{bptt} holds a LIF network trained with --method bptt on xor; only designs trained with --model dynapse2 can "
      "be deployed (spikefleet train --task frozen-noise --model dynapse2", "LIF/ADS/FORCE/reservoir designs cannot "
      "be deployed yet (conversion to DYNAP-SE2 is planned)"]),
    (DEPLOY + ["--out", "{tmp}/missing/c.json"], "deploy",
     ["--out {tmp}/missing/c.json: the directory {tmp}/missing does not exist"]),
    (DEPLOY + ["--out", "{tmp}/c.json", "--json", "{tmp}/missing/s.json"], "deploy",
     ["--json {tmp}/missing/s.json: the directory {tmp}/missing does not exist"]),
    (DEPLOY + ["--out", "{tmp}/c.json", "--chips", "5"], "deploy",
     ["argument --chips: expected an integer in [1, 4], got 5"]),
    (DEPLOY + ["--out", "{fn}", "--overwrite"], "deploy", ["--out would replace the checkpoint"]),
    (DEPLOY + ["--out", "{tmp}/c.json", "--calibration", "{tmp}/nope.csv"], "deploy", ["{tmp}/nope.csv"]),
    (["deploy", "{tmp}/nope.sfc", "--target", "dynapse2", "--out", "{tmp}/c.json"], "deploy",
     ["checkpoint {tmp}/nope.sfc: no such file"]),
    (["deploy", "{fn}", "--target", "loihi", "--out", "{tmp}/c.json"], "deploy", ["argument --target: invalid choice"]),
    (["inspect", "{tmp}/nope.json"], "inspect", ["{tmp}/nope.json"]),
    (["inspect", "{tmp}/nope.json", "--json", "{tmp}/missing/i.json"], "inspect",
     ["--json {tmp}/missing/i.json: the directory {tmp}/missing does not exist"]),
    (["inspect", "{tmp}"], "inspect", ["{tmp}"]),
    # ---- study
    (["study", "xor-robustness", "--out", "{tmp}/missing/o"], "study xor-robustness",
     ["--out {tmp}/missing/o: the directory {tmp}/missing does not exist"]),
    (["study", "xor-robustness", "--out", "{tmp}/o", "--checkpoints", "{tmp}/missing/ck"], "study xor-robustness",
     ["--checkpoints {tmp}/missing/ck: the directory {tmp}/missing does not exist"]),
    (["study", "xor-robustness", "--out", "{tmp}/o", "--designs", "bptt,,ads"], "study xor-robustness",
     ["argument --designs", "(entry 2 is empty)"]),
    (["study", "xor-robustness", "--out", "{tmp}/o", "--designs", "magic"], "study xor-robustness",
     ["argument --designs: expected comma-separated designs from ads, ads-nofast, bptt", "(unknown name 'magic')"]),
    (["study", "frozen-noise", "--out", "{tmp}/o", "--seeds", "0,,1"], "study frozen-noise",
     ["argument --seeds", "(entry 2 is empty)"]),
    (["study", "frozen-noise", "--out", "{tmp}/o", "--seeds", "-1"], "study frozen-noise",
     ["argument --seeds", "(-1 is out of range)"]),
    (["study", "frozen-noise", "--out", "{tmp}/o", "--address", "x:1"], "study frozen-noise",
     ["--address applies to --backend ray only"]),
    (["study", "frozen-noise", "--out", "{tmp}/missing/o"], "study frozen-noise",
     ["--out {tmp}/missing/o: the directory {tmp}/missing does not exist"]),
    (["study", "deploy-frozen-noise", "--checkpoints", "{tmp}/missing", "--out", "{tmp}/o"],
     "study deploy-frozen-noise", ["--checkpoints {tmp}/missing: no such directory"]),
    (["study", "claims", "{tmp}/nothing"], "study claims", ["{tmp}/nothing: no experiment results here"]),
    (["study", "chess"], "study", ["argument study: invalid choice: 'chess'"]),
    # ---- no command
    ([], None, ["the following arguments are required: command"]),
    (["frobnicate"], None, ["argument command: invalid choice: 'frobnicate'"]),
]


def _ids():
    return [" ".join(argv[:1] + [a for a in argv[1:] if a.startswith("--")][:3]) + f"-{i}"
            for i, (argv, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("argv, command, fragments", CASES, ids=_ids())
def test_bad_input_is_one_line_naming_the_option_before_any_work(argv, command, fragments, files, tmp_path,
                                                                 capsys, no_work):
    names = {**files, "tmp": str(tmp_path)}
    code = main([a.format(**names) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    prefix = f"spikefleet {command}: error: " if command else "spikefleet: error: "
    assert err.startswith(prefix), err
    for fragment in fragments:
        assert fragment.format(**names) in err, err
    assert not (tmp_path / "missing").exists()  # a missing output directory is never created


def _actions(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, action


def test_every_option_of_every_command_has_help_text():
    missing = [f"{prog} {'/'.join(a.option_strings) or a.dest}" for prog, a in _actions(build_parser())
               if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []
    commands = {prog for prog, _ in _actions(build_parser())}
    assert {"spikefleet train", "spikefleet evaluate", "spikefleet run", "spikefleet study xor-robustness"} <= commands


def test_train_help_says_what_trains_each_task():
    (task,) = [a for prog, a in _actions(build_parser()) if prog == "spikefleet train" and a.dest == "task"]
    assert set(task.choices) == {"xor", "frozen-noise", "wakephrase"}
    assert "wakephrase (hours of CPU" in task.help and "spikefleet run experiments/network-ads.toml" in task.help
    assert "frozen-noise (a DYNAP-SE2 network: --model dynapse2" in task.help


def test_a_library_error_during_a_command_has_the_command_prefix(files, tmp_path, capsys, no_work):
    """A SpikefleetError raised by library code (here the checkpoint loader) gets the command's prefix."""
    code = main(["evaluate", files["textfile"], files["bptt"], "--task", "xor", "--seed", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"spikefleet evaluate: error: checkpoint {files['textfile']}: not a zip")


def test_testing_a_design_on_another_task_names_both_tasks(files):
    """The Python API's counterpart of the evaluate check: test_design refuses a design of another task before
    simulating (it said ``inputs: expected last axis of size n_in=2, got (8, 1000, 1)``)."""
    from spikefleet.errors import ConfigError
    from spikefleet.tasks import get_task

    ckpt = checkpoint.load(files["bptt"])
    with pytest.raises(ConfigError, match=r"^model: a design trained on task 'xor' with 1 input channel\(s\) cannot "
                                          r"be tested on task 'frozen-noise' \(60 input channels\)"):
        design.test_design(ckpt.model, get_task("frozen-noise"), 0, 4, info=ckpt.info)


def test_a_checkpoint_that_appears_during_training_is_kept_and_the_model_rescued(tmp_path, capsys, monkeypatch):
    """--out is refused up front if it exists; a file that appears there while training is not replaced either
    (checkpoint.save's overwrite=False): the trained model goes to the temporary directory instead."""
    import tempfile

    from spikefleet.train.loop import TrainOutput

    out, rescue_dir = tmp_path / "m.sfc", tmp_path / "tmp"
    rescue_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue_dir))
    model = init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(0))

    def train_and_test(*args, **kwargs):
        out.write_text("someone else's file")
        return TrainOutput(model=model, info={"task": "xor", "method": "teacher",
                                              "test": {"accuracy": 0.5, "trials": 2, "loss": 1.0, "rate_hz": 0.0}})

    monkeypatch.setattr(design, "train_and_test", train_and_test)
    code = main(["train", "--task", "xor", "--method", "teacher", "--seed", "0", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    (rescued,) = rescue_dir.glob("spikefleet-rescued-*-m.sfc")
    assert code == 2 and err.count("\n") == 1
    assert err == (f"spikefleet train: error: --out {out}: a file appeared there during the training and was left "
                   f"unchanged; the trained model was saved to {rescued} instead: move it to {out}\n")
    assert out.read_text() == "someone else's file"
    assert checkpoint.load(rescued).info["method"] == "teacher"
