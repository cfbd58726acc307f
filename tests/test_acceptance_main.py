"""The CI acceptance lane (``python3 dev.py test-acceptance``; ``-m acceptance``): the main job, reduced.

``spikefleet run`` on the built-in default experiment with 8 chips instead of 100 and 200 trials per
chip (the default: 100), report included. Its designs train with the default's own recipes, so its
train units are the XOR acceptance checks of the foundation issue on 200 fresh test trials: the
teacher >= 0.98, BPTT >= 0.95 (rate 1-100 Hz); the noise-injected BPTT and the one-epoch Network ADS
(its documented test accuracy: 0.985) >= 0.95. Network ADS at the paper's size (A2: N = 320, 10k
trials, E_rec and rate) is in tests/test_ads.py; the command-line path in tests/test_acceptance_cli.py.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from spikefleet.experiments.spec import DEFAULT_TOML, default_experiment, parse_experiment_text
from test_acceptance_cli import spikefleet

pytestmark = pytest.mark.acceptance

#: the reduced main job: (text of the built-in default, replacement)
REDUCTIONS = (("chips = 100\n", "chips = 8\n"), ("trials = 100  #", "trials = 200  #"))


def reduced_default() -> str:
    text = DEFAULT_TOML
    for old, new in REDUCTIONS:
        assert text.count(old) == 1, f"the built-in default no longer says {old!r}: update REDUCTIONS"
        text = text.replace(old, new)
    return text


def test_reduced_main_job_through_spikefleet_run(tmp_path):
    spec_file = tmp_path / "xor-default-reduced.toml"
    spec_file.write_text(reduced_default())
    default, reduced = default_experiment(), parse_experiment_text(reduced_default(), "<reduced>")
    assert reduced.designs() == default.designs()  # the default's designs, trained by its recipes
    assert reduced.perturbations == default.perturbations and reduced.seeds == default.seeds
    assert (reduced.fleet.chips, reduced.fleet.trials) == (8, 200)
    out = tmp_path / "run"
    res = spikefleet("run", spec_file, "--out", out, "--workers", "2", "--quiet")

    evaluated = [d.name for d in default.designs() if d.evaluate]
    assert evaluated == ["bptt", "bptt-noise", "ads"]
    levels = default.perturbations.levels()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["spec_hash"] == reduced.hash()
    assert [(r["design"], r["sweep"], r["level"]) for r in summary["rows"]] == [
        (d, s, float(v)) for d in evaluated for s, v in levels]
    assert all(r["chips"] == 8 and r["seeds"] == 1 for r in summary["rows"])
    assert res.stdout.strip() == (out / "summary.txt").read_text().strip()  # --quiet prints the table only
    page = (out / "report.html").read_text()
    for design in evaluated:
        assert f"<h3>{design}</h3>" in page
    assert "Missing units" not in page and page.count("data:image/png;base64,") >= 2 * len(evaluated)

    with sqlite3.connect(out / "results.sqlite") as conn:
        infos = {u: json.loads(i) for u, i in conn.execute("SELECT unit_id, info_json FROM units WHERE kind='train'")}
    tests = {uid.split("/")[1]: info["test"] for uid, info in infos.items()}
    assert set(tests) == {"teacher", "bptt", "bptt-noise", "ads"}
    assert all(t["trials"] == 200 for t in tests.values())
    assert tests["teacher"]["accuracy"] >= 0.98, tests["teacher"]
    assert tests["bptt"]["accuracy"] >= 0.95, tests["bptt"]
    assert 1.0 <= tests["bptt"]["rate_hz"] <= 100.0, tests["bptt"]
    assert tests["bptt-noise"]["accuracy"] >= 0.95, tests["bptt-noise"]
    assert tests["ads"]["accuracy"] >= 0.95, tests["ads"]
    nominal = {r["design"]: r["median acc"] for r in summary["rows"] if (r["sweep"], r["level"]) == ("mismatch", 0.0)}
    assert all(v >= 0.95 for v in nominal.values()), nominal  # the fleet's nominal chips solve the task
