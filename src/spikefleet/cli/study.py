"""``spikefleet study NAME ...``: the paper studies of :mod:`spikefleet.studies` from the command line.

Usage::

    spikefleet study xor-robustness --out DIR [--checkpoints DIR] [--seed S] [--chips N] [--trials N] [--chunk N]
        [--designs a,b,...] [--gain-refit] [--ads-compensation] [--quiet]
    spikefleet study claims DIR
    spikefleet study frozen-noise --out DIR [--seeds 0,1,2,3] [--epochs N] [--chips N] [--jobs N]
        [--backend local|ray] [--address A]
    spikefleet study deploy-frozen-noise --checkpoints DIR --out DIR [--chips N] [--seed S]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikefleet.cli._common import UsageError, _name_list, _number_list, _output_dir, _positive_int, _seed
from spikefleet.experiments.backends import BACKENDS
from spikefleet.studies import claims, deploy_frozen_noise, frozen_noise, xor_robustness

__all__ = ["add_parsers", "cmd_study"]


_seed_list = _number_list("non-negative integer seeds", 0, integer=True)


def add_parsers(sub) -> None:
    """Add ``spikefleet study`` and its studies to an argparse subparsers object."""
    study = sub.add_parser("study", help="run one of the paper studies (spikefleet study NAME --help)")
    studies = study.add_subparsers(dest="study", required=True, parser_class=type(study))

    p = studies.add_parser("xor-robustness", help=xor_robustness.__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output directory (tables, records, plot); created if "
                   "missing, but its parent must exist")
    p.add_argument("--checkpoints", type=Path, help="directory of design checkpoints (default: OUT/designs); "
                   "missing ones are trained")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the training, the chips and the trials (default 0)")
    p.add_argument("--chips", type=_positive_int, default=100, help="chips in the fleet (default 100)")
    p.add_argument("--trials", type=_positive_int, default=200, help="test trials per chip (default 200)")
    p.add_argument("--chunk", type=_positive_int, default=16, help="chips simulated at once (memory bound; default 16)")
    p.add_argument("--designs", type=_name_list("designs", tuple(xor_robustness.DESIGNS)),
                   default=tuple(xor_robustness.DESIGNS),
                   help=f"designs to evaluate (default all: {','.join(xor_robustness.DESIGNS)})")
    p.add_argument("--gain-refit", action="store_true", help="re-fit an output gain per level (Network ADS protocol)")
    p.add_argument("--ads-compensation", action="store_true",
                   help="scale Network ADS recurrent weights per level as in the paper's protocol")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no line per record")

    p = studies.add_parser("claims", help="check the Network ADS paper's claims on a study's results")
    p.add_argument("dir", type=Path, help="output directory of `spikefleet run experiments/network-ads.toml`")

    p = studies.add_parser("frozen-noise", help=frozen_noise.__doc__.split("\n")[0])
    p.add_argument("--seeds", type=_seed_list, default=(0, 1, 2, 3),
                   help="training seeds, comma-separated (default 0,1,2,3)")
    p.add_argument("--epochs", type=_positive_int, default=30_000, help="full-batch training epochs (default 30000)")
    p.add_argument("--chips", type=_positive_int, default=200, help="chips per mismatch level (default 200)")
    p.add_argument("--jobs", type=_positive_int, default=2, help="runs at once (default 2)")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="local worker processes (default) or Ray")
    p.add_argument("--address", help="--backend ray: address of an existing Ray cluster")
    p.add_argument("--out", type=Path, required=True, help="output directory (records.json, table.md, checkpoints); "
                   "created if missing, but its parent must exist")

    p = studies.add_parser("deploy-frozen-noise", help=deploy_frozen_noise.__doc__.split("\n")[0])
    p.add_argument("--checkpoints", type=Path, required=True, help="directory of frozen-noise study checkpoints (*.sfc)")
    p.add_argument("--out", type=Path, required=True, help="output directory (records.json, table.md, configs/); "
                   "created if missing, but its parent must exist")
    p.add_argument("--chips", type=_positive_int, default=200, help="chips per mismatch level (default 200)")
    p.add_argument("--seed", type=_seed, default=0, help="quantiser seed")


def _xor_robustness(args) -> int:
    _output_dir(args.out, "--out")
    if args.checkpoints is not None:
        _output_dir(args.checkpoints, "--checkpoints")
    designs = args.designs

    def show(record, seconds):
        if not args.quiet:
            acc = np.median(record.metrics["accuracy"])
            print(f"  {record.design:<11} {record.sweep:<10} {record.level:<5g} median acc {acc:.3f} "
                  f"({seconds:.0f} s)", flush=True)

    tables, seconds = xor_robustness.run_study(
        args.out, checkpoints=args.checkpoints, seed=args.seed, chips=args.chips, trials=args.trials,
        chunk=args.chunk, designs=designs, gain_refit=args.gain_refit, ads_compensation=args.ads_compensation,
        progress=not args.quiet, on_record=show)
    print(tables)
    print(f"wrote {args.out}/tables.md, records.json, robustness.png ({seconds:.0f} s)")
    return 0


def _claims(args) -> int:
    print(claims.claims_of_dir(args.dir), end="")
    return 0


def _frozen_noise(args) -> int:
    if args.address is not None and args.backend != "ray":
        raise UsageError("--address applies to --backend ray only")
    _output_dir(args.out, "--out")
    table, seconds = frozen_noise.run_study(args.out, list(args.seeds), args.epochs, chips=args.chips, jobs=args.jobs,
                                            backend=args.backend, address=args.address)
    print(table)
    print(f"wall time {seconds:.0f} s")
    return 0


def _deploy_frozen_noise(args) -> int:
    if not args.checkpoints.is_dir():
        raise UsageError(f"--checkpoints {args.checkpoints}: no such directory; give the --out directory of "
                         "`spikefleet study frozen-noise`")
    _output_dir(args.out, "--out")
    def show(path, record):
        print(f"{path.name}: " + ", ".join(f"{m}: correct@30% {x['levels']['0.3']['correct']:.3f}"
                                           for m, x in record["deployed"].items()), flush=True)

    table, seconds = deploy_frozen_noise.run_study(args.checkpoints, args.out, chips=args.chips, seed=args.seed,
                                                   on_record=show)
    print(table)
    print(f"wall time {seconds:.0f} s")
    return 0


_STUDIES = {"xor-robustness": _xor_robustness, "claims": _claims, "frozen-noise": _frozen_noise,
            "deploy-frozen-noise": _deploy_frozen_noise}


def cmd_study(args) -> int:
    """``spikefleet study NAME``: run the named study and print its tables."""
    return _STUDIES[args.study](args)
