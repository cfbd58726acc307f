"""``spikefleet evaluate`` (test metrics, or a fleet report under perturbation sweeps) and ``spikefleet profiles``."""

from __future__ import annotations

import json
from pathlib import Path

import spikefleet.train.design as training
from spikefleet import checkpoint
from spikefleet.cli._common import _float_list, _fraction, _positive_int, _refuse_overwrite, _seed, _write_json
from spikefleet.fleet.mismatch import BUILTIN_PROFILES, builtin_profile
from spikefleet.fleet.quantize import DEFAULT_QUANT_MATRICES
from spikefleet.fleet.report import fleet_report
from spikefleet.tasks import TASKS, get_task

__all__ = ["add_parsers", "cmd_evaluate", "cmd_profiles"]


def add_parsers(sub) -> None:
    """Add the ``evaluate`` and ``profiles`` subcommands to an argparse subparsers object."""
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
