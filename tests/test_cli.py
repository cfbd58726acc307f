"""CLI: one-line errors with exit code 2, train -> evaluate round trip, no silent overwrite."""

import json

import jax
import pytest

from spikefleet import checkpoint
from spikefleet.cli import main
from spikefleet.network import RateConfig, init_rate


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
