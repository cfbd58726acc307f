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

The commands live in this package: ``train`` in :mod:`spikefleet.cli.train`, ``evaluate``/``profiles`` in
:mod:`spikefleet.cli.evaluate`, ``run``/``report`` in :mod:`spikefleet.cli.run`, ``deploy``/``inspect`` in :mod:`spikefleet.cli.deploy`, ``study`` in
:mod:`spikefleet.cli.study`; their shared plumbing in ``spikefleet.cli._common``.

Every user error -- a bad argument or file, or an error the library raises while a command runs -- is
one line ``spikefleet <command>: error: <message>`` on stderr (``spikefleet: error:`` when no command
could be parsed) and exit code 2; an output that cannot be written (disk full, read-only directory)
gives such a line naming the file and exit code 1. Arguments and output locations are checked before
any work starts.
"""

from __future__ import annotations

import sys
import warnings

from spikefleet._version import __version__
from spikefleet.cli import deploy, evaluate, run, study, train
from spikefleet.cli._common import UsageError, _Parser, print_error
from spikefleet.errors import SpikefleetError, SpikefleetWarning

__all__ = ["main", "build_parser", "UsageError"]


def build_parser() -> _Parser:
    """The ``argparse`` parser of the ``spikefleet`` command and its subcommands."""
    parser = _Parser(prog="spikefleet", description="Train spiking networks that work on every chip.")
    parser.add_argument("--version", action="version", version=f"spikefleet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train.add_parsers(sub)
    evaluate.add_parsers(sub)
    p = sub.add_parser("run", help="run (or resume) an experiment file; without one, the built-in default "
                       "(XOR: BPTT, noise-injected BPTT and Network ADS on 100 chips)")
    run.add_run_arguments(p)
    p = sub.add_parser("report", help="write the HTML report of an experiment's output directory")
    run.add_report_arguments(p)
    deploy.add_parsers(sub)
    study.add_parsers(sub)
    return parser


#: ``spikefleet <command>`` -> the function that runs it
COMMANDS = {"train": train.cmd_train, "evaluate": evaluate.cmd_evaluate, "profiles": evaluate.cmd_profiles,
            "run": run.cmd_run, "report": run.cmd_report, "deploy": deploy.cmd_deploy, "inspect": deploy.cmd_inspect,
            "study": study.cmd_study}


def _one_line_warning(prog: str, fallback):
    """A ``warnings.showwarning`` that prints spikefleet's own warnings as one line on stderr (no source line)."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SpikefleetWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr if file is None else file)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikefleet`` command; returns the exit code (2 for user errors, 1 when an output
    cannot be written, 130 on Ctrl-C)."""
    prog = "spikefleet"
    try:
        args, extra = build_parser().parse_known_args(argv)
        prog = f"spikefleet {args.command}" + (f" {args.study}" if args.command == "study" else "")
        if extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(prog, warnings.showwarning)
            return COMMANDS[args.command](args)
    except (SpikefleetError, OSError) as exc:
        return print_error(exc, prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
