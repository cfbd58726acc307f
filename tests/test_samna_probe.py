"""samna detection without import: missing, the public placeholder, and a real (binary) package."""

from __future__ import annotations

import importlib
import sys

import pytest

from spikefleet.hardware.dynapse2 import samna_probe
from spikefleet.hardware.dynapse2.config import to_samna
from spikefleet.hardware.dynapse2.samna_probe import SamnaUnavailableError, import_samna, samna_status


def _install(tmp_path, monkeypatch, files: dict):
    pkg = tmp_path / "samna"
    pkg.mkdir()
    for name, content in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "samna", raising=False)
    importlib.invalidate_caches()


def test_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "samna", None)
    assert samna_status() == "missing"
    with pytest.raises(SamnaUnavailableError, match="not installed"):
        import_samna("test")


def test_placeholder_is_detected_without_executing_it(tmp_path, monkeypatch):
    # a package whose import would fail loudly: detection must not run it
    _install(tmp_path, monkeypatch, {"__init__.py": b"raise RuntimeError('placeholder executed')\n",
                                     "downloader.py": b"x = 1\n"})
    assert samna_status() == "placeholder"
    with pytest.raises(SamnaUnavailableError, match="placeholder"):
        import_samna("to_samna")
    with pytest.raises(SamnaUnavailableError, match="placeholder"):
        to_samna(None)
    assert "samna" not in sys.modules


def test_real_package_by_binary_or_dynapse2_module(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, {"__init__.py": b"MARK = 'real'\n",
                                     "samna.cpython-311-x86_64-linux-gnu.so": b"\0" * samna_probe.MIN_EXTENSION_BYTES})
    assert samna_status() == "real"
    assert import_samna("test").MARK == "real"


def test_small_binary_alone_is_not_enough(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, {"__init__.py": b"", "tiny.so": b"\0" * 100})
    assert samna_status() == "placeholder"
