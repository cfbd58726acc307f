"""Command-line interface: parsing and I/O only; every command is a library call.

    spikefleet train --task xor --method {teacher,bptt,ads,force,reservoir} --seed S --out PATH [--robust ...]
    spikefleet train --task frozen-noise --model dynapse2 --seed S --out PATH [--robust noise]
    spikefleet evaluate PATH [PATH ...] --task xor --trials N --seed S [--json FILE]
        [--chips N --mismatch 0,0.05,0.1,0.2 --profile NAME --quant-bits 6,4 --noise 0.05 --dead 0.4 --plot PNG]
    spikefleet profiles
    spikefleet run [FILE.toml] [--out DIR] [--backend local|ray] [--workers N] [--address A] [--no-report]
    spikefleet report DIR [--out FILE] [--overwrite]
    spikefleet deploy PATH --target dynapse2 --out CONFIG.json [--method M --seed S --calibration TABLE ... --json FILE]
    spikefleet inspect CONFIG.json [--json FILE]
    spikefleet study {xor-robustness,claims,frozen-noise,deploy-frozen-noise} ...

The commands live in this package: ``train``/``evaluate``/``profiles`` here, ``run``/``report`` in
:mod:`spikefleet.cli.run`, ``deploy``/``inspect`` in :mod:`spikefleet.cli.deploy`, ``study`` in
:mod:`spikefleet.cli.study`; their shared plumbing in ``spikefleet.cli._common``.

Bad arguments or files give a one-line ``spikefleet: error: ...`` on stderr and exit code 2; an output
that cannot be written (disk full, read-only directory) gives such a line naming the file and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import spikefleet.train.design as training
from spikefleet import checkpoint
from spikefleet._version import __version__
from spikefleet.cli import deploy, run, study
from spikefleet.cli._common import (EXIT_IO, EXIT_USAGE, UsageError, _bounded, _float_list, _fraction, _Parser, _positive_int,
                                    _refuse_overwrite, _seed, _write_json)
from spikefleet.errors import OutputError, SpikefleetError
from spikefleet.fleet.mismatch import BUILTIN_PROFILES, builtin_profile
from spikefleet.fleet.quantize import DEFAULT_QUANT_MATRICES
from spikefleet.fleet.report import fleet_report
from spikefleet.tasks import TASKS, get_task
from spikefleet.train.methods.base import OptionError
from spikefleet.train.registry import METHODS, all_options, misplaced_options, models, resolve

__all__ = ["main", "build_parser", "UsageError"]


def build_parser() -> _Parser:
    """The ``argparse`` parser of the ``spikefleet`` command and its subcommands."""
    parser = _Parser(prog="spikefleet", description="Train spiking networks that work on every chip.")
    parser.add_argument("--version", action="version", version=f"spikefleet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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

    p = sub.add_parser("evaluate", help="evaluate checkpoints on fresh trials, optionally over a fleet of chips")
    p.add_argument("checkpoint", type=Path, nargs="+")
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--trials", type=_positive_int, default=200)
    p.add_argument("--seed", required=True, type=_seed, help="seeds the test trials, the chips and runtime noise")
    p.add_argument("--json", type=Path, help="write the metrics (per chip and summaries) to this JSON file")
    p.add_argument("--chips", type=_positive_int, help="fleet size (default 100 when a perturbation is given)")
    p.add_argument("--mismatch", type=_float_list, help="mismatch levels, e.g. 0,0.05,0.1,0.2")
    p.add_argument("--profile", default="uniform", help=f"mismatch profile: {', '.join(BUILTIN_PROFILES)} "
                   "or a .toml/.json file")
    p.add_argument("--quant-bits", type=_float_list, help="weight bits, e.g. 6,4 (0 = full precision)")
    p.add_argument("--quant-matrices", default=",".join(DEFAULT_QUANT_MATRICES),
                   help="weight matrices that --quant-bits quantises (add w_fast to include fast weights)")
    p.add_argument("--noise", type=_float_list, help="membrane noise levels (fraction of the gap per step)")
    p.add_argument("--dead", type=_float_list, help="fractions of dead neurons, e.g. 0.4")
    p.add_argument("--dead-select", choices=("random", "first"), default="random")
    p.add_argument("--gain-refit", action="store_true", help="re-fit an output gain per level (Network ADS protocol)")
    p.add_argument("--ads-compensation", action="store_true",
                   help="scale Network ADS recurrent weights per level as in the paper's protocol (Büchel et al. 2021)")
    p.add_argument("--yield-threshold", type=_fraction, default=0.9, help="accuracy a chip needs to count as good")
    p.add_argument("--chunk", type=_positive_int, default=16, help="chips simulated at once (memory bound)")
    p.add_argument("--plot", type=Path, help="robustness plot PNG (default: next to --json)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --json/--plot files")

    sub.add_parser("profiles", help="list the mismatch profiles and their sigmas")

    p = sub.add_parser("run", help="run (or resume) an experiment file; without one, the built-in default "
                       "(XOR: BPTT, noise-injected BPTT and Network ADS on 100 chips)")
    run.add_run_arguments(p)
    p = sub.add_parser("report", help="write the HTML report of an experiment's output directory")
    run.add_report_arguments(p)
    deploy.add_parsers(sub)
    study.add_parsers(sub)
    return parser


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


def cmd_evaluate(args) -> int:
    """``spikefleet evaluate``: test metrics of checkpoints, or a fleet report when a perturbation is given."""
    fleet_mode = args.chips or any(v is not None for v in (args.mismatch, args.quant_bits, args.noise, args.dead))
    plot = args.plot or (args.json.with_suffix(".png") if args.json and fleet_mode else None)
    for path in (args.json, plot):
        if path is not None:
            _refuse_overwrite(path, args.overwrite)
    ckpts, paths = {}, {}
    for path in args.checkpoint:
        name = path.stem if path.stem not in ckpts else str(path)
        ckpts[name], paths[name] = checkpoint.load(path), str(path)
    task = get_task(args.task)
    if not fleet_mode:
        results = {}
        for name, ckpt in ckpts.items():
            metrics = training.test_design(ckpt.model, task, args.seed, args.trials, info=ckpt.info)
            results[name] = {"checkpoint": paths[name], "task": args.task, "seed": args.seed,
                             "info": {k: ckpt.info.get(k) for k in ("task", "method", "seed")}, **metrics}
            print(json.dumps({"design": name, **metrics}))
        if args.json:
            _write_json(args.json, next(iter(results.values())) if len(results) == 1 else results)
        return 0
    report = fleet_report({name: c.model for name, c in ckpts.items()}, task, seed=args.seed,
                          trials=args.trials, chips=args.chips or 100, mismatch=args.mismatch,
                          profile=args.profile, quant_bits=args.quant_bits,
                          quant_matrices=tuple(m.strip() for m in args.quant_matrices.split(",") if m.strip()),
                          noise=args.noise, dead=args.dead,
                          dead_select=args.dead_select, gain_refit=args.gain_refit,
                          ads_compensation=args.ads_compensation,
                          yield_threshold=args.yield_threshold, chunk=args.chunk, plot=plot)
    print(report["table"])
    for c in report["comparisons"]:
        print(f"paired Wilcoxon {c['a']} vs {c['b']} [{c['sweep']} {c['level']:g}]: median {c['median_a']:.3f} vs "
              f"{c['median_b']:.3f}, p = {c['p_value']:.3g}")
    if args.json:
        _write_json(args.json, {k: v for k, v in report.items() if k != "table"})
        print(f"wrote {args.json}")
    if plot:
        print(f"wrote {plot}")
    return 0


def cmd_profiles(args) -> int:
    """``spikefleet profiles``: print the built-in mismatch profiles and their sigmas."""
    for name, description in BUILTIN_PROFILES.items():
        print(f"{name}: {description}")
        level_note = "sigma = level; shown at level 0.1" if name == "uniform" else "level 1"
        profile = builtin_profile(name, 0.1 if name == "uniform" else 1.0)
        print(f"  ({level_note}, positive parameters: {profile.positive_rule})")
        for param, sigma in profile.sigmas:
            print(f"  {param:<14}{sigma:>7.3f}")
    print("user profiles: a .toml or .json file with a [sigmas] table (see spikefleet.fleet.mismatch)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikefleet`` command; returns the exit code (2 for user errors, 1 when an output
    cannot be written, 130 on Ctrl-C)."""
    try:
        args = build_parser().parse_args(argv)
        commands = {"train": cmd_train, "evaluate": cmd_evaluate, "profiles": cmd_profiles, "run": run.cmd_run,
                    "report": run.cmd_report, "deploy": deploy.cmd_deploy, "inspect": deploy.cmd_inspect,
                    "study": study.cmd_study}
        return commands[args.command](args)
    except OutputError as exc:  # a write failed (disk full, read-only, ...): not a usage error
        print(f"spikefleet: error: {exc}", file=sys.stderr)
        return EXIT_IO
    except SpikefleetError as exc:
        message = str(exc) if str(exc).startswith("spikefleet") else f"spikefleet: error: {exc}"
        print(message, file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # any other failed file operation: one line naming the file, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"spikefleet: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("spikefleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
