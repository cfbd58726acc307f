r"""``spikefleet deploy`` and ``spikefleet inspect``: DYNAP-SE2 configurations from the command line.

    spikefleet deploy PATH --target dynapse2 --out config.json [--method alternating|autoencoder] [--seed S]
        [--calibration TABLE ...] [--chips N] [--cores N] [--share strict|average] [--overwrite] [--json SUMMARY]
    spikefleet inspect config.json [--calibration TABLE ...] [--json OUT] [--overwrite]

``deploy`` loads a :class:`~spikefleet.models.dynapse2.DynapSE2Network` checkpoint (a checkpoint of any
other design is refused, saying what it holds: converting LIF designs is planned), runs
:func:`~spikefleet.hardware.dynapse2.config.deploy` (place → quantise → route → bias codes), writes the
configuration atomically, reads the written file back and prints its summary plus the quantisation
error against the float weights. ``inspect`` loads and validates a configuration and prints the same
summary from the configuration alone plus the input and output channel maps. The summaries (and the bias
read-back they show) are :mod:`spikefleet.hardware.dynapse2.summary`. Hardware-limit violations raise
:class:`~.hardware.dynapse2.constraints.HardwareLimitError` (a ``ConfigError``): ``main`` prints every
violation with its hint and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path

from spikefleet import checkpoint
from spikefleet.cli._common import UsageError, _bounded, _holds, _output_file, _positive_int, _seed, _write_json
from spikefleet.hardware.dynapse2.calibration import load_calibration_table
from spikefleet.hardware.dynapse2.config import HardwareConfig, deploy
from spikefleet.hardware.dynapse2.constraints import HardwareSpec
from spikefleet.hardware.dynapse2.mapping import SHARE_MODES
from spikefleet.hardware.dynapse2.quantize import METHODS
from spikefleet.hardware.dynapse2.summary import format_summary, quantization_errors, summarize

__all__ = ["add_parsers", "cmd_deploy", "cmd_inspect"]

#: the most chips a board may have (one modelled position per chip, :class:`HardwareSpec`)
MAX_CHIPS = len(HardwareSpec().chip_positions)


def add_parsers(sub) -> None:
    """Add the ``deploy`` and ``inspect`` subcommands to an argparse subparsers object."""
    p = sub.add_parser("deploy", help="turn a trained DYNAP-SE2 network into a hardware configuration (JSON)")
    p.add_argument("checkpoint", type=Path, help="checkpoint of a DynapSE2Network (spikefleet train --model dynapse2)")
    p.add_argument("--target", required=True, choices=("dynapse2",), help="hardware target")
    p.add_argument("--out", required=True, type=Path, help="configuration file to write (JSON)")
    p.add_argument("--method", choices=METHODS, default="alternating",
                   help="weight quantisation: alternating (default; exact masks + NNLS currents) or autoencoder "
                        "(the reference's, Çakal et al. 2024)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the quantiser (default 0)")
    p.add_argument("--calibration", type=Path, nargs="+", default=[], metavar="TABLE",
                   help="bias-generator calibration tables (.csv/.json; per core > per chip > global > P3 model)")
    p.add_argument("--chips", type=_bounded(int, f"an integer in [1, {MAX_CHIPS}]", lambda v: 1 <= v <= MAX_CHIPS),
                   default=1, help=f"chips on the board (default 1, at most {MAX_CHIPS})")
    p.add_argument("--cores", type=_positive_int, help="cores to use (default: the fewest that fit)")
    p.add_argument("--share", choices=SHARE_MODES, default="strict",
                   help="per-core parameters: strict (different parameters never share a core) or average")
    p.add_argument("--json", type=Path, help="also write the summary as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out/--json files")

    p = sub.add_parser("inspect", help="validate a DYNAP-SE2 configuration and summarise it")
    p.add_argument("config", type=Path, help="configuration file written by spikefleet deploy")
    p.add_argument("--calibration", type=Path, nargs="+", default=[], metavar="TABLE",
                   help="the calibration tables used at deployment (to read the bias codes back exactly)")
    p.add_argument("--json", type=Path, help="write the summary (with the full channel maps) as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")


# ----------------------------------------------------------------------------------- commands


def _dynapse2_checkpoint(path: Path):
    """The checkpoint at ``path`` if it holds a DYNAP-SE2 network; else a refusal saying what it holds
    and what can be deployed."""
    ckpt = checkpoint.load(path)
    if ckpt.meta.get("kind") != "dynapse2":
        raise UsageError(f"{_holds(path, ckpt)}; only designs trained with --model dynapse2 can be deployed "
                         "(spikefleet train --task frozen-noise --model dynapse2 --seed S --out net.sfc); "
                         "LIF/ADS/FORCE/reservoir designs cannot be deployed yet (conversion to DYNAP-SE2 is planned)")
    return ckpt


def cmd_deploy(args) -> int:
    """``spikefleet deploy``: deploy a DYNAP-SE2 checkpoint, write the configuration, print its summary."""
    if args.json is not None and args.json.resolve() == args.out.resolve():
        raise UsageError("--json and --out name the same file; choose two paths")
    if args.out.resolve() == args.checkpoint.resolve():
        raise UsageError("--out would replace the checkpoint; choose another path")
    for option, path in (("--out", args.out), ("--json", args.json)):
        if path is not None:
            _output_file(path, option, args.overwrite)
    ckpt = _dynapse2_checkpoint(args.checkpoint)
    tables = [load_calibration_table(p) for p in args.calibration]
    spec = HardwareSpec(n_chips=args.chips)
    dep = deploy(ckpt.model, method=args.method, key=args.seed, spec=spec, generator=tables or None,
                 n_cores=args.cores, share=args.share)
    dep.save(args.out)
    summary = summarize(HardwareConfig.load(args.out), tables=tables, source=str(args.out))
    summary["checkpoint"] = {"path": str(args.checkpoint), **{k: ckpt.info.get(k) for k in
                                                              ("task", "method", "seed", "weight_noise")}}
    summary["quantization"].update(seed=args.seed, **quantization_errors(dep, ckpt.model))
    print(format_summary(summary, title=f"deployed {args.checkpoint} → {args.out}"))
    if args.json is not None:
        _write_json(args.json, summary)
        print(f"wrote {args.json}")
    return 0


def cmd_inspect(args) -> int:
    """``spikefleet inspect``: validate a configuration file and print its summary and channel maps."""
    if args.json is not None:
        _output_file(args.json, "--json", args.overwrite)
    tables = [load_calibration_table(p) for p in args.calibration]
    summary = summarize(HardwareConfig.load(args.config), tables=tables, source=str(args.config), maps=True)
    print(format_summary(summary, title=f"configuration {args.config}", maps=True))
    if args.json is not None:
        _write_json(args.json, summary)
        print(f"wrote {args.json}")
    return 0
