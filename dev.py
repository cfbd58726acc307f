#!/usr/bin/env python3
"""Developer entry point: needs only Python >= 3.11.

    python3 dev.py run         # the main job on its built-in default
    python3 dev.py test        # the default test suite (neither slow nor acceptance)
    python3 dev.py test-acceptance  # the CI acceptance lane (with the ray extra): bars, main job, CLI, Ray
    python3 dev.py test-slow   # the full slow suite (training to the full acceptance protocols)
    python3 dev.py bench       # benchmark suite vs peers -> benchmarks/RESULTS.md (--quick: smoke run)
    python3 dev.py bench-env   # (re)create the separate peer environment .bench-venv (Rockpool, snnTorch)
    python3 dev.py docs        # build the documentation site into site/ (mkdocs build --strict)
    python3 dev.py shell ARGS  # run `spikefleet ARGS` inside the environment

Each command creates (once) a virtual environment in ``.venv`` and installs the
package with the exact versions in ``constraints.txt`` and the extras it needs
(test; test,ray for test-acceptance and test-slow; test,docs for docs); an install
is redone only when ``pyproject.toml`` or ``constraints.txt`` change. README.md
("Tests") says what each test command covers and how long it takes; ``.ci/run``
is what CI runs.
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


def _stamp(extras: str) -> Path:
    """The stamp of an install of ``extras`` (one per set of extras: installing ``test,ray`` does not
    make ``test,docs`` current, and each is redone when the fingerprint changes)."""
    names = sorted(e.strip() for e in extras.split(",") if e.strip())
    return STAMP if names == ["test"] else VENV / f".dev-stamp-{'-'.join(names)}"


def ensure_env(extras: str = "test") -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"dev.py: Python >= 3.11 is required, this is {sys.version.split()[0]}")
    if not PY.exists():
        print("dev.py: creating virtual environment in .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = _stamp(extras)
    fingerprint = _fingerprint()
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    print(f"dev.py: installing spikefleet[{extras}] and its pinned dependencies", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-c", "constraints.txt", "-e", f".[{extras}]"], check=True, cwd=ROOT)
    stamp.write_text(fingerprint)


BENCH_VENV = ROOT / ".bench-venv"
BENCH_PY = BENCH_VENV / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")
#: The peers of the benchmark suite, pinned; never dependencies of spikefleet. Rockpool 3.1.0 runs on
#: the same jax as spikefleet (checked by the suite's peer worker at start).
BENCH_PEERS = ["rockpool==3.1.0", "jax==0.10.2", "jaxlib==0.10.2", "numpy==2.4.6", "scipy==1.17.1"]
BENCH_TORCH = "2.13.0"  # CPU build only; snnTorch is installed without dependencies so torch is never unpinned
BENCH_SNNTORCH = "snntorch==1.0.0"


def ensure_bench_env(force: bool = False) -> bool:
    """Create ``.bench-venv`` with the pinned peers; returns False (and says why) if it cannot."""
    stamp = BENCH_VENV / ".bench-stamp"
    want = "\n".join(BENCH_PEERS + [f"torch=={BENCH_TORCH}+cpu", BENCH_SNNTORCH, sys.version])
    if not force and stamp.exists() and stamp.read_text() == want:
        return True
    print("dev.py: creating the benchmark peer environment in .bench-venv", flush=True)
    if not BENCH_PY.exists():
        venv.EnvBuilder(with_pip=True).create(BENCH_VENV)
    pip = [str(BENCH_PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run(pip + BENCH_PEERS).returncode != 0:
        print("dev.py: could not install Rockpool into .bench-venv; the suite runs without peers")
        return False
    torch_ok = False
    attempts = [  # the PyTorch CPU wheel index, then the CPU build's local version from the configured indexes
        ["--retries", "1", "--timeout", "20", "--index-url", "https://download.pytorch.org/whl/cpu", f"torch=={BENCH_TORCH}"],
        [f"torch=={BENCH_TORCH}+cpu"],
    ]
    for extra in attempts:
        if subprocess.run(pip + ["--no-deps"] + extra, stderr=subprocess.DEVNULL).returncode == 0:
            torch_ok = True
            break
    if torch_ok:  # torch's own dependencies (torch itself stays the pinned build), then CPU builds only
        subprocess.run(pip + ["filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec"])
        probe = subprocess.run([str(BENCH_PY), "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                               capture_output=True, text=True)
        words = probe.stdout.split()
        torch_ok = probe.returncode == 0 and len(words) == 2 and words[0].startswith(BENCH_TORCH) and words[1] == "None"
    if not torch_ok:
        print(f"dev.py: no CPU build of torch {BENCH_TORCH} could be installed (the PyPI Linux wheel is a CUDA "
              "build and is not used); the suite runs without snnTorch")
    elif subprocess.run(pip + ["--no-deps", BENCH_SNNTORCH]).returncode != 0:
        print("dev.py: could not install snnTorch; the suite runs without it")
    stamp.write_text(want)
    return True


#: the extras each command installs (default: test)
EXTRAS = {"docs": "test,docs", "test-acceptance": "test,ray", "test-slow": "test,ray"}


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
        # whole files per worker: the lane's files share expensive module fixtures (an undisturbed run)
        "test-acceptance": [str(PY), "-m", "pytest", "-m", "acceptance", "-n", "2", "--dist", "loadfile", "-q",
                            "--durations=20", *rest],
        "test-slow": [str(PY), "-m", "pytest", "-m", "slow", "-q", *rest],
        "bench": [str(PY), "benchmarks/suite.py", *rest],
        "shell": [str(BIN / "spikefleet"), *rest],
        "docs": [str(PY), "-m", "mkdocs", "build", "--strict", "-d", "site", *rest],
    }
    if command == "bench-env":
        return 0 if ensure_bench_env(force=True) else 1
    if command not in commands:
        print(f"dev.py: unknown command {command!r}; expected one of {', '.join([*commands, 'bench-env'])}")
        return 2
    if command == "docs":
        os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # the theme's end-of-life banner is not a build problem
    ensure_env(EXTRAS.get(command, "test"))
    if command == "bench" and "--no-peers" not in rest:
        ensure_bench_env()
    return _run(commands[command])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
