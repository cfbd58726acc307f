r"""User-supplied DYNAP-SE2 bias-generator calibration tables (Çakal et al. 2024: data the project may not copy) and their precedence.

A table gives the raw generator current G_type(coarse, fine) in Amperes (scale 1) of a real chip; when
active it replaces the parametric model of :mod:`.biases` for every conversion.

**Format, version 1** (currents in Amperes):

- CSV: optional leading ``# key: value`` metadata lines, then the header ``type,coarse,fine,current_A``
  (columns in any order) and one row per code, e.g. ``N,0,0,4.9e-13``;
- JSON: ``{"format": "spikefleet-dynapse2-bias-table", "version": 1, "units": "A",
  "entries": [{"type": "N", "coarse": 0, "fine": 0, "current": 4.9e-13}, ...]}``.

Optional metadata (both formats): ``board``, ``chip``, ``core`` (integer identifiers: the scope of the
table), ``date``, ``temperature``, ``supply``, ``method`` (free text), ``partial`` (true: missing codes
fall back to the P3 model and are counted in the provenance). In CSV, ``format``/``version``/``units``
are optional but must match when given; in JSON they are required (``format`` optional).

**Validation** (errors name the file, the row — CSV line or JSON ``entries[i]`` — what was expected and
what was got): type N or P; integer coarse 0..5 and fine 0..255; each code at most once; currents finite
and > 0; the complete 2 × 6 × 256 grid unless ``partial``; within each (type, coarse)
G(c, f) ≥ (1 − tol)·max_{f' < f} G(c, f') with tol = ``monotone_tolerance`` (default 0.10 — measured
chips step *down* by up to ≈ 6 % at f = 128 and 5 % at f = 64, Çakal et al. 2024: bias generator: (coarse, fine) → current); values more than 3× off the
P3 model only warn (``UserWarning``). Duplicate currents are legal (e.g. equal f = 0 floors): the code
round trip code → current → code is then the identity on codes with distinct currents and maps a
shared current to its lexicographically smallest code (the tie rule of :mod:`.biases`).

**Precedence** (:func:`select_generator`): per-core table, per-chip table, global table, P3 model. The
generator's ``provenance`` (source, file, SHA-256, scope, identifiers, measurement metadata, number of
fallback codes) is copied into every :class:`~.biases.BiasTranslation`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import warnings
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from spikefleet.errors import ConfigError, expect, is_finite_number
from spikefleet.io import atomic_write_text, parse_json
from spikefleet.hardware.dynapse2.biases import N_COARSE, N_FINE, TYPES, BiasGenerator, parametric_generator

__all__ = [
    "TABLE_FORMAT", "TABLE_VERSION", "calibration_from_records", "load_calibration_table",
    "save_calibration_table", "select_generator",
]

#: format name and version of calibration tables (module docstring)
TABLE_FORMAT, TABLE_VERSION = "spikefleet-dynapse2-bias-table", 1
_META_KEYS = ("board", "chip", "core", "date", "temperature", "supply", "method", "partial")


def _int_field(where: str, name: str, value, hi: int) -> int:
    try:
        ok = not isinstance(value, (bool, float)) and str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        ok = False
    expect(ok and 0 <= int(value) <= hi, f"{where}: {name}", f"an integer in 0..{hi}", value)
    return int(value)


def _float_field(where: str, value) -> float:
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond the float range
        x = math.nan
    expect(math.isfinite(x) and x > 0, f"{where}: current", "a finite current > 0 (Amperes)", value)
    return x


def _check_meta(source: str, meta: Mapping) -> dict:
    out = {}
    for k, v in meta.items():
        expect(k in _META_KEYS, f"{source}: metadata key", f"one of {_META_KEYS}", k)
        if k in ("board", "chip", "core") and v is not None:
            v = _int_field(source, k, v, 10**9)
        if k == "partial":
            s = str(v).strip().lower()
            expect(s in ("true", "false", "1", "0"), f"{source}: partial", "true or false", v)
            v = s in ("true", "1")
        out[k] = v
    return out


def calibration_from_records(records, *, metadata: Optional[Mapping] = None, source: str = "<records>",
                             monotone_tolerance: float = 0.10, extra_provenance: Optional[Mapping] = None
                             ) -> BiasGenerator:
    """Build and validate a calibration :class:`BiasGenerator` from rows ``(row, type, coarse, fine, current)``.

    ``row`` labels the row in error messages. Checks (module docstring): types, code ranges, currents
    finite and > 0, no duplicates, completeness (unless ``metadata["partial"]``: missing codes take the
    P3 value), monotonicity G(c,f) ≥ (1 − tol)·max_{f'<f} G(c,f'), and warns when > 3× off P3.
    """
    meta = _check_meta(source, metadata or {})
    grid = np.full((2, N_COARSE, N_FINE), np.nan)
    rows = np.empty((2, N_COARSE, N_FINE), object)
    for row, t, c, f, i in records:
        where = f"{source}, {row}"
        t = t.strip().upper() if isinstance(t, str) else t
        expect(t in TYPES, f"{where}: type", "'N' or 'P'", t)
        k, c, f = TYPES.index(t), _int_field(where, "coarse", c, N_COARSE - 1), _int_field(where, "fine", f, N_FINE - 1)
        expect(rows[k, c, f] is None, f"{where}: code ({t}, {c}, {f})", "each code once",
               f"a duplicate of {rows[k, c, f]}")
        grid[k, c, f], rows[k, c, f] = _float_field(where, i), row
    present = ~np.isnan(grid)
    missing = int((~present).sum())
    model = parametric_generator("P3").grid
    if missing and not meta.get("partial", False):
        first = [f"({TYPES[k]}, {c}, {f})" for k, c, f in np.argwhere(~present)[:5]]
        expect(False, f"{source}: codes", f"the complete {2 * N_COARSE * N_FINE}-code grid (type N/P x coarse "
               f"0..5 x fine 0..255) or metadata 'partial: true'", f"{missing} missing, e.g. {', '.join(first)}")
    expect(is_finite_number(monotone_tolerance) and 0 <= monotone_tolerance < 1, "monotone_tolerance",
           "a number in [0, 1)", monotone_tolerance)
    for k in range(2):
        for c in range(N_COARSE):
            run = -math.inf
            for f in np.flatnonzero(present[k, c]):
                g = grid[k, c, f]
                where = f"{source}, {rows[k, c, f]}: current ({TYPES[k]}, {c}, {f})"
                expect(g >= (1 - monotone_tolerance) * run, where,
                       f"non-decreasing in fine within {monotone_tolerance:.0%} of the running maximum {run:.4g} A",
                       float(g))
                run = max(run, g)
    ratio = grid[present] / model[present]
    off = (ratio > 3) | (ratio < 1 / 3)
    if off.any():
        warnings.warn(f"{source}: {int(off.sum())} currents differ from the parametric model P3 by more than 3x "
                      f"(e.g. {grid[present][off][0]:.4g} A vs {model[present][off][0]:.4g} A); check units (A)",
                      UserWarning, stacklevel=2)
    grid = np.where(present, grid, model)
    scope = "core" if meta.get("core") is not None else "chip" if meta.get("chip") is not None else "global"
    prov = {"source": "user-table", "label": f"table:{source}", "file": source, "scope": scope,
            "fallback_codes": missing, "fallback_model": "P3" if missing else None,
            "monotone_tolerance": monotone_tolerance, **{k: meta.get(k) for k in _META_KEYS if k != "partial"},
            **(extra_provenance or {})}
    return BiasGenerator(grid, prov)


def _read_csv(text: str, source: str) -> tuple[list, dict]:
    meta, header, records = {}, None, []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            if header is None and ":" in line:
                key, _, value = line.lstrip()[1:].partition(":")
                meta[key.strip().lower()] = value.strip()
            continue
        try:
            cells = [x.strip() for x in next(csv.reader([line]))]
        except csv.Error as exc:  # e.g. a field longer than the csv module's limit
            raise ConfigError(f"{source}, line {lineno}: expected comma-separated values, got unparsable text "
                              f"({exc})") from None
        if header is None:
            want = {"type", "coarse", "fine", "current_A"}
            expect(set(cells) == want and len(cells) == 4, f"{source}, line {lineno}: header",
                   "the columns type,coarse,fine,current_A (current in Amperes)", line.strip())
            header = cells
            continue
        expect(len(cells) == 4, f"{source}, line {lineno}", "4 comma-separated values", line.strip())
        d = dict(zip(header, cells))
        records.append((f"line {lineno}", d["type"], d["coarse"], d["fine"], d["current_A"]))
    expect(header is not None, source, "a CSV header type,coarse,fine,current_A", "no header")
    for key, want in (("version", str(TABLE_VERSION)), ("units", "A"), ("format", TABLE_FORMAT)):
        got = meta.pop(key, want)
        expect(got == want, f"{source}: {key}", want, got)
    return records, meta


def _read_json(text: str, source: str) -> tuple[list, dict]:
    doc = parse_json(text, source)
    expect(isinstance(doc, dict), source, "a JSON object", type(doc).__name__)
    expect(doc.get("format", TABLE_FORMAT) == TABLE_FORMAT, f"{source}: format", TABLE_FORMAT, doc.get("format"))
    expect(type(doc.get("version")) is int and doc.get("version") == TABLE_VERSION, f"{source}: version",
           TABLE_VERSION, doc.get("version"))
    expect(doc.get("units") == "A", f"{source}: units", "'A' (Amperes)", doc.get("units"))
    entries = doc.get("entries")
    expect(isinstance(entries, list), f"{source}: entries", "a list of {type, coarse, fine, current}", entries)
    records = []
    for n, e in enumerate(entries):
        ok = isinstance(e, dict) and set(e) == {"type", "coarse", "fine", "current"}
        expect(ok, f"{source}, entries[{n}]", "an object with keys type, coarse, fine, current",
               sorted(e) if isinstance(e, dict) else e)
        records.append((f"entries[{n}]", e["type"], e["coarse"], e["fine"], e["current"]))
    meta = {k: v for k, v in doc.items() if k not in ("format", "version", "units", "entries")}
    return records, meta


def load_calibration_table(path, *, monotone_tolerance: float = 0.10) -> BiasGenerator:
    """Load a user calibration table (``.csv`` or ``.json``, format in the module docstring).

    The returned generator replaces the parametric model; its provenance holds the file, its SHA-256,
    the scope (core/chip/global) and the metadata. Malformed input raises :class:`ConfigError` naming
    the file and row.
    """
    path = Path(path)
    expect(path.suffix.lower() in (".csv", ".json"), "calibration table file", "a .csv or .json file", str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"calibration table file: expected a readable file, got {str(path)!r} ({exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: expected UTF-8 text, got undecodable bytes") from None
    reader = _read_csv if path.suffix.lower() == ".csv" else _read_json
    records, meta = reader(text, str(path))
    return calibration_from_records(records, metadata=meta, source=str(path), monotone_tolerance=monotone_tolerance,
                                    extra_provenance={"sha256": hashlib.sha256(data).hexdigest(),
                                                      "format_version": TABLE_VERSION})


def save_calibration_table(generator: BiasGenerator, path, *, metadata: Optional[Mapping] = None) -> Path:
    """Write ``generator``'s full grid as a calibration table (format by suffix), atomically.

    Useful as a template for measured tables (e.g. from ``parametric_generator()``); ``metadata`` takes
    the optional keys board, chip, core, date, temperature, supply, method.
    """
    path = Path(path)
    meta = _check_meta(str(path), metadata or {})
    rows = [(t, c, f, float(generator.grid[k, c, f])) for k, t in enumerate(TYPES)
            for c in range(N_COARSE) for f in range(N_FINE)]
    if path.suffix.lower() == ".json":
        doc = {"format": TABLE_FORMAT, "version": TABLE_VERSION, "units": "A", **meta}
        entries = ",\n".join(json.dumps({"type": t, "coarse": c, "fine": f, "current": i}) for t, c, f, i in rows)
        text = json.dumps(doc)[:-1] + ',\n"entries": [\n' + entries + "\n]}\n"
    else:
        expect(path.suffix.lower() == ".csv", "calibration table file", "a .csv or .json file", str(path))
        buf = io.StringIO()
        buf.write(f"# format: {TABLE_FORMAT}\n# version: {TABLE_VERSION}\n# units: A\n")
        buf.writelines(f"# {k}: {v}\n" for k, v in meta.items())
        buf.write("type,coarse,fine,current_A\n")
        buf.writelines(f"{t},{c},{f},{i!r}\n" for t, c, f, i in rows)
        text = buf.getvalue()
    atomic_write_text(path, text)
    return path


def select_generator(tables=(), *, chip: Optional[int] = None, core: Optional[int] = None,
                     board: Optional[int] = None) -> BiasGenerator:
    """The active generator for (board, chip, core): a per-core table, else a per-chip table, else a
    global table (no chip/core), else the parametric P3 model. A table matches when each identifier
    it states equals the requested one. Several matches at the same level raise :class:`ConfigError`."""
    def ident(t, k):
        return t.provenance.get(k)

    def level(t):
        for k, want in (("board", board), ("chip", chip), ("core", core)):
            if ident(t, k) is not None and ident(t, k) != want:
                return None
        return 0 if ident(t, "core") is not None else 1 if ident(t, "chip") is not None else 2

    levels = [(level(t), t) for t in tables]
    for lvl in (0, 1, 2):
        hits = [t for lv, t in levels if lv == lvl]
        expect(len(hits) <= 1, "calibration tables", f"at most one {('per-core', 'per-chip', 'global')[lvl]} table "
               f"for board {board}, chip {chip}, core {core}", [t.source for t in hits])
        if hits:
            return hits[0]
    return parametric_generator("P3")
