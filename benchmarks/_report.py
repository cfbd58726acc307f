"""Shared pieces of the benchmark scripts: the machine/version header and the atomic write."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spikefleet._version import __version__  # noqa: E402
from spikefleet.checkpoint import atomic_write_bytes  # noqa: E402


def best_time(fn, *args, repeats=5):
    """Best wall time of ``fn(*args)`` over ``repeats`` runs after one compile/warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def header(title: str, work: str) -> list[str]:
    return [
        f"# spikefleet benchmark: {title}",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"- machine: {platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s) "
        f"({jax.devices()[0].device_kind})",
        f"- versions: spikefleet {__version__}, jax {jax.__version__}, python {platform.python_version()}",
        f"- work: {work}",
        "",
    ]


def publish(lines: list[str], path: Path) -> int:
    """Print the report and write it atomically to ``path``."""
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_bytes(path, text.encode())
    return 0
