"""Shared pieces of the benchmark suite: timing, the machine/version header and the atomic write."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spikefleet._version import __version__  # noqa: E402
from spikefleet.io import atomic_write_bytes  # noqa: E402


def best_time(fn, *args, repeats=5):
    """Best wall time of ``fn(*args)`` over ``repeats`` runs after one compile/warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def timed_once(fn, *args):
    """Wall time of one call, waiting for the result (``block_until_ready``)."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def load() -> float:
    """1-minute load average (the machine is shared: timings are only comparable as same-run ratios)."""
    return os.getloadavg()[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict:
    import equinox
    import jaxlib
    import numpy
    import optax

    return {"spikefleet": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "equinox": equinox.__version__, "optax": optax.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def header(title: str, work: str) -> list[str]:
    v = ", ".join(f"{k} {x}" for k, x in versions().items())
    return [
        f"# spikefleet benchmark: {title}",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"- machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"{jax.device_count()} {jax.default_backend()} device(s)",
        f"- versions: {v}",
        f"- work: {work}",
        f"- load average at start: {load():.2f}",
        "",
    ]


def publish(lines: list[str], path: Path) -> int:
    """Print the report and write it atomically to ``path``."""
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_bytes(path, text.encode())
    return 0
