"""Tutorial 3: a DYNAP-SE2 network from training to a hardware configuration file.

Trains DYNAP-SE2 (DynapSim) networks on the frozen-noise task with and without weight-noise
injection, measures them on a fleet of chips with frozen circuit mismatch, deploys the robust one
(per-core quantisation to 4 base currents and 4-bit masks, bias codes, CAM/SRAM routing) to a
samna-compatible configuration file, and simulates what the file describes.

    python docs/tutorials/dynapse2_deploy.py [OUT_DIR]

Outputs (in OUT_DIR, default: a new temporary directory): ``fn-noise.sfc``, ``config.json`` and
``deploy.json``. Small settings by default (4,000 epochs, about a CPU-minute);
``SPIKEFLEET_TUTORIAL_FULL=1`` trains the reference's 30,000 epochs and uses 200 chips.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from spikefleet import checkpoint
from spikefleet.cli.main import main as spikefleet_cli
from spikefleet.fleet.chip import Condition, fleet_keys
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import get_profile
from spikefleet.hardware.dynapse2.config import HardwareConfig, deploy
from spikefleet.hardware.dynapse2.constraints import HardwareLimitError
from spikefleet.hardware.dynapse2.reverse import network_from_config
from spikefleet.models.dynapse2 import DynapSE2Config, init_dynapse2
from spikefleet.tasks import get_task
from spikefleet.train.design import test_design as test
from spikefleet.train.dynapse2 import DynapSE2TrainConfig, train_dynapse2_runs

FULL = os.environ.get("SPIKEFLEET_TUTORIAL_FULL") == "1"
EPOCHS = 30_000 if FULL else 4_000
CHIPS = 200 if FULL else 50
SEED = 0


def correct_fraction(net, task, batch, keys, level):
    """Fraction of chips on which the target neuron out-fires the other one for every pattern."""
    cond = Condition(mismatch=get_profile("dynapse2-frozen", level)) if level else Condition()
    res = evaluate_fleet(net, task, batch, keys, cond)
    return float(np.mean(res.metrics["margin"] > 0))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    # 1. The task: 2 frozen Poisson patterns (60 channels, 0.5 s at 50 Hz); pattern i should make
    #    output neuron i fire more than the other one.
    task = get_task("frozen-noise")
    batch = task.generate(task.n_out, 0)
    print(f"patterns {batch.inputs.shape}, {int(batch.inputs.sum())} input spikes")

    # 2. Train two networks from the same initial weights, at once (one vmap lane each): plain, and
    #    with weight-noise injection W(1 + σξ), σ = 0.1 (the dynapse2-dynamic profile at level 0.3).
    config = DynapSE2TrainConfig(epochs=EPOCHS, chunk=500)
    (plain, plain_info), (robust, robust_info) = train_dynapse2_runs(task, config, [SEED, SEED], [0.0, 0.1],
                                                                     progress=False)
    for name, net, info in (("plain", plain, plain_info), ("noise", robust, robust_info)):
        t = test(net, task, SEED, task.n_out)
        print(f"{name}: loss {info['loss_start']:.4f} -> {info['loss_end']:.4f}, spike counts {t['counts']}, "
              f"margin {t['margin']:g}")
    checkpoint.save(out / "fn-noise.sfc", robust, robust_info, overwrite=True)

    # 3. Frozen circuit mismatch: all 24 DynapSim parameters of every neuron, σ = level/3.
    keys = fleet_keys(2022, CHIPS)
    fleet = {name: {lvl: correct_fraction(net, task, batch, keys, lvl) for lvl in (0.3, 0.5)}
             for name, net in (("plain", plain), ("noise", robust))}
    print(f"fraction of {CHIPS} chips correct at 30 % / 50 % mismatch: {fleet}")

    # 4. Deploy: place on cores, quantise each core's incoming weights to 4 base currents + 4-bit
    #    masks + sign, translate currents to (coarse, fine) bias codes, allocate tags/CAM/SRAM.
    dep = deploy(robust, method="alternating", key=0)
    path = dep.save(out / "config.json")
    q = dep.quantization
    print(f"placement: {dep.placement.summary()}")
    print(f"quantisation loss per core {q.loss}, base currents of core 0 (A) {q.base_currents[0]}")
    codes = dep.translations[0].codes
    print("bias codes of core 0:", {k: codes[k] for k in ("SOIF_LEAK_N", "SOIF_SPKTHR_P", "SYAM_W0_P")})
    print(f"CAM entries per neuron (≤ 64): {np.count_nonzero(q.masks_in, axis=0) + np.count_nonzero(q.masks_rec, axis=0)}")

    # 5. Read the file back and simulate exactly what it describes (read-back currents, masks).
    deployed = network_from_config(HardwareConfig.load(path))
    t = test(deployed, task, SEED, task.n_out)
    fleet["deployed"] = {lvl: correct_fraction(deployed, task, batch, keys, lvl) for lvl in (0.3, 0.5)}
    print(f"deployed network: spike counts {t['counts']}, margin {t['margin']:g}; "
          f"chips correct {fleet['deployed']}")
    spikefleet_cli(["inspect", str(path)])  # what `spikefleet inspect config.json` prints

    # 6. Hardware limits are checked before anything is written, and every violation is listed.
    too_big = init_dynapse2(DynapSE2Config(n_in=2100, n_hidden=30), jax.random.PRNGKey(0))
    try:
        deploy(too_big)
    except HardwareLimitError as err:
        codes_found = sorted({v.code for v in err.violations})
        print(f"oversized network: {len(err.violations)} violations {codes_found}; first: {err.violations[0]}")

    summary = {"epochs": EPOCHS, "chips": CHIPS, "correct": fleet, "quantization_loss": q.loss.tolist(),
               "deployed_counts": t["counts"]}
    (out / "deploy.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {path} and {out / 'deploy.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="spikefleet-tutorial-")))
