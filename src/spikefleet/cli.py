"""Command-line interface: parsing and I/O only; every command is a library call.

    spikefleet train --task xor --method {teacher,bptt} --seed S --out PATH
    spikefleet evaluate PATH --task xor --trials N --seed S [--json FILE]
    spikefleet run [--out DIR] [--seed S]

Bad arguments or files give a one-line ``spikefleet: error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import checkpoint
from ._version import __version__
from .errors import SpikefleetError

EXIT_USAGE = 2


class UsageError(SpikefleetError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        raise UsageError(f"{self.prog}: error: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .tasks import TASKS
    from .train.recipes import METHODS

    parser = _Parser(prog="spikefleet", description="Train spiking networks that work on every chip.")
    parser.add_argument("--version", action="version", version=f"spikefleet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a design and save it as a checkpoint")
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--seed", required=True, type=_seed)
    p.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    p.add_argument("--steps", type=_positive_int, help="training steps (default: the recipe's)")
    p.add_argument("--hidden", type=_positive_int, help="hidden units (default: the recipe's)")
    p.add_argument("--test-trials", type=_positive_int, default=200)
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on fresh trials")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--trials", type=_positive_int, default=200)
    p.add_argument("--seed", required=True, type=_seed)
    p.add_argument("--json", type=Path, help="write the metrics to this JSON file")

    p = sub.add_parser("run", help="the main job: train the default XOR designs and evaluate them")
    p.add_argument("--out", type=Path, help="output directory (default: runs/run-<timestamp>)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--trials", type=_positive_int, default=200)
    p.add_argument("--quiet", action="store_true")
    return parser


def _refuse_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists; choose another path or pass --overwrite")


def _write_json(path: Path, data) -> None:
    checkpoint.atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def cmd_train(args) -> int:
    from .tasks import get_task
    from .train import api

    _refuse_overwrite(args.out, args.overwrite)
    task = get_task(args.task)
    overrides = {"steps": args.steps} if args.steps else {}
    out = api.train_and_test(task, args.method, args.seed, hidden=args.hidden, test_trials=args.test_trials,
                             progress=not args.quiet, **overrides)
    checkpoint.save(args.out, out.model, out.info)
    v, t = out.info["validation"], out.info["test"]
    print(f"{args.task}/{args.method} seed {args.seed}: validation accuracy {v['accuracy']:.3f}, "
          f"test accuracy {t['accuracy']:.3f} ({t['trials']} trials), test MSE {t['loss']:.4f}"
          + (f", rate {t['rate_hz']:.1f} Hz" if t["rate_hz"] else ""))
    print(f"saved {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from .tasks import get_task
    from .train import api

    ckpt = checkpoint.load(args.checkpoint)
    task = get_task(args.task)
    metrics = api.test(ckpt.model, task, args.seed, args.trials)
    print(json.dumps(metrics))
    if args.json:
        _write_json(args.json, {"checkpoint": str(args.checkpoint), "task": args.task, "seed": args.seed,
                                "info": {k: ckpt.info.get(k) for k in ("task", "method", "seed")}, **metrics})
    return 0


def cmd_run(args) -> int:
    from .train import api

    out = args.out or Path("runs") / time.strftime("run-%Y%m%d-%H%M%S")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"output directory {out} is not empty; choose another --out")
    rows = api.main_job(out, seed=args.seed, trials=args.trials, progress=not args.quiet)
    print(api.format_table(rows))
    print(f"results in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"train": cmd_train, "evaluate": cmd_evaluate, "run": cmd_run}[args.command](args)
    except SpikefleetError as exc:
        message = str(exc) if str(exc).startswith("spikefleet") else f"spikefleet: error: {exc}"
        print(message, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("spikefleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
