r"""Run an experiment: train its designs, evaluate them on a fleet, resume after any interruption.

:func:`run_experiment` builds the unit graph (:mod:`spikefleet.experiments.units`: train units,
then eval units that depend on them), skips the units already in the output directory's result
store (:mod:`spikefleet.experiments.store`), runs the rest on a backend
(:mod:`spikefleet.experiments.backends`) at most ``workers`` at a time as their dependencies
finish (seed by seed, longest estimated chain of work first: :func:`~spikefleet.experiments.units.priorities`),
records each unit the moment it finishes, and at the end prints and returns the summary table.

Resuming: stop a run any way you like (Ctrl-C, ``kill -9``, a power cut) and start the same
command again: recorded units are never redone or recorded twice, unfinished ones are redone
from scratch. Because every unit's randomness comes only from the paper's seeds (named seed
streams) and its inputs are the checkpoints of the units it depends on, the results are
bit-identical for any backend, worker count and interruption history.

Summary table: one row per design and condition, over the chips of all seeds pooled
(:func:`~spikefleet.experiments.summary.summarize_store`); written as ``summary.txt`` and
``summary.json`` and printed at the end.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from spikefleet.errors import SpikefleetError
from spikefleet.experiments.backends import check_backend_args, make_backend
from spikefleet.experiments.spec import ExperimentSpec, default_experiment, load_experiment
from spikefleet.experiments.store import DB_NAME, LOCK_NAME, ResultStore, RunLock, StoreError
from spikefleet.experiments.store_report import report_dir
from spikefleet.experiments.summary import summarize_store, summary_table, write_summary
from spikefleet.experiments.units import Unit, build_units, priorities

__all__ = ["run_experiment", "ExperimentResults", "UnitFailed", "default_out_dir", "schedule"]


class UnitFailed(SpikefleetError):
    """A unit raised in its worker; the message names the unit and the error."""


@dataclass(frozen=True)
class ExperimentResults:
    """What :func:`run_experiment` returns (all units are in ``out_dir/results.sqlite``)."""

    spec: ExperimentSpec
    out_dir: Path
    rows: tuple  # summary rows (dicts), one per design and condition
    table: str
    units_total: int
    units_run: int  # units executed by this call
    units_skipped: int  # units already recorded before this call
    seconds: float


def default_out_dir(spec: ExperimentSpec) -> Path:
    """``spec.output`` if set, else ``runs/<name>``."""
    return Path(spec.output) if spec.output else Path("runs") / spec.name


def _resolve_spec(spec) -> ExperimentSpec:
    if spec is None:
        return default_experiment()
    if isinstance(spec, ExperimentSpec):
        return spec
    return load_experiment(spec)


def _payload(spec: ExperimentSpec, store: ResultStore, unit: Unit, spec_dict: dict) -> dict:
    payload = {"spec": spec_dict, "unit": dataclasses.asdict(unit), "model": None, "teacher": None,
               "cache_dir": str(store.dir / "cache")}
    if unit.teacher is not None:
        payload["teacher"] = store.checkpoint_path(unit.teacher, spec.train_seed(unit.teacher, unit.seed)).read_bytes()
    if unit.kind == "eval":
        payload["model"] = store.checkpoint_path(unit.design, spec.train_seed(unit.design, unit.seed)).read_bytes()
    return payload


def _record(store: ResultStore, unit: Unit, result: dict) -> str:
    if unit.kind == "train":
        store.record_train(unit, result["checkpoint"], result["info"], result["seconds"], result["cpu_seconds"])
        acc = result["info"].get("test", {}).get("accuracy")
        shown = f"test accuracy {acc:.3f}" if acc is not None else "trained"
        return f"{unit.unit_id}: {shown} ({result['seconds']:.0f} s)"
    store.record_eval(unit, result["metrics"], result["summary"], result["info"], result["seconds"],
                      result["cpu_seconds"])
    return f"{unit.unit_id}: median accuracy {np.median(result['metrics']['accuracy']):.3f} ({result['seconds']:.0f} s)"


def _say(message: str, progress: bool) -> None:
    if progress:
        tqdm.write(message, file=sys.stderr)


def run_experiment(spec=None, out_dir=None, *, backend: str = "local", workers: int = 2, address: str | None = None,
                   progress: bool = True, report: bool = False) -> ExperimentResults:
    """Run (or resume) ``spec`` in ``out_dir``; returns the summary (see the module docstring).

    ``spec``: an :class:`ExperimentSpec`, a path to an experiment file, or ``None`` for the
    built-in default. ``out_dir``: default ``spec.output`` or ``runs/<name>``. ``backend``:
    ``"local"`` (process pool) or ``"ray"`` (``address`` joins an existing cluster).
    ``progress``: show a progress bar and status lines on stderr and print the table at the end.
    ``report``: also write ``out_dir/report.html`` (:func:`~spikefleet.experiments.store_report.report_dir`).

    Raises :class:`~spikefleet.experiments.store.StoreError` if ``out_dir`` is a non-empty
    directory without results, :class:`~spikefleet.experiments.store.LockError` if another live run uses
    ``out_dir``, :class:`~spikefleet.experiments.store.ExperimentMismatchError` if it holds a
    different experiment, :class:`UnitFailed` if a unit fails (the units that finished are kept).
    """
    start = time.perf_counter()
    spec = _resolve_spec(spec)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(spec)
    check_backend_args(backend, workers, address)
    if out_dir.is_dir() and not (out_dir / DB_NAME).exists() and any(p.name != LOCK_NAME for p in out_dir.iterdir()):
        raise StoreError(f"output directory {out_dir} is not empty and holds no experiment results "
                         f"({DB_NAME}); choose another --out (an empty or new directory, or one of an earlier run "
                         "of this experiment to resume it)")
    lock = RunLock(out_dir).acquire()
    store = None
    try:
        if lock.taken_over is not None:
            _say(f"{out_dir}: taking over the stale lock of PID {lock.taken_over} (no longer running)", progress)
        store = ResultStore(out_dir, spec)
        units = build_units(spec)
        done = store.done_ids()
        pending = [u for u in units if u.unit_id not in done]
        skipped = len(units) - len(pending)
        if skipped:
            _say(f"{out_dir}: resuming, {skipped} of {len(units)} units already recorded", progress)
        ran = _run_units(spec, store, pending, done, units_total=len(units), backend=backend, workers=workers,
                         address=address, progress=progress) if pending else 0
        rows = summarize_store(store, spec)
        table = summary_table(rows, spec)
        write_summary(out_dir, spec, rows, table)
        store.close()
        store = None
        if report:
            _say(f"writing {out_dir / 'report.html'}", progress)
            report_dir(out_dir)
    finally:
        if store is not None:
            store.close()
        lock.release()
    if progress:
        print(table)
        shown = "results.sqlite, checkpoints/, summary.txt, summary.json" + (", report.html" if report else "")
        print(f"results in {out_dir} ({shown})", flush=True)
    return ExperimentResults(spec=spec, out_dir=out_dir, rows=tuple(rows), table=table, units_total=len(units),
                             units_run=ran, units_skipped=skipped, seconds=time.perf_counter() - start)


def schedule(spec, units) -> list:
    """``units`` in submission order: the longest chain of work first, across seeds (critical
    path first: a long training unit of a later seed does not wait behind the evaluations of an
    earlier one); ties in the paper's seed order. A unit is submitted once its dependencies are
    recorded, so this is a priority order, not a guarantee."""
    rank = priorities(spec, build_units(spec))
    seed_order = {seed: i for i, seed in enumerate(spec.seeds)}
    return sorted(units, key=lambda u: (-rank[u.unit_id], seed_order[u.seed]))


def _run_units(spec, store, pending, done, *, units_total, backend, workers, address, progress) -> int:
    spec_dict = spec.to_dict()
    pending = schedule(spec, pending)
    runner = make_backend(backend, workers, address)
    store.begin_run(runner.name, workers)
    bar = tqdm(total=units_total, initial=units_total - len(pending), unit="unit", desc=spec.name,
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    remaining, inflight, failures, ran = list(pending), {}, [], 0
    try:
        while remaining or inflight:
            if not failures:
                for unit in list(remaining):
                    if len(inflight) >= workers:
                        break
                    if all(d in done for d in unit.deps):
                        inflight[runner.submit(_payload(spec, store, unit, spec_dict))] = unit
                        remaining.remove(unit)
            if not inflight:
                break  # failures stopped submission, or (impossible by construction) unmet dependencies
            for handle, result in runner.wait(inflight):
                unit = inflight.pop(handle)
                if isinstance(result, BaseException):
                    failures.append((unit, result))
                    _say(f"unit {unit.unit_id} FAILED: {type(result).__name__}: {result}"
                         + (f"; finishing the {len(inflight)} unit(s) in progress" if inflight else ""), progress)
                    continue
                message = _record(store, unit, result)
                done.add(unit.unit_id)
                ran += 1
                bar.set_postfix_str(unit.unit_id, refresh=False)
                bar.update(1)
                if progress:
                    bar.write(message, file=sys.stderr)
    except BaseException:  # Ctrl-C (KeyboardInterrupt) or an error in the driver: stop the workers
        bar.close()
        runner.close(cancel=True)
        _say(f"interrupted: {len(done)} of {units_total} units recorded in {store.dir}; run the same command "
             "again to resume", True)
        raise
    bar.close()
    runner.close(cancel=bool(failures))
    if failures:
        unit, exc = failures[0]
        raise UnitFailed(f"unit {unit.unit_id} failed ({type(exc).__name__}: {exc}); {len(done)} of {units_total} "
                         f"units are recorded in {store.dir}; fix the cause and run the same command again to "
                         "resume") from exc
    if remaining:
        raise UnitFailed(f"units {[u.unit_id for u in remaining]} could not be scheduled (unmet dependencies)")
    return ran
