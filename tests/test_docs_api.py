"""The public API is documented: every public module imports, has a docstring, documents every
name it exports, and appears in the API reference (``docs/reference/*.md``).

Rules (the contract of the API reference):

* **Public module**: every module or package under ``spikefleet`` whose dotted name has no
  component starting with ``_`` (``spikefleet._version`` and
  ``spikefleet.hardware.dynapse2._alternating`` are private), except ``spikefleet.__main__``.
* It must **import**. The only exceptions are the modules of :data:`OPTIONAL_IMPORTS`, skipped
  when (and only when) importing them fails because their optional dependency is missing.
* It must have a **module docstring** (the reference page shows it).
* **Exported names** are ``__all__``; a module without ``__all__`` exports the functions and
  classes it defines whose names do not start with ``_``. Every exported function or class needs
  a hand-written docstring (the signature-only ``__doc__`` that dataclasses and ``NamedTuple``
  generate does not count). Every other exported name (a constant) must be documented in the
  source of the module that assigns it: a ``#:`` comment on the line directly above the
  assignment, a comment at the end of its first line, a string literal directly after it, or a
  mention by name in that module's docstring. (The reference renders the first three as the
  constant's description, see ``docs/_ext/rst_docstrings.py``.)
* Every public module appears as ``::: module.name`` in a page of ``docs/reference/``, and every
  such entry names an existing public module.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import spikefleet

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"

#: modules whose import may need an optional dependency (module -> top-level package of that
#: dependency). Both import lazily today, so they are checked like every other module; they are
#: skipped only if importing them raises ModuleNotFoundError for exactly that package.
OPTIONAL_IMPORTS = {
    "spikefleet.experiments.backends": "ray",
    "spikefleet.hardware.dynapse2.runner": "samna",
}


def public_modules() -> list[str]:
    names = ["spikefleet"]
    for info in pkgutil.walk_packages(spikefleet.__path__, "spikefleet."):
        parts = info.name.split(".")
        if info.name == "spikefleet.__main__" or any(p.startswith("_") for p in parts):
            continue
        names.append(info.name)
    return sorted(names)


MODULES = public_modules()


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        optional = OPTIONAL_IMPORTS.get(name)
        if optional is not None and (exc.name or "").split(".")[0] == optional:
            pytest.skip(f"{name} needs the optional dependency {optional!r}")
        raise


def _is_documentable(obj) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__")


def _own_docstring(obj) -> str:
    """The hand-written docstring of a function or class ('' if none or auto-generated)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    doc = (doc or "").strip()
    if inspect.isclass(obj) and re.fullmatch(re.escape(obj.__name__) + r"\(.*\)", doc, re.S):
        return ""  # dataclass / NamedTuple signature, not documentation
    return doc


def _exports(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return sorted(n for n, obj in vars(module).items()
                  if not n.startswith("_") and _is_documentable(obj) and getattr(obj, "__module__", None) == module.__name__)


def _assigned(tree: ast.Module, name: str):
    """``(index, node)`` of the top-level statement assigning ``name``, or None."""
    for i, node in enumerate(tree.body):
        targets = []
        if isinstance(node, ast.Assign):
            for t in node.targets:
                elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
                targets += [e.id for e in elts if isinstance(e, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        if name in targets:
            return i, node
    return None


def _imported_from(module, tree: ast.Module, name: str) -> str | None:
    """The module a ``from X import name`` statement of ``module`` takes ``name`` from."""
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                return f"{base}.{node.module}" if node.module else base
            return node.module
    return None


def _constant_documented(module, name: str, depth: int = 0) -> bool:
    source = inspect.getsource(module)
    tree = ast.parse(source)
    found = _assigned(tree, name)
    if found is None:
        origin = _imported_from(module, tree, name)
        if origin is None or depth > 3:
            return False
        return _constant_documented(importlib.import_module(origin), name, depth + 1)
    index, node = found
    lines = source.splitlines()
    above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
    after = tree.body[index + 1] if index + 1 < len(tree.body) else None
    literal_after = (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                     and isinstance(after.value.value, str))
    trailing = "#" in lines[node.lineno - 1].split("=", 1)[-1] and _has_comment(lines[node.lineno - 1])
    in_module_doc = re.search(rf"\b{re.escape(name)}\b", module.__doc__ or "") is not None
    return above.startswith("#:") or trailing or literal_after or in_module_doc


def _has_comment(line: str) -> bool:
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    return any(t.type == tokenize.COMMENT and t.string.lstrip("#").strip() for t in tokens)


def _reference_entries() -> dict[str, str]:
    entries = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for line in page.read_text().splitlines():
            match = re.match(r"^:::\s+([\w.]+)\s*$", line)
            if match:
                entries[match.group(1)] = page.name
    return entries


def test_public_modules_are_found():
    assert "spikefleet.fleet.chip" in MODULES and "spikefleet.hardware.dynapse2.config" in MODULES
    assert not any(m.split(".")[-1].startswith("_") for m in MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_is_documented(name):
    module = _import(name)
    assert (module.__doc__ or "").strip(), f"{name}: add a module docstring (it heads its reference page section)"
    missing_names, undocumented, constants = [], [], []
    for export in _exports(module):
        if not hasattr(module, export):
            missing_names.append(export)
            continue
        obj = getattr(module, export)
        if _is_documentable(obj):
            if not _own_docstring(obj):
                undocumented.append(export)
        elif not _constant_documented(module, export):
            constants.append(export)
    assert not missing_names, f"{name}: __all__ lists names the module does not have: {missing_names}"
    assert not undocumented, f"{name}: exported functions/classes without a docstring: {undocumented}"
    assert not constants, (f"{name}: exported constants without documentation: {constants} (add a '#:' comment "
                           "above the assignment, or describe them in the module docstring)")


def test_every_public_module_is_in_the_api_reference():
    entries = _reference_entries()
    missing = [m for m in MODULES if m not in entries]
    assert not missing, f"add these modules to a page of docs/reference/ as '::: module': {missing}"
    stale = sorted(e for e in entries if e not in MODULES)
    assert not stale, f"docs/reference/ documents modules that are not public modules: {stale}"


def test_rules_detect_missing_documentation(tmp_path, monkeypatch):
    """The checks themselves: auto-generated docstrings and undocumented constants are caught."""
    from dataclasses import dataclass
    from typing import NamedTuple

    @dataclass
    class Plain:
        x: int = 0

    class Pair(NamedTuple):
        a: int
        b: int

    class Documented(NamedTuple):
        """A pair."""

        a: int

    assert _own_docstring(Plain) == "" and _own_docstring(Pair) == ""
    assert _own_docstring(Documented) == "A pair."
    from spikefleet.neurons import lif

    assert _own_docstring(lif.LIF)
    probe_source = (
        '"""Probe module; MENTIONED is described here."""\n'
        "#: documented above\nABOVE = 1\n"
        "TRAILING = 2  # documented at the end\n"
        "AFTER = 3\n'documented after'\n"
        "MENTIONED = 4\nBARE = 5\nHASH = '#'\n"
    )
    (tmp_path / "sf_docs_probe.py").write_text(probe_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module("sf_docs_probe")
    try:
        found = {n: _constant_documented(probe, n) for n in ("ABOVE", "TRAILING", "AFTER", "MENTIONED", "BARE", "HASH")}
    finally:
        sys.modules.pop("sf_docs_probe", None)
    assert found == {"ABOVE": True, "TRAILING": True, "AFTER": True, "MENTIONED": True, "BARE": False,
                     "HASH": False}
