"""Find out whether a *real* samna is installed, without importing it.

samna's package on the public registry is a small pure-Python placeholder that, when imported,
tries for about a minute to download the real binary from the vendor's index (unreachable
offline) and then fails. So spikefleet never imports samna by default, and before importing it
on request it inspects the installed files: the real package ships a compiled extension of
several MB (and exposes ``samna.dynapse2`` from it); the placeholder has only small ``.py`` files.

:func:`samna_status` returns ``"missing"``, ``"placeholder"`` or ``"real"``; :func:`import_samna`
imports it only when ``"real"`` and otherwise raises :class:`SamnaUnavailableError` with the fix.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["samna_status", "import_samna", "SamnaUnavailableError", "MIN_EXTENSION_BYTES"]

#: a compiled extension at least this large marks the real package (the placeholder has none)
MIN_EXTENSION_BYTES = 1_000_000
_EXTENSIONS = (".so", ".pyd", ".dylib")


class SamnaUnavailableError(ImportError):
    """samna (SynSense's device interface) is needed for real hardware objects but is not usable."""


def _locations(spec) -> list[Path]:
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin).parent] if spec.origin else []


def samna_status() -> str:
    """``"missing"`` (not installed), ``"placeholder"`` (the downloader stub) or ``"real"`` (has a binary)."""
    try:
        spec = importlib.util.find_spec("samna")  # locates only: does not execute the package
    except (ImportError, ValueError):
        return "missing"
    if spec is None:
        return "missing"
    if spec.origin and spec.origin.endswith(_EXTENSIONS):
        return "real"
    for root in _locations(spec):
        if (root / "dynapse2").is_dir():
            return "real"
        for path in root.rglob("*"):
            if path.suffix in _EXTENSIONS and path.is_file() and path.stat().st_size >= MIN_EXTENSION_BYTES:
                return "real"
    return "placeholder"


def import_samna(purpose: str):
    """The real samna module for ``purpose``; :class:`SamnaUnavailableError` (with the fix) otherwise."""
    status = samna_status()
    if status == "missing":
        raise SamnaUnavailableError(
            f"{purpose}: expected the 'samna' package (SynSense device interface, needed only for real DYNAP-SE2 "
            "hardware), but it is not installed. Fix: install SynSense's samna from its vendor index (the "
            "public registry's 'samna' is a placeholder) — or keep using the samna-free configuration JSON")
    if status == "placeholder":
        raise SamnaUnavailableError(
            f"{purpose}: the installed 'samna' is the public registry's placeholder (no compiled extension; "
            "importing it would try to download the real binary). Fix: install the real samna from SynSense's "
            "index, or uninstall the placeholder and use the samna-free configuration JSON")
    import samna  # noqa: PLC0415

    return samna
