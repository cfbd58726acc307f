"""The architecture rules of docs/architecture.md, checked on the source tree in ``src/spikefleet``.

* the layer contract (``[tool.importlinter]`` in pyproject.toml), run by ``lint-imports``:
  dependencies point down, and no two sibling modules or packages import each other in a cycle;
* no import cycle between any two modules (an independent check over the ``ast`` of every file,
  counting imports anywhere in a file, so a cycle hidden in a function body is found too);
* no source file over 500 lines;
* imports at module top; an import inside a function (or class body) only for a heavy optional
  dependency (:data:`LAZY_IMPORTS_ALLOWED`), so that the module's dependencies are visible.

Each assertion message lists every offender with its file and line.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import deque
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "spikefleet"
MAX_LINES = 500
#: Top-level packages that may be imported inside a function: heavy, optional extras.
LAZY_IMPORTS_ALLOWED = frozenset({"ray", "samna", "nir"})


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _module_files()
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for name, path in MODULES.items()}


def _where(module: str, line: int | None = None) -> str:
    path = MODULES[module].relative_to(ROOT).as_posix()
    return f"{path}:{line}" if line is not None else path


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module named by a ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str) -> str | None:
    """The longest prefix of a dotted name that is a module of the package, or None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package's modules an import statement loads (a submodule where a name is one)."""
    found = []
    if isinstance(node, ast.Import):
        found = [_known(alias.name) for alias in node.names]
    else:
        source = _absolute(module, node)
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            found.append(submodule if submodule in MODULES else _known(source))
    return sorted({target for target in found if target is not None and target != module})


def _import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, over imports anywhere in the file."""
    graph: dict[str, dict[str, int]] = {name: {} for name in MODULES}
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(name, node):
                    line = graph[name].get(target, node.lineno)
                    graph[name][target] = min(line, node.lineno)
    return graph


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return sorted(components)


def _shortest_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    start, members = component[0], set(component)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph[node]):
            if succ not in members:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if succ not in parent:
                parent[succ] = node
                queue.append(succ)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a component of size > 1


def _describe_cycle(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [cycle[0]]
    for a, b in pairwise(cycle):
        steps.append(f"  -> {b}   ({_where(a, graph[a][b])})")
    return "\n".join(steps)


def test_layer_contract():
    """``lint-imports`` with the contracts of pyproject.toml, on this tree's sources."""
    try:
        import importlinter  # noqa: F401
    except ImportError as error:  # pragma: no cover - the test extra pins it
        raise AssertionError(
            "import-linter is not installed; it is part of the test extra: "
            "pip install -c constraints.txt -e '.[test]'"
        ) from error
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
               COLUMNS="200", NO_COLOR="1", TERM="dumb")
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
               "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, (
        "the layer contract of pyproject.toml ([tool.importlinter]) is broken "
        f"(lint-imports exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


def test_no_import_cycles():
    graph = _import_graph()
    components = _strongly_connected(graph)
    report = [
        f"{len(component)} modules import each other ({', '.join(component)}); a shortest cycle:\n"
        + _describe_cycle(graph, _shortest_cycle(graph, component))
        for component in components
    ]
    assert not components, (
        f"{len(components)} import cycle(s) between modules of src/spikefleet (imports anywhere in a file count); "
        "break each by moving the shared piece into a lower module:\n\n" + "\n\n".join(report)
    )


def test_no_source_file_over_500_lines():
    long = sorted(
        ((len(path.read_text(encoding="utf-8").splitlines()), name) for name, path in MODULES.items()),
        reverse=True,
    )
    offenders = [f"{_where(name)}: {lines} lines" for lines, name in long if lines > MAX_LINES]
    assert not offenders, (
        f"{len(offenders)} source file(s) over {MAX_LINES} lines; split each along its concepts "
        "(one concept per file):\n" + "\n".join(offenders)
    )


def _scoped_imports(tree: ast.Module):
    """Yield (import node, name of the enclosing function or class) for imports below module level."""
    todo = [(child, None) for child in ast.iter_child_nodes(tree)]
    while todo:
        node, scope = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = node.name if scope is None else f"{scope}.{node.name}"
            todo.extend((child, inner) for child in ast.iter_child_nodes(node))
            continue
        if isinstance(node, ast.Lambda):
            todo.extend((child, scope or "<lambda>") for child in ast.iter_child_nodes(node))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)) and scope is not None:
            yield node, scope
        todo.extend((child, scope) for child in ast.iter_child_nodes(node))


def test_imports_at_module_top():
    offenders = []
    for name, tree in TREES.items():
        for node, scope in _scoped_imports(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            else:
                roots = {_absolute(name, node).split(".")[0]}
            if roots <= LAZY_IMPORTS_ALLOWED:
                continue
            offenders.append((_where(name, node.lineno), scope, ast.unparse(node)))
    offenders.sort(key=lambda item: (item[0].split(":")[0], int(item[0].split(":")[1])))
    listing = "\n".join(f"{where}  in {scope}(): {statement}" for where, scope, statement in offenders)
    assert not offenders, (
        f"{len(offenders)} import(s) inside a function or class body; move each to the module top "
        f"(only {', '.join(sorted(LAZY_IMPORTS_ALLOWED))} may be imported lazily, being heavy optional "
        f"extras). If the move makes a cycle, the layering is wrong: see docs/architecture.md.\n" + listing
    )
