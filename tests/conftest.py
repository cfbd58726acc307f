"""Test-wide settings and shared fixtures.

The tests compare JAX results with float64 NumPy transcriptions at relative tolerances down to
1e-5. On GPUs JAX's default float32 matrix product rounds through TF32 (about 1e-3 relative), which
fails those comparisons (seen on an H100: 7 of the Network ADS learning-rule tests) while the
code is correct; the tests therefore ask for full float32 products everywhere. On CPUs this
changes nothing.

Skip policy (issue 24: CI guards what it claims). When the environment variable ``CI`` is set to
anything but ``""``, ``0``, ``false`` or ``no`` (``.ci/run`` exports ``CI=true``), a skipped test
**fails** the run, unless it carries ``@pytest.mark.allow_skip_in_ci("why it may skip in CI")``,
e.g. a test that needs a real DYNAP-SE2 board. The allowed skips are listed at the end of the run.
Outside CI a skip stays a skip, and ``-ra`` prints its reason.
"""

import json
import os

import jax
import numpy as np
import pytest

jax.config.update("jax_default_matmul_precision", "highest")

#: the user property that marks an allowed skip in a report (it travels from xdist workers)
ALLOWED_SKIP = "allowed_skip_in_ci"


def in_ci() -> bool:
    """Whether this run is a CI run (``CI`` set to a true value), where skips fail unless allowed."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _refuse_skip(report, where: str) -> None:
    reason = _skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (f"{where} skipped in CI (CI={os.environ.get('CI')!r}): {reason}\n"
                       "A skip in CI is a failure: make the test run here (install what it needs in .ci/run or "
                       "dev.py), or mark it @pytest.mark.allow_skip_in_ci(\"why\") if it cannot run in CI.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    marker = item.get_closest_marker("allow_skip_in_ci")
    if marker is None:
        _refuse_skip(report, item.nodeid)
        return
    why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
    report.user_properties.append((ALLOWED_SKIP, f"{why} (skipped: {_skip_reason(report)})"))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci():  # a whole module skipped (e.g. a module-level importorskip)
        _refuse_skip(report, collector.nodeid)


#: "node id: reason" of every allowed skip of this run (filled on the controller, also under xdist)
_ALLOWED_SKIPS: list[str] = []


def pytest_runtest_logreport(report):
    allowed = dict(report.user_properties).get(ALLOWED_SKIP) if report.skipped else None
    if allowed is not None:
        _ALLOWED_SKIPS.append(f"{report.nodeid}: {allowed}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not in_ci():
        return
    allowed = _ALLOWED_SKIPS
    terminalreporter.section(f"skips allowed in CI: {len(allowed)}")
    for line in allowed:
        terminalreporter.write_line(line)
    if not allowed:
        terminalreporter.write_line("none")


@pytest.fixture
def rewrite_checkpoint():
    """``rewrite(path, mutate) -> path``: rewrite a saved checkpoint in place after
    ``mutate(meta, arrays)`` changed its metadata dict and/or its arrays (corruption tests)."""

    def rewrite(path, mutate):
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays["__meta__"].tobytes())
        mutate(meta, arrays)
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    return rewrite


# ------------------------------------------------------ the runner's failure-path tests (tests/unit_hooks.py)
@pytest.fixture(scope="module")
def tiny_run_file(tmp_path_factory):
    """The experiment file of :data:`unit_hooks.TINY` (4 units of a few seconds)."""
    from unit_hooks import TINY

    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def tiny_run_reference(tmp_path_factory, tiny_run_file):
    """An undisturbed local run of ``tiny_run_file``: ``(snapshot, summary rows)``. Every worker of
    every run of the module that asks for it shares one persistent XLA compilation cache."""
    from spikefleet.experiments.runner import run_experiment
    from unit_hooks import TINY_UNITS, snapshot

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax-cache")))
        mp.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        out = tmp_path_factory.mktemp("reference") / "out"
        result = run_experiment(tiny_run_file, out, workers=2, progress=False)
        assert (result.units_run, result.units_skipped) == (len(TINY_UNITS), 0)
        snap = snapshot(out)
        assert sorted(snap) == sorted(TINY_UNITS)
        yield snap, result.rows
