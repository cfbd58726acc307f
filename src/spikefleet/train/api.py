"""High-level training/evaluation calls used by the CLI (and usable from Python).

``train_and_test`` trains a design and measures it on fresh test trials; ``main_job`` is the
default ``spikefleet run``: it trains the XOR teacher and a BPTT spiking network, evaluates
both on the same fresh test trials, saves checkpoints and a ``summary.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import checkpoint
from ..evaluation import evaluate_model
from .bptt import seed_stream
from .recipes import TEST_STREAM, TrainOutput, train

__all__ = ["train_and_test", "test", "main_job", "format_table"]


def test(model, task, seed: int, trials: int) -> dict:
    """Metrics on ``trials`` fresh test trials (task seed ``seed_stream(seed, 3)``)."""
    batch = task.generate(trials, seed_stream(seed, TEST_STREAM))
    return {"trials": trials, **evaluate_model(model, task, batch)}


def train_and_test(task, method: str, seed: int, *, test_trials: int = 200, **kwargs) -> TrainOutput:
    start = time.perf_counter()
    out = train(task, method, seed, **kwargs)
    out.info["train_seconds"] = time.perf_counter() - start
    out.info["test"] = test(out.model, task, seed, test_trials)
    return out


def main_job(out_dir: Path, *, seed: int = 0, trials: int = 200, progress: bool = True) -> list[dict]:
    """Train and evaluate the default XOR designs; write checkpoints and ``summary.json``."""
    from ..tasks import get_task

    task = get_task("xor")
    out_dir = Path(out_dir)
    rows = []
    for method in ("teacher", "bptt"):
        result = train_and_test(task, method, seed, test_trials=trials, progress=progress)
        checkpoint.save(out_dir / f"xor-{method}.sfc", result.model, result.info)
        t = result.info["test"]
        rows.append({"task": "xor", "method": method, "seed": seed, "val_accuracy": result.info["validation"]["accuracy"],
                     "test_accuracy": t["accuracy"], "test_mse": t["loss"], "rate_hz": t["rate_hz"],
                     "train_seconds": result.info["train_seconds"]})
    checkpoint.atomic_write_bytes(out_dir / "summary.json", (json.dumps(rows, indent=2) + "\n").encode())
    return rows


def format_table(rows: list[dict]) -> str:
    header = f"{'task':<6}{'method':<10}{'val acc':>9}{'test acc':>10}{'test MSE':>10}{'rate Hz':>9}{'train s':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['task']:<6}{r['method']:<10}{r['val_accuracy']:>9.3f}{r['test_accuracy']:>10.3f}"
                     f"{r['test_mse']:>10.4f}{r['rate_hz']:>9.1f}{r['train_seconds']:>9.1f}")
    return "\n".join(lines)
