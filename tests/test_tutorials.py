"""The tutorials in docs/tutorials/ run end to end and produce their outputs.

Each script runs in a subprocess with its small default settings (a few CPU-minutes each) and
writes into a temporary directory given as its first argument; the test checks the exit code and
that every output exists and can be read back. Marked slow: ``python3 dev.py test-slow
tests/test_tutorials.py``. The fast test at the end only checks that every script compiles and is
included in its documentation page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"

#: script -> (documentation page, outputs it must write)
CASES = {
    "robust_xor.py": ("robust-xor.md", ("bptt.sfc", "bptt-noise.sfc", "fleet.json", "fleet.png")),
    "ads_xor.py": ("ads-xor.md", ("teacher.sfc", "ads.sfc", "ads.json")),
    "dynapse2_deploy.py": ("dynapse2-deploy.md", ("fn-noise.sfc", "config.json", "deploy.json")),
    "custom.py": ("custom.md", ("my-chip.toml", "order.sfc", "custom.json")),
    # the user guide's "your own task" page (docs/your-own-task.md) runs this script
    "your_own_task.py": ("../your-own-task.md", ("plain.sfc", "noise.sfc", "fleet.json", "louder.toml", "cli.sfc")),
}


def _run(script: str, out: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SPIKEFLEET_TUTORIAL_FULL"}
    return subprocess.run([sys.executable, str(TUTORIALS / script), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)


def _check_outputs(out: Path, outputs) -> None:
    from spikefleet import checkpoint

    for name in outputs:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, f"missing output {name}"
        if name.endswith(".sfc"):
            checkpoint.load(path)
        elif name == "config.json":
            from spikefleet.hardware.dynapse2.config import HardwareConfig

            HardwareConfig.load(path)
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_tutorial_runs_and_writes_its_outputs(script, tmp_path):
    result = _run(script, tmp_path)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "wrote" in result.stdout
    _check_outputs(tmp_path, CASES[script][1])


def test_every_tutorial_compiles_and_is_on_its_page():
    scripts = sorted(p.name for p in TUTORIALS.glob("*.py"))
    assert scripts == sorted(CASES), f"tutorial scripts {scripts} and the test cases {sorted(CASES)} differ"
    for script, (page, _) in CASES.items():
        compile((TUTORIALS / script).read_text(), script, "exec")
        text = (TUTORIALS / page).read_text()
        assert f'--8<-- "docs/tutorials/{script}"' in text, f"{page} must include {script} with a snippet"
