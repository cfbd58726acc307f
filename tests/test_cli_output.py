"""What ``spikefleet evaluate``/``train`` print besides their tables (issue 23): spikefleet's warnings as one
line with the command's prefix, the fleet progress bar on a terminal only (and never with ``--quiet``), and
the training summary naming the step of the kept model."""

from __future__ import annotations

import io
import sys

import jax
import pytest

import spikefleet.cli.evaluate as cli_evaluate
from spikefleet import checkpoint
from spikefleet.cli.main import main
from spikefleet.models.spiking import SpikingConfig, init_spiking


@pytest.fixture(scope="module")
def lif(tmp_path_factory):
    d = tmp_path_factory.mktemp("out")
    model = init_spiking(SpikingConfig(n_in=1, n_hidden=4, n_out=1), jax.random.PRNGKey(0))
    return checkpoint.save(d / "lif.sfc", model, {"task": "xor", "method": "bptt", "seed": 0})


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _evaluate(lif, extra, monkeypatch, tty):
    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    code = main(["evaluate", str(lif), "--task", "xor", "--seed", "0", "--trials", "4", "--chips", "2",
                 "--mismatch", "0.1", *extra])
    return code, err.getvalue()


def test_partly_applied_profile_warns_in_one_line(lif, tmp_path, monkeypatch):
    profile = tmp_path / "p.toml"
    profile.write_text("[sigmas]\ntau_mem = 0.1\nItau_mem = 0.2\n")  # Itau_mem is a DYNAP-SE2 current
    code, err = _evaluate(lif, ["--profile", str(profile), "--quiet"], monkeypatch, tty=False)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spikefleet evaluate: warning: mismatch profile 'p'")
    assert "['Itau_mem']" in lines[0] and "['tau_mem']" in lines[0]


def test_progress_bar_on_a_terminal_only(lif, monkeypatch):
    code, err = _evaluate(lif, [], monkeypatch, tty=True)
    assert code == 0 and "chip" in err and "mismatch" in err  # the bar: condition and chips done
    code, err = _evaluate(lif, ["--quiet"], monkeypatch, tty=True)
    assert code == 0 and err == ""
    code, err = _evaluate(lif, [], monkeypatch, tty=False)
    assert code == 0 and err == ""


def test_progress_requested_from_fleet_report(lif, monkeypatch):
    seen = {}

    def fake_report(designs, task, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt  # stop after recording the call

    monkeypatch.setattr(cli_evaluate, "fleet_report", fake_report)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert main(["evaluate", str(lif), "--task", "xor", "--seed", "0", "--chips", "2"]) == 130
    assert seen["progress"] is True


def test_train_names_the_kept_step(tmp_path, capsys):
    out = tmp_path / "b.sfc"
    assert main(["train", "--task", "xor", "--method", "bptt", "--seed", "0", "--steps", "2", "--out", str(out),
                 "--quiet"]) == 0
    info = checkpoint.load(out).info
    line = capsys.readouterr().out.splitlines()[0]
    assert f"(kept model: step {info['best_step']} of {info['steps_run']}" in line
    assert info["steps_run"] == 2
