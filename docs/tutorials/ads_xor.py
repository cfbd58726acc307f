"""Tutorial 2: Network ADS on temporal XOR.

Trains the tanh rate-network teacher, builds a Network ADS spiking layer around it (encoder,
fast balancing weights), learns the slow weights with the local online rule, and checks how the
design holds up on a fleet of mismatched chips.

    python docs/tutorials/ads_xor.py [OUT_DIR]

Outputs (in OUT_DIR, default: a new temporary directory): ``teacher.sfc``, ``ads.sfc`` and
``ads.json``. Small settings by default (2,000 training trials, a few CPU-minutes);
``SPIKEFLEET_TUTORIAL_FULL=1`` uses the paper's protocol (20 epochs x 500 trials) and also
trains the Ω^f = 0 ablation.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from spikefleet import checkpoint
from spikefleet.simulation import run_outputs
from spikefleet.fleet.chip import Condition, fleet_keys
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import get_profile
from spikefleet.models.ads import ADSConfig, ads_recurrent_scale, build_ads
from spikefleet.seeds import TEST, seed_stream
from spikefleet.tasks import get_task
from spikefleet.train.ads import evaluate_ads, teacher_dynamics, train_ads
from spikefleet.train.gradient import train

FULL = os.environ.get("SPIKEFLEET_TUTORIAL_FULL") == "1"
TEACHER_STEPS = 400  # the recipe's steps; a well-trained teacher is what ADS learns from
TEACHER_BATCH = 32 if FULL else 16
ADS = ADSConfig() if FULL else ADSConfig(epochs=2, trials_per_epoch=1000, val_trials=64)
CHIPS = 100 if FULL else 10
TRIALS = 200 if FULL else 50
SEED = 0


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    task = get_task("xor")

    # 1. The teacher: 64 tanh units, forward Euler at dt = 1 ms, trained with BPTT on the output MSE.
    teacher = train(task, "teacher", SEED, steps=TEACHER_STEPS, batch_size=TEACHER_BATCH, eval_every=50, val_trials=64,
                    progress=False)
    print(f"teacher: validation accuracy {teacher.info['validation']['accuracy']:.3f}")
    checkpoint.save(out / "teacher.sfc", teacher.model, teacher.info, overwrite=True)

    # 2. What the spiking layer learns: the teacher's state trajectory x̂ = tanh(x), not the label.
    probe = task.generate(2, seed=5)
    xhat = teacher_dynamics(teacher.model, probe.inputs)
    print(f"teacher dynamics x̂: {xhat.shape} (trials, steps, units)")

    # 3. The untrained design: encoder W_in = τ_mem·D̃, decoder W_out = W_inᵀ, fast weights Ω^f from the
    #    decoder's Gram matrix, slow weights Ω^s = 0 (learned next).
    fresh = build_ads(teacher.model, ADS, jax.random.PRNGKey(0))
    core = fresh.core
    print(f"ADS core: {core.config.n_hidden} LIF neurons, w_in {core.w_in.shape}, "
          f"mean |Ω^f| {float(np.abs(core.w_fast).mean()):.2e} (zero diagonal), Ω^s = 0: {not np.any(core.w_rec)}")

    # 4. Learning: online rule ΔΩ^s = η r εᵀ with error feedback k·ε, trial by trial; after every
    #    epoch the k = 0 network is validated and the lowest reconstruction error is kept.
    ads, info = train_ads(teacher.model, task, ADS, SEED, progress=False)
    best = info["validation"]
    print(f"ADS: best epoch {info['best_epoch']}, E_rec {best['e_rec']:.3f}, accuracy {best['accuracy']:.3f}, "
          f"rate {best['rate_hz']:.1f} Hz, {info['seconds_per_1000_trials']:.0f} s per 1000 trials")
    checkpoint.save(out / "ads.sfc", ads, info, overwrite=True)
    designs = {"ads": ads}
    if FULL:
        ablation, _ = train_ads(teacher.model, task, ADSConfig(fast=False), SEED, progress=False)
        designs["ads-nofast"] = ablation

    # 5. Test trials: reconstruction and accuracy of the inference network (k = 0).
    test = task.generate(TRIALS, seed_stream(1, TEST))
    metrics = evaluate_ads(ads, task, test, teacher_dynamics(teacher.model, test.inputs))
    teacher_labels = task.decide(run_outputs(teacher.model, test.inputs)[0])
    print(f"test: E_rec {metrics['e_rec']:.3f}, accuracy {metrics['accuracy']:.3f}")

    # 6. The fleet: accuracy against the true label and agreement with the teacher's decision (the
    #    label the paper scores ADS against); optionally the paper's recurrent down-scaling (Büchel et al. 2021, robustness protocol).
    keys = fleet_keys(1, CHIPS)
    rows = []
    for level in (0.0, 0.1):
        for compensate in (False, True):
            if compensate and level == 0.0:
                continue
            scale = ads_recurrent_scale("mismatch", level) if compensate else 1.0
            cond = Condition(mismatch=get_profile("uniform", level) if level else None, recurrent_scale=scale)
            for name, net in designs.items():
                res = evaluate_fleet(net, task, test, keys, cond, reference_labels=teacher_labels)
                acc, agree = res.summary("accuracy"), res.summary("agreement")
                rows.append({"design": name, "mismatch": level, "recurrent_scale": scale,
                             "median_accuracy": acc.median, "p5_accuracy": acc.p5,
                             "median_agreement": agree.median, "rate_hz": float(np.median(res.metrics["rate_hz"]))})
                print(f"{name} mismatch {level:g} (Ω x{scale:g}): median accuracy {acc.median:.3f}, "
                      f"agreement with teacher {agree.median:.3f}")
    (out / "ads.json").write_text(json.dumps({"test": metrics, "fleet": rows, "train": best}, indent=1))
    print(f"wrote {out / 'ads.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="spikefleet-tutorial-")))
