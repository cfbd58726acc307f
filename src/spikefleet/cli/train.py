"""``spikefleet train``: train a design with a registered method and save it as a checkpoint.

The flags of every method's options come from :mod:`spikefleet.train.registry`; this module parses them,
calls :func:`spikefleet.train.design.train_and_test` and prints one summary line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import spikefleet.train.design as training
from spikefleet import checkpoint
from spikefleet.cli._common import UsageError, _bounded, _positive_int, _refuse_overwrite, _seed
from spikefleet.errors import OutputError
from spikefleet.tasks import TASKS, get_task
from spikefleet.train.methods.base import OptionError
from spikefleet.train.registry import METHODS, all_options, misplaced_options, models, resolve

__all__ = ["add_parsers", "cmd_train"]


def add_parsers(sub) -> None:
    """Add the ``train`` subcommand to an argparse subparsers object."""
    p = sub.add_parser("train", help="train a design and save it as a checkpoint")
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--method", default="bptt", choices=list(METHODS),
                   help="training method (default: bptt): " + "; ".join(f"{m.name}: {m.doc}" for m in METHODS.values()))
    p.add_argument("--model", choices=models(),
                   help="neuron model of the design (default: the task's; dynapse2: DYNAP-SE2 in physical units, "
                        "trained by --method bptt)")
    p.add_argument("--seed", required=True, type=_seed)
    p.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    p.add_argument("--test-trials", type=_positive_int, default=200)
    for option in all_options().values():  # every method's options, as the registry declares them
        takers = "/".join(m.name for m in METHODS.values() if m.option(option.name))
        kw = {"dest": option.name, "default": None, "help": f"{option.doc} (--method {takers})"}
        if option.kind == "bool":
            kw["action"] = "store_true"
        elif option.kind == "design":
            kw["type"] = Path
        elif option.kind in ("int", "number"):
            kw["type"] = _bounded(int if option.kind == "int" else float, option.expected,
                                  lambda v, o=option: _valid(o, v))
        p.add_argument(option.flag, **kw)
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _save_trained(path: Path, model, info: dict) -> None:
    """Save a freshly trained model; if ``path`` cannot be written (disk full, read-only), save it in the
    temporary directory instead and say where, so that the training is not lost (exit code 1)."""
    try:
        checkpoint.save(path, model, info)
    except OutputError as exc:
        rescue = Path(tempfile.gettempdir()) / f"spikefleet-rescued-{os.getpid()}-{path.name}"
        try:
            checkpoint.save(rescue, model, info)
        except OutputError:
            raise exc from None
        exc.message += f"; the trained model was saved to {rescue} instead: move it to {path}"
        raise exc from None


def cmd_train(args) -> int:
    """``spikefleet train``: train a design, test it on the task's test trials and save the checkpoint."""
    _refuse_overwrite(args.out, args.overwrite)
    task = get_task(args.task)
    model = args.model or task.default_model
    method = resolve(args.method, model)
    if not method.supports(task):
        raise UsageError(f"spikefleet train: error: --task {args.task} needs --model {task.default_model}")
    given = {name: getattr(args, name) for name in all_options() if getattr(args, name) is not None}
    problem = misplaced_options(method, given)
    if problem:
        raise UsageError(f"spikefleet train: error: {problem}")
    options = {}
    for name, value in given.items():
        option = method.option(name)
        if option.kind == "design":
            continue
        try:
            options[name] = option.validate(value)
        except OptionError as exc:
            expected = " or ".join(option.choices) if option.kind == "choice" else exc.expected
            raise UsageError(f"spikefleet train: error: --method {method.name} supports {option.flag} {expected}, "
                             f"got {value}") from None
    problem = method.check(task, options)
    if problem:
        name, expected, got, fix = problem
        raise UsageError(f"spikefleet train: error: {method.option(name).flag}: expected {expected}, got {got}; {fix}")
    teacher = checkpoint.load(args.teacher, kind="rate").model if "teacher" in given else None
    out = training.train_and_test(task, method.name, args.seed, test_trials=args.test_trials, teacher=teacher,
                                  progress=not args.quiet, **method.configure(task, options))
    _save_trained(args.out, out.model, out.info)
    info, t = out.info, out.info["test"]
    parts = [f"weight noise {info['weight_noise']:g}"] if "weight_noise" in info else []
    if "loss_start" in info:
        parts.append(f"loss {info['loss_start']:.4f} -> {info['loss_end']:.4f}")
    if "validation" in info:
        parts.append(f"validation accuracy {info['validation']['accuracy']:.3f}")
    parts.append(f"test accuracy {t['accuracy']:.3f} ({t['trials']} trials), test MSE {t['loss']:.4f}")
    if t["rate_hz"]:
        parts.append(f"rate {t['rate_hz']:.1f} Hz")
    if "margin" in t:
        parts.append(f"margin {t['margin']:g}")
    if "counts" in t:
        parts.append("spike counts " + "; ".join(f"pattern {i}: {c}" for i, c in enumerate(t["counts"])))
    print(f"{args.task}/{method.name} seed {args.seed}: " + ", ".join(parts))
    print(f"saved {args.out}")
    return 0


def _valid(option, value) -> bool:
    try:
        option.validate(value)
    except OptionError:
        return False
    return True
