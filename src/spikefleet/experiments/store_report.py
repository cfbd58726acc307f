"""The HTML report of an experiment's output directory (``spikefleet report DIR``).

:func:`report_dir` reads the result store of a (finished or partial) run, pools the recorded
fleet evaluations of every design over its seeds, loads the checkpoints of the first seed for the
rasters, traces and weight histograms, and writes ``DIR/report.html`` with
:func:`~spikefleet.experiments.report.render_report`. The run's summary table and the cost of
every unit (wall and CPU seconds) are appended as tables. Units still missing are named in
a note on the page, so a report of an interrupted run says what it lacks.

Studies add their own tables with :func:`register_tables`: a function ``(spec, records) -> [(title,
table), ...]`` (``records``: every recorded unit) called for every report, returning an empty list
when the experiment is not theirs. The Network ADS claims of :mod:`spikefleet.studies.claims` are
one such table (registered when :mod:`spikefleet.studies` is imported, as the command line does).
"""

from __future__ import annotations

from pathlib import Path

from spikefleet.errors import ConfigError
from spikefleet.experiments.report import render_report
from spikefleet.experiments.store import ResultStore, read_stored_spec
from spikefleet.experiments.summary import eval_rows, summarize_store, summary_table
from spikefleet.experiments.units import _from_bytes, build_units

__all__ = ["report_dir", "register_tables", "REPORT_NAME"]

#: file name of the report inside the output directory
REPORT_NAME = "report.html"

#: table providers of studies, in registration order (:func:`register_tables`)
_TABLE_PROVIDERS: list = []


def register_tables(provider):
    """Add ``provider(spec, records) -> [(title, table), ...]`` to every report (module docstring); its
    tables come first, in registration order. Registering the same function twice adds it once.
    Returns ``provider`` (usable as a decorator)."""
    if provider not in _TABLE_PROVIDERS:
        _TABLE_PROVIDERS.append(provider)
    return provider


def _designs(store: ResultStore, spec, seed: int, done: set) -> tuple[dict, list]:
    designs, problems = {}, []
    for design in spec.designs():
        if not design.evaluate:
            continue
        own = spec.train_seed(design.name, seed)
        if f"train/{design.name}/seed{own}" not in done:
            continue  # not trained yet (partial run): listed among the missing units
        try:
            designs[design.name] = _from_bytes(store.checkpoint_path(design.name, own).read_bytes())
        except Exception as exc:  # a broken checkpoint must not lose the rest of the report
            problems.append([design.name, f"{type(exc).__name__}: {exc}"])
    return designs, problems


def report_dir(out_dir, out_path=None, *, overwrite: bool = True) -> Path:
    """Write the report of the experiment in ``out_dir``; returns its path.

    ``out_path`` defaults to ``out_dir/report.html``; an existing file elsewhere is only replaced
    with ``overwrite=True`` (the default report inside the directory is always refreshed).
    """
    out_dir = Path(out_dir)
    spec = read_stored_spec(out_dir)
    target = Path(out_path) if out_path is not None else out_dir / REPORT_NAME
    if out_path is not None and target.exists() and not overwrite:
        raise ConfigError(f"report: {target} already exists; pass overwrite=True (--overwrite) to replace it")
    store = ResultStore(out_dir, spec)
    try:
        records = store.units()
        rows = eval_rows(records)
        seed = spec.seeds[0]
        done = {r["unit_id"] for r in records}
        designs, problems = _designs(store, spec, seed, done)
        summary = summarize_store(store, spec)
    finally:
        store.close()
    missing = [u.unit_id for u in build_units(spec) if u.unit_id not in done]
    cost = [["unit", "wall s", "CPU s"]] + [[r["unit_id"], f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.1f}"]
                                             for r in records]
    summary_rows = [{k: ("—" if v is None else v) for k, v in r.items() if k not in ("sweep", "level")}
                    for r in summary]
    tables = [("Run summary: " + summary_table(summary, spec).splitlines()[0], summary_rows or "(no evaluated units)"),
              ("Cost of every unit", cost)]
    tables[:0] = [table for provider in _TABLE_PROVIDERS for table in provider(spec, records)]
    if problems:
        tables.insert(0, ("Checkpoints that could not be loaded", [["design", "error"]] + problems))
    if missing:
        tables.insert(0, (f"Missing units ({len(missing)} of {len(missing) + len(done)})",
                          [["unit"]] + [[m] for m in missing]))
    title = f"{spec.name}: {spec.task}, seeds {list(spec.seeds)}"
    return render_report(rows, target, designs=designs, task=spec.make_task(), title=title, tables=tables,
                         seed=seed)

