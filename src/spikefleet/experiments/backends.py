"""Where experiment units run: a local process pool or a Ray cluster.

Both backends run a worker function (by default :func:`spikefleet.experiments.units.execute`) on a
picklable payload and hand its result (a plain dict with bytes and lists) back to the driver, which
alone writes to the result store. A backend has ``submit(payload) -> handle``, ``wait(handles) ->
[(handle, result_or_exception)]`` (at least one finished) and ``close(cancel)``. :func:`run_all` runs
a list of independent payloads through a backend (the studies' runs use it); the experiment runner
submits units as their dependencies finish.

Threads: every worker runs XLA single-threaded (:data:`WORKER_ENV`), whatever the number of
workers, so that a unit computes bit-identical numbers on every backend and worker count;
parallelism comes from running ``workers`` units at once (the networks are small, so one core
per unit is also the efficient choice). Set ``JAX_COMPILATION_CACHE_DIR`` (and
``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0``) in the driver's environment to let workers share
a persistent compilation cache (:data:`PASS_ENV` is passed on): re-spawned workers, e.g. after a
resume, then skip recompiling.

* ``local`` — :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` context.
  Workers ignore SIGINT (the driver handles Ctrl-C and stops them) and exit by themselves if
  the driver dies (``kill -9``), checked once a second.
* ``ray`` — ``ray`` is imported only here, only when selected (``pip install
  'spikefleet[ray]'``). With ``address`` the driver joins that cluster (``ray.init(address=...)``;
  every node needs spikefleet installed); otherwise a local Ray instance with ``num_cpus=workers``
  is started and shut down at the end. Each unit is a task with ``num_cpus=1``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent import futures

from spikefleet.errors import ConfigError, SpikefleetError
from spikefleet.experiments.units import execute

__all__ = ["LocalBackend", "RayBackend", "make_backend", "check_backend_args", "run_all", "WORKER_ENV", "PASS_ENV",
           "BACKENDS"]

#: where units can run (``--backend``)
BACKENDS = ("local", "ray")

#: environment of every worker: one XLA/BLAS thread, quiet logs
WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


#: passed on to workers when set in the driver's environment (a persistent XLA compilation cache
#: makes re-spawned workers, e.g. after a resume, skip recompiling)
PASS_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "JAX_PLATFORMS", "JAX_ENABLE_X64")


def _worker_env() -> dict:
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    env.update(WORKER_ENV)
    extra = os.environ.get("XLA_FLAGS", "")
    if extra and WORKER_ENV["XLA_FLAGS"] not in extra:
        env["XLA_FLAGS"] = f"{extra} {WORKER_ENV['XLA_FLAGS']}"
    return env


def _init_local_worker(env: dict, parent: int) -> None:
    """Runs first in every local worker process (before any JAX computation)."""
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch():  # the driver was killed: stop working for nobody
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="spikefleet-parent-watch").start()


class LocalBackend:
    """A pool of ``workers`` spawned processes running ``fn`` (a module-level function: it is pickled by name)."""

    name = "local"

    def __init__(self, workers: int = 2, fn=execute):
        self.workers = workers
        self.fn = fn
        self.pool = futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_local_worker,
                                                initargs=(_worker_env(), os.getpid()))

    def submit(self, payload):
        try:
            return self.pool.submit(self.fn, payload)
        except futures.BrokenExecutor as exc:  # BrokenProcessPool
            # A worker died (e.g. killed) after the last wait returned: the pool refuses new work. Hand back a
            # finished handle carrying the error, so the runner reports it like the failure of a running unit
            # (stops submitting, finishes what is in flight, raises UnitFailed) instead of crashing.
            failed = futures.Future()
            failed.set_exception(exc)
            return failed

    def wait(self, handles, timeout: float | None = None):
        done, _ = futures.wait(list(handles), timeout=timeout, return_when=futures.FIRST_COMPLETED)
        out = []
        for f in done:
            exc = f.exception()
            out.append((f, exc if exc is not None else f.result()))
        return out

    def close(self, cancel: bool = False) -> None:
        if cancel:
            processes = list(getattr(self.pool, "_processes", {}).values())  # the workers this pool started
            self.pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                if p.is_alive():
                    p.terminate()
            for p in processes:
                p.join(timeout=5)
        else:
            self.pool.shutdown(wait=True)


class RayBackend:
    """Ray tasks (``num_cpus=1`` each) running ``fn`` on a local instance or the cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int = 2, address: str | None = None, fn=execute):
        try:
            import ray
        except ImportError:
            raise SpikefleetError("backend 'ray': the ray package is not installed; install it with "
                                  "pip install 'spikefleet[ray]' (or use --backend local)") from None
        self.ray = ray
        self.workers = workers
        runtime_env = {"env_vars": _worker_env()}
        self.started = not ray.is_initialized()
        if self.started:
            kwargs = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
            try:
                ray.init(runtime_env=runtime_env, log_to_driver=True, configure_logging=False, **kwargs)
            except ConnectionError as exc:
                raise SpikefleetError(f"backend 'ray': cannot join the cluster at {address!r} ({exc}); check "
                                      "--address (e.g. ray://HOST:10001 or HOST:6379) and that the cluster "
                                      "is running") from None
        self.remote = ray.remote(num_cpus=1, max_retries=0, runtime_env=runtime_env)(fn)

    def submit(self, payload):
        return self.remote.remote(payload)

    def wait(self, handles, timeout: float | None = None):
        ready, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, self.ray.get(ref)))
            except self.ray.exceptions.RayTaskError as exc:
                out.append((ref, exc.as_instanceof_cause() if hasattr(exc, "as_instanceof_cause") else exc))
            except Exception as exc:  # worker died, cancelled, ...
                out.append((ref, exc))
        return out

    def close(self, cancel: bool = False) -> None:
        if self.started:
            self.ray.shutdown()


def check_backend_args(backend: str, workers: int, address: str | None = None) -> None:
    """Raise :class:`~spikefleet.errors.ConfigError` unless the arguments make a valid backend."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers: expected a positive integer, got {workers!r}")
    if address is not None and backend != "ray":
        raise ConfigError(f"address: applies to --backend ray only, got backend {backend!r} with address {address!r}")


def make_backend(backend: str, workers: int, address: str | None = None, fn=execute):
    """The backend called ``backend`` with ``workers`` parallel units, each ``fn(payload)``."""
    check_backend_args(backend, workers, address)
    if backend == "local":
        return LocalBackend(workers, fn)
    return RayBackend(workers, address, fn)


def run_all(fn, payloads, *, backend: str = "local", workers: int = 2, address: str | None = None) -> list:
    """``[fn(p) for p in payloads]``, at most ``workers`` at a time on ``backend``; results in payload order.

    The first failure stops the work (the runs in progress are cancelled) and is raised."""
    payloads = list(payloads)
    runner = make_backend(backend, workers, address, fn)
    results, handles, failed = [None] * len(payloads), {}, None
    try:
        for i, payload in enumerate(payloads):
            handles[runner.submit(payload)] = i
        while handles and failed is None:
            for handle, result in runner.wait(handles):
                i = handles.pop(handle)
                if isinstance(result, BaseException):
                    failed = failed or result
                else:
                    results[i] = result
    except BaseException:
        runner.close(cancel=True)
        raise
    runner.close(cancel=failed is not None)
    if failed is not None:
        raise failed
    return results
