#!/usr/bin/env python3
"""Developer entry point: needs only Python >= 3.11.

    python3 dev.py run         # the main job on its built-in default
    python3 dev.py test        # the default test suite (fast tests)
    python3 dev.py test-slow   # slow tests (training to acceptance accuracy)
    python3 dev.py bench       # benchmarks
    python3 dev.py shell ARGS  # run `spikefleet ARGS` inside the environment

Each command creates (once) a virtual environment in ``.venv`` and installs the
package with the exact versions in ``constraints.txt``; the install is redone
only when ``pyproject.toml`` or ``constraints.txt`` change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".dev-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"dev.py: Python >= 3.11 is required, this is {sys.version.split()[0]}")
    if not PY.exists():
        print("dev.py: creating virtual environment in .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    print("dev.py: installing spikefleet and its pinned dependencies", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-c", "constraints.txt", "-e", ".[test]"], check=True, cwd=ROOT)
    STAMP.write_text(fingerprint)


def _run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    commands = {
        "run": [str(BIN / "spikefleet"), "run", *rest],
        "test": [str(PY), "-m", "pytest", "-n", "2", "-q", *rest],
        "test-slow": [str(PY), "-m", "pytest", "-m", "slow", "-q", *rest],
        "bench": [str(PY), "benchmarks/bench_simulate.py", *rest],
        "shell": [str(BIN / "spikefleet"), *rest],
    }
    if command not in commands:
        print(f"dev.py: unknown command {command!r}; expected one of {', '.join(commands)}")
        return 2
    ensure_env()
    return _run(commands[command])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
