"""CLI: one-line errors with exit code 2, train -> evaluate round trip, no silent overwrite."""

import json

import jax
import pytest

from spikefleet import checkpoint
from spikefleet.cli.main import main
from spikefleet.models.rate import RateConfig, init_rate


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def teacher_ckpt(tmp_path):
    return checkpoint.save(tmp_path / "t.sfc", init_rate(RateConfig(1, 8, 1), jax.random.PRNGKey(0)),
                           {"task": "xor", "method": "teacher", "seed": 0})


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--task", "nope", "--method", "bptt", "--seed", "0", "--out", "x"], "invalid choice: 'nope'"),
    (["train", "--task", "xor", "--method", "magic", "--seed", "0", "--out", "x"], "invalid choice: 'magic'"),
    (["train", "--task", "xor", "--method", "bptt", "--seed", "-3", "--out", "x"], "non-negative integer seed"),
    (["train", "--task", "xor", "--method", "bptt", "--seed", "0", "--out", "x", "--hidden", "-4"],
     "expected a positive integer, got -4"),
    (["evaluate", "missing.sfc", "--task", "xor", "--seed", "0"], "no such file"),
    (["evaluate", "missing.sfc", "--task", "xor", "--seed", "0", "--trials", "0"], "positive integer, got 0"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_give_one_line_error_and_exit_2(capsys, argv, fragment):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("spikefleet")
    assert fragment in err
    assert "Traceback" not in err


def test_corrupted_checkpoint(capsys, tmp_path, teacher_ckpt):
    teacher_ckpt.write_bytes(teacher_ckpt.read_bytes()[:100])
    code, _, err = _run(capsys, "evaluate", str(teacher_ckpt), "--task", "xor", "--seed", "0")
    assert code == 2 and "unreadable or truncated" in err and err.count("\n") == 1


def test_evaluate_writes_json(capsys, tmp_path, teacher_ckpt):
    target = tmp_path / "m.json"
    code, out, _ = _run(capsys, "evaluate", str(teacher_ckpt), "--task", "xor", "--seed", "1", "--trials", "16",
                        "--json", str(target))
    assert code == 0
    printed = json.loads(out.strip().splitlines()[-1])
    saved = json.loads(target.read_text())
    assert printed["trials"] == saved["trials"] == 16
    assert 0.0 <= saved["accuracy"] <= 1.0 and saved["accuracy"] == printed["accuracy"]
    assert saved["info"]["method"] == "teacher"


def test_train_refuses_to_overwrite_and_saves_checkpoint(capsys, tmp_path):
    target = tmp_path / "t.sfc"
    code, out, _ = _run(capsys, "train", "--task", "xor", "--method", "teacher", "--seed", "2", "--out", str(target),
                        "--steps", "2", "--hidden", "4", "--test-trials", "8", "--quiet")
    assert code == 0 and "test accuracy" in out
    loaded = checkpoint.load(target)
    assert loaded.info["method"] == "teacher" and loaded.info["test"]["trials"] == 8
    assert loaded.model.config.n_hidden == 4
    before = target.read_bytes()
    code, _, err = _run(capsys, "train", "--task", "xor", "--method", "teacher", "--seed", "3", "--out", str(target),
                        "--steps", "2", "--hidden", "4", "--quiet")
    assert code == 2 and "already exists" in err
    assert target.read_bytes() == before


def test_run_refuses_non_empty_output_dir(capsys, tmp_path):
    (tmp_path / "precious.txt").write_text("keep")
    code, _, err = _run(capsys, "run", "--out", str(tmp_path))
    assert code == 2 and "not empty" in err
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_evaluate_over_a_fleet_writes_json_and_plot(capsys, tmp_path, teacher_ckpt):
    target = tmp_path / "fleet.json"
    code, out, err = _run(capsys, "evaluate", str(teacher_ckpt), str(teacher_ckpt), "--task", "xor", "--seed", "0",
                          "--trials", "8", "--chips", "3", "--mismatch", "0,0.1", "--quant-bits", "4",
                          "--json", str(target))
    assert code == 0, err
    report = json.loads(target.read_text())
    assert report["chips"] == 3 and report["trials"] == 8
    # 2 designs x (2 mismatch levels + 1 quantisation level)
    assert len(report["records"]) == 6
    first = report["records"][0]
    assert len(first["per_chip"]["accuracy"]) == 3
    assert first["summary"]["accuracy"]["median"] == pytest.approx(
        sorted(first["per_chip"]["accuracy"])[1])
    # the same checkpoint twice: paired comparisons see identical chips
    assert all(c["p_value"] == 1.0 for c in report["comparisons"])
    png = target.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "median acc" in out
    # refuses to overwrite either output
    code, _, err = _run(capsys, "evaluate", str(teacher_ckpt), "--task", "xor", "--seed", "0", "--trials", "8",
                        "--chips", "2", "--json", str(target))
    assert code == 2 and "already exists" in err


def test_fleet_noise_on_a_rate_network_is_a_clear_error(capsys, teacher_ckpt):
    code, _, err = _run(capsys, "evaluate", str(teacher_ckpt), "--task", "xor", "--seed", "0", "--trials", "4",
                        "--chips", "2", "--noise", "0.05")
    assert code == 2 and "membrane noise needs a spiking network" in err


def test_profiles_lists_builtin_sigmas(capsys):
    code, out, _ = _run(capsys, "profiles")
    assert code == 0
    assert "uniform" in out and "dynapse1-measured" in out
    assert "w_fast          0.310" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--mismatch", "0,-0.1"], "argument --mismatch: expected comma-separated finite mismatch levels >= 0, got "
                               "'0,-0.1' (-0.1 is out of range)"),
    (["--mismatch", "a,b"], "'a' is not a number"),
    (["--quant-bits", "2.5"], "quant-bits"),
    (["--profile", "nope", "--mismatch", "0.1"], "profile"),
    (["--dead", "1.5"], "dead"),
])
def test_bad_fleet_arguments(capsys, teacher_ckpt, argv, fragment):
    code, _, err = _run(capsys, "evaluate", str(teacher_ckpt), "--task", "xor", "--seed", "0", "--trials", "4",
                        "--chips", "2", *argv)
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_robust_training_needs_a_spiking_method(capsys, tmp_path):
    code, _, err = _run(capsys, "train", "--task", "xor", "--method", "teacher", "--seed", "0", "--robust", "noise",
                        "--out", str(tmp_path / "x.sfc"), "--steps", "1", "--quiet")
    assert code == 2 and "spiking" in err
    assert not (tmp_path / "x.sfc").exists()


def test_train_ads_from_a_teacher_checkpoint(capsys, tmp_path, teacher_ckpt):
    target = tmp_path / "ads.sfc"
    code, out, err = _run(capsys, "train", "--task", "xor", "--method", "ads", "--seed", "0", "--teacher",
                          str(teacher_ckpt), "--steps", "3", "--test-trials", "8", "--out", str(target), "--quiet")
    assert code == 0, err
    loaded = checkpoint.load(target, kind="ads")
    assert loaded.info["method"] == "ads" and loaded.info["teacher"]["source"] == "given"
    assert loaded.model.core.config.n_hidden == 320 and loaded.model.core.w_fast is not None
    assert "test accuracy" in out and "Hz" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--method", "ads", "--hidden", "8"], "apply to gradient methods"),
    (["--method", "bptt", "--no-fast"], "apply to --method ads/force only"),
    (["--method", "reservoir", "--hidden", "8"], "do not apply to --method reservoir"),
    (["--method", "force", "--no-fast"], "--no-fast applies to --method ads only"),
])
def test_method_specific_options_are_checked(capsys, tmp_path, argv, fragment):
    code, _, err = _run(capsys, "train", "--task", "xor", "--seed", "0", "--out", str(tmp_path / "x.sfc"),
                        "--quiet", *argv)
    assert code == 2 and fragment in err


def test_train_reservoir_saves_a_spiking_design(capsys, tmp_path):
    target = tmp_path / "res.sfc"
    code, out, err = _run(capsys, "train", "--task", "xor", "--method", "reservoir", "--seed", "0", "--steps", "4",
                          "--test-trials", "8", "--out", str(target), "--quiet")
    assert code == 0, err
    loaded = checkpoint.load(target, kind="spiking")
    assert loaded.info["method"] == "reservoir" and loaded.info["config"]["train_trials"] == 4
