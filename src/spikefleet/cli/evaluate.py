"""``spikefleet evaluate`` (test metrics, or a fleet report under perturbation sweeps) and ``spikefleet profiles``.

Every argument is checked before any work: the perturbation levels (mismatch levels up to the
profile's :func:`~spikefleet.fleet.mismatch.max_level`, quantisation bits, noise, dead fractions),
options that only act with a sweep they belong to, the output files, and that every checkpoint was
trained for ``--task`` (``info["task"]``, else its input/output channels).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import spikefleet.train.design as training
from spikefleet import checkpoint
from spikefleet.cli._common import (UsageError, _fraction, _name_list, _number_list, _output_file, _positive_int,
                                    _seed, _write_json)
from spikefleet.errors import ConfigError
from spikefleet.fleet.mismatch import BUILTIN_PROFILES, MAX_SIGMA, builtin_profile, max_level
from spikefleet.fleet.quantize import DEFAULT_QUANT_MATRICES
from spikefleet.fleet.report import fleet_report
from spikefleet.tasks import TASKS, get_task

__all__ = ["add_parsers", "cmd_evaluate", "cmd_profiles", "QUANT_MATRIX_NAMES"]

#: the weight matrices ``--quant-matrices`` may name (``w_fast``: Network ADS fast weights, off by default)
QUANT_MATRIX_NAMES = DEFAULT_QUANT_MATRICES + ("w_fast",)
#: the largest number of weight bits (``spikefleet.fleet.quantize`` quantises 1 to 32 bits)
MAX_BITS = 32
#: options that act only in a fleet evaluation, or only with one sweep: option -> (attribute, the sweep or None)
_NEEDS = {"--profile": ("profile", "mismatch"), "--quant-matrices": ("quant_matrices", "quant_bits"),
          "--dead-select": ("dead_select", "dead"), "--plot": ("plot", None), "--gain-refit": ("gain_refit", None),
          "--ads-compensation": ("ads_compensation", None), "--yield-threshold": ("yield_threshold", None),
          "--chunk": ("chunk", None)}


def add_parsers(sub) -> None:
    """Add the ``evaluate`` and ``profiles`` subcommands to an argparse subparsers object."""
    p = sub.add_parser("evaluate", help="evaluate checkpoints on fresh trials, optionally over a fleet of chips")
    p.add_argument("checkpoint", type=Path, nargs="+", help="checkpoints written by spikefleet train (.sfc)")
    p.add_argument("--task", required=True, choices=sorted(TASKS),
                   help="the task the checkpoints were trained for (checked against each checkpoint)")
    p.add_argument("--trials", type=_positive_int, default=200, help="test trials (per chip in a fleet; default 200)")
    p.add_argument("--seed", required=True, type=_seed, help="seeds the test trials, the chips and runtime noise")
    p.add_argument("--json", type=Path, help="write the metrics (per chip and summaries) to this JSON file")
    p.add_argument("--chips", type=_positive_int, help="fleet size (default 100 when a perturbation is given)")
    p.add_argument("--mismatch", type=_number_list("finite mismatch levels >= 0"),
                   help="mismatch levels, e.g. 0,0.05,0.1,0.2: at most the level at which the profile's largest "
                        f"relative sigma reaches {MAX_SIGMA:g} (uniform: 1, the level is the sigma; dynapse2-*: 3, "
                        "sigma = level/3; dynapse1-measured: 3.225)")
    p.add_argument("--profile", help=f"mismatch profile of --mismatch: {', '.join(BUILTIN_PROFILES)} "
                   "or a .toml/.json file (default uniform; spikefleet profiles lists them)")
    p.add_argument("--quant-bits", type=_number_list(f"weight bits, integers in [0, {MAX_BITS}]", 0, MAX_BITS,
                                                     integer=True),
                   help=f"weight bits, e.g. 6,4: integers in [0, {MAX_BITS}] (0 = full precision)")
    p.add_argument("--quant-matrices", type=_name_list("weight matrices", QUANT_MATRIX_NAMES),
                   help=f"weight matrices that --quant-bits quantises (default {','.join(DEFAULT_QUANT_MATRICES)}; "
                        "add w_fast to include fast weights)")
    p.add_argument("--noise", type=_number_list("finite noise levels >= 0"),
                   help="membrane noise levels (fraction of the threshold-reset gap per step), finite, >= 0")
    p.add_argument("--dead", type=_number_list("fractions of dead neurons in [0, 1)", 0.0, 1.0, hi_open=True),
                   help="fractions of dead neurons in [0, 1), e.g. 0.4")
    p.add_argument("--dead-select", choices=("random", "first"),
                   help="which neurons --dead silences: random (default) or the first ones")
    p.add_argument("--gain-refit", action="store_true", help="re-fit an output gain per level (Network ADS protocol)")
    p.add_argument("--ads-compensation", action="store_true",
                   help="scale Network ADS recurrent weights per level as in the paper's protocol (Büchel et al. 2021)")
    p.add_argument("--yield-threshold", type=_fraction, help="accuracy a chip needs to count as good (default 0.9)")
    p.add_argument("--chunk", type=_positive_int, help="chips simulated at once (memory bound; default 16)")
    p.add_argument("--plot", type=Path, help="robustness plot PNG of a fleet evaluation (default: next to --json)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --json/--plot files")
    p.add_argument("--quiet", action="store_true", help="no progress bar during a fleet evaluation")

    sub.add_parser("profiles", help="list the mismatch profiles and their sigmas")


def _check_options(args, fleet_mode: bool) -> None:
    """Options that would be ignored are refused; ``--profile`` and the ``--mismatch`` levels are checked."""
    for flag, (name, sweep) in _NEEDS.items():
        value = getattr(args, name)
        if value is None or value is False:
            continue
        if sweep is None and not fleet_mode:
            raise UsageError(f"{flag} applies to a fleet evaluation only; add --chips N or a perturbation "
                             "(--mismatch, --quant-bits, --noise, --dead), or leave it out")
        if sweep is not None and getattr(args, sweep) is None:
            raise UsageError(f"{flag} applies with --{sweep.replace('_', '-')} only; add it or leave {flag} out")
    profile = args.profile or "uniform"
    if profile not in BUILTIN_PROFILES and not profile.endswith((".toml", ".json")):
        raise UsageError(f"--profile: expected one of {', '.join(BUILTIN_PROFILES)} or a .toml/.json profile file, "
                         f"got {profile!r} (spikefleet profiles lists them)")
    try:
        limit = max_level(profile)
    except (ConfigError, OSError) as exc:
        raise UsageError(f"--profile: {exc}") from None
    for level in args.mismatch or ():
        if level > limit:
            raise UsageError(f"--mismatch: expected levels in [0, {limit:g}] for --profile {profile} (at level "
                             f"{limit:g} its largest relative sigma reaches {MAX_SIGMA:g}: a chip parameter "
                             f"scattered by its own value), got {level:g}")


def _check_trained_for(path: Path, ckpt, task) -> None:
    """Refuse a checkpoint trained for another task: by its ``info["task"]``, else by its channels."""
    trained = ckpt.info.get("task")
    if isinstance(trained, str) and trained != task.name:
        raise UsageError(f"{path} was trained on --task {trained}, but --task {task.name} was asked for; "
                         f"evaluate it with --task {trained}, or pass a checkpoint trained on {task.name}")
    config = ckpt.model.config
    sizes = (getattr(config, "n_in", None), getattr(config, "n_out", None))
    if None not in sizes and sizes != (task.n_in, task.n_out):
        raise UsageError(f"{path} holds a network with {sizes[0]} input and {sizes[1]} output channels, but "
                         f"--task {task.name} has {task.n_in} and {task.n_out}: it was trained on another task; "
                         "pass the --task it was trained on")


def cmd_evaluate(args) -> int:
    """``spikefleet evaluate``: test metrics of checkpoints, or a fleet report when a perturbation is given."""
    fleet_mode = bool(args.chips) or any(v is not None for v in (args.mismatch, args.quant_bits, args.noise,
                                                                args.dead))
    _check_options(args, fleet_mode)
    plot = args.plot or (args.json.with_suffix(".png") if args.json and fleet_mode else None)
    if args.json is not None and plot is not None and args.json.resolve() == plot.resolve():
        raise UsageError("--json and --plot name the same file; choose two paths")
    for option, path in (("--json", args.json), ("--plot" if args.plot else "--json (its plot)", plot)):
        if path is not None:
            _output_file(path, option, args.overwrite)
    task = get_task(args.task)
    ckpts, paths = {}, {}
    for path in args.checkpoint:
        ckpt = checkpoint.load(path)
        _check_trained_for(path, ckpt, task)
        name = path.stem if path.stem not in ckpts else str(path)
        ckpts[name], paths[name] = ckpt, str(path)
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
                          profile=args.profile or "uniform", quant_bits=args.quant_bits,
                          quant_matrices=args.quant_matrices or DEFAULT_QUANT_MATRICES,
                          noise=args.noise, dead=args.dead, dead_select=args.dead_select or "random",
                          gain_refit=args.gain_refit, ads_compensation=args.ads_compensation,
                          yield_threshold=0.9 if args.yield_threshold is None else args.yield_threshold,
                          chunk=args.chunk or 16, plot=plot, progress=not args.quiet and sys.stderr.isatty())
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
        print(f"  ({level_note}, levels up to {max_level(name):g}, positive parameters: {profile.positive_rule})")
        for param, sigma in profile.sigmas:
            print(f"  {param:<14}{sigma:>7.3f}")
    print("user profiles: a .toml or .json file with a [sigmas] table (see spikefleet.fleet.mismatch)")
    return 0
