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
from spikefleet.cli._common import UsageError, _bounded, _holds, _output_file, _positive_int, _seed
from spikefleet.errors import ConfigError, OutputError
from spikefleet.tasks import TASKS, get_task
from spikefleet.train import presets
from spikefleet.train.gradient import default_fit_config
from spikefleet.train.methods.base import OptionError
from spikefleet.train.registry import METHODS, all_options, misplaced_options, models, resolve

__all__ = ["add_parsers", "cmd_train"]


def add_parsers(sub) -> None:
    """Add the ``train`` subcommand to an argparse subparsers object."""
    p = sub.add_parser("train", help="train a design and save it as a checkpoint")
    p.add_argument("--task", required=True, choices=sorted(TASKS),
                   help="task to train for: xor (seconds to minutes); frozen-noise (a DYNAP-SE2 network: "
                        "--model dynapse2, the task's default); wakephrase (hours of CPU: it synthesises its data "
                        "sets first; the paper's study of it is `spikefleet run experiments/network-ads.toml`)")
    p.add_argument("--method", default="bptt", choices=list(METHODS),
                   help="training method (default: bptt): " + "; ".join(f"{m.name}: {m.doc}" for m in METHODS.values()))
    p.add_argument("--model", choices=models(),
                   help="neuron model of the design (default: the task's; dynapse2: DYNAP-SE2 in physical units, "
                        "trained by --method bptt, for --task frozen-noise)")
    p.add_argument("--seed", required=True, type=_seed,
                   help="seed of every random draw of the training and of the test trials (a non-negative integer)")
    p.add_argument("--out", required=True, type=Path, help="checkpoint file to write (its directory must exist)")
    p.add_argument("--test-trials", type=_positive_int, default=200,
                   help="trials of the test after training (default 200)")
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


def _save_trained(path: Path, model, info: dict, overwrite: bool) -> None:
    """Save a freshly trained model; if ``path`` cannot be written (disk full, read-only; exit code 1) or a
    file appeared there during the training (exit code 2), save it in the temporary directory instead and
    say where, so that the training is not lost."""
    try:
        checkpoint.save(path, model, info, overwrite=overwrite)
    except (OutputError, checkpoint.CheckpointExistsError) as exc:
        fd, rescue = tempfile.mkstemp(prefix=f"spikefleet-rescued-{os.getpid()}-", suffix=f"-{path.name}")
        os.close(fd)
        try:
            checkpoint.save(rescue, model, info, overwrite=True)  # the empty file mkstemp just made for it
        except OutputError:
            os.unlink(rescue)
            raise exc from None
        if isinstance(exc, checkpoint.CheckpointExistsError):
            exc.message = f"--out {path}: a file appeared there during the training and was left unchanged"
        exc.message += f"; the trained model was saved to {rescue} instead: move it to {path}"
        raise exc from None


#: the neuron models of ``--model`` in user terms
MODEL_NAMES = {"lif": "LIF", "dynapse2": "DYNAP-SE2"}


def _check_task(args, task, model: str):
    """The method that ``--method``/``--model`` select for ``task``; refused, with what works, if it cannot."""
    words = f"{MODEL_NAMES.get(task.default_model, task.default_model)} designs"
    usable = "/".join(dict.fromkeys(m.alias or m.name for m in METHODS.values() if m.model == task.default_model))
    try:
        method = resolve(args.method, model)
    except ConfigError as exc:
        if args.model:
            raise
        raise UsageError(f"--method {args.method}: --task {args.task} trains {words} (--model {model}), "
                         f"which --method {usable} trains; use that") from None
    if method.supports(task):
        return method
    tasks = [name for name in sorted(TASKS) if method.supports(get_task(name))]
    raise UsageError(f"--model {model}: the {MODEL_NAMES.get(model, model)} recipe (--method "
                     f"{method.alias or method.name} --model {model}) is defined for --task "
                     f"{' and '.join(tasks) or '(none)'} only; --task {args.task} trains {words}: leave --model out "
                     f"(--method {usable})" + (f", or train --task {tasks[0]} --model {model}" if len(tasks) == 1
                                              else ""))


def _check_robust(task, method, given: dict, options: dict) -> None:
    """The robust-objective options act only with ``--robust``; ``--robust-chips`` must divide the batch."""
    robust = options.get("robust", "none")
    idle = [n for n in ("robust_profile", "robust_level", "robust_chips") if n in given and robust == "none"]
    if idle:
        raise UsageError(f"{method.option(idle[0]).flag} sets the robust objective; it has no effect without "
                         f"--robust {' or '.join(o for o in method.option('robust').choices if o != 'none')}: add "
                         f"--robust or leave {method.option(idle[0]).flag} out")
    if "robust_chips" in given and robust != "noise":
        raise UsageError(f"--robust-chips applies to --robust noise only (chips sampled per step of noise "
                         f"injection), got --robust {robust}; leave --robust-chips out")
    chips = options.get("robust_chips")
    batch = presets.preset(task).bptt.get("batch_size", default_fit_config("bptt").batch_size)
    if chips is not None and robust == "noise" and batch % chips:
        divisors = ", ".join(str(d) for d in range(1, batch + 1) if batch % d == 0)
        raise UsageError(f"--robust-chips: expected a divisor of the batch size {batch} of --task {task.name} "
                         f"(each chip gets an equal share of the batch), got {chips}; use {divisors}")


def cmd_train(args) -> int:
    """``spikefleet train``: train a design, test it on the task's test trials and save the checkpoint."""
    _output_file(args.out, "--out", args.overwrite)
    task = get_task(args.task)
    method = _check_task(args, task, args.model or task.default_model)
    given = {name: getattr(args, name) for name in all_options() if getattr(args, name) is not None}
    problem = misplaced_options(method, given)
    if problem:
        raise UsageError(problem)
    options = {}
    for name, value in given.items():
        option = method.option(name)
        if option.kind == "design":
            continue
        try:
            options[name] = option.validate(value)
        except OptionError as exc:
            expected = " or ".join(option.choices) if option.kind == "choice" else exc.expected
            raise UsageError(f"--method {method.name} supports {option.flag} {expected}, got {value}") from None
    problem = method.check(task, options)
    if problem:
        name, expected, got, fix = problem
        raise UsageError(f"{method.option(name).flag}: expected {expected}, got {got}; {fix}")
    if method.option("robust") is not None:
        _check_robust(task, method, given, options)
    teacher = _teacher(args.teacher) if "teacher" in given else None
    out = training.train_and_test(task, method.name, args.seed, test_trials=args.test_trials, teacher=teacher,
                                  progress=not args.quiet, **method.configure(task, options))
    _save_trained(args.out, out.model, out.info, args.overwrite)
    info, t = out.info, out.info["test"]
    parts = [f"weight noise {info['weight_noise']:g}"] if "weight_noise" in info else []
    if "loss_start" in info:
        parts.append(f"loss {info['loss_start']:.4f} -> {info['loss_end']:.4f}")
    if "validation" in info:
        kept = f"validation accuracy {info['validation']['accuracy']:.3f}"
        if "best_step" in info:  # the saved model is the best one by validation, not the last
            kept += (f" (kept model: step {info['best_step']} of {info.get('steps_run', '?')}"
                     + (", the untrained initial one" if info["best_step"] == 0 else "") + ")")
        parts.append(kept)
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


def _teacher(path: Path):
    """The rate network of ``--teacher PATH`` (refused, saying what the file holds, if it is not one)."""
    ckpt = checkpoint.load(path)
    if ckpt.meta.get("kind") != "rate":
        raise UsageError(f"--teacher: {_holds(path, ckpt)}; expected a teacher, a rate network trained with "
                         "--method teacher (spikefleet train --method teacher ...)")
    return ckpt.model


def _valid(option, value) -> bool:
    try:
        option.validate(value)
    except OptionError:
        return False
    return True
