"""Every module of the package imports in a fresh interpreter; module-level imports form no cycle; imports
sit at module level (only the CLI entry imports lazily, to keep `sbnn --help` fast)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE_DIRS = {"sbnn": "sbnn", "training": "sbnn.training", "export": "sbnn.export", "hls": "sbnn.hls",
              "bitstreams": "sbnn.bitstreams"}
# (module, imported name) pairs allowed inside functions, with the reason
LAZY_ALLOWED = {
    ("sbnn.cli", "*"): "the CLI entry loads a stage only when its subcommand runs (fast --help)",
    ("sbnn", "sbnn"): "sbnn.build (the Python API) loads the flow only when used: `import sbnn` stays light",
    ("sbnn.bitstreams.driver", "pynq"): "pynq exists only on the board; the driver also runs on the host",
}


def package_modules() -> dict[str, Path]:
    mods = {}
    for d, pkg in STAGE_DIRS.items():
        for p in sorted((REPO / d).rglob("*.py")):
            rel = p.relative_to(REPO / d).with_suffix("")
            parts = [x for x in rel.parts if x != "__init__"]
            mods[".".join([pkg, *parts])] = p
    return mods


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, top_level: bool) -> list[tuple[str, int]]:
    """(imported sbnn module, line) of the module's top-level (or function-level) import statements."""
    tree = ast.parse(path.read_text())
    nested: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested.update(id(n) for n in ast.walk(fn) if n is not fn)
    out = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)) and (id(n) in nested) != top_level:
            if isinstance(n, ast.Import):
                out += [(a.name, n.lineno) for a in n.names]
            else:
                base = _resolve(module, path, n)
                out += [(f"{base}.{a.name}", n.lineno) for a in n.names]
    return out


def test_no_import_cycles_among_package_modules():
    mods = package_modules()
    graph = {}
    for m, p in mods.items():
        deps = set()
        for name, _ in imports_of(m, p, top_level=True):
            # "from pkg import mod" names a module; "from mod import func" names the module itself
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != m:
                deps.add(name)
        graph[m] = deps
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_are_at_module_level():
    found = []
    for m, p in package_modules().items():
        for name, line in imports_of(m, p, top_level=False):
            if (m, "*") in LAZY_ALLOWED or (m, name.split(".")[0]) in LAZY_ALLOWED:
                continue
            found.append(f"{p.relative_to(REPO)}:{line} imports {name}")
    assert found == [], "function-level imports:\n" + "\n".join(found)


def test_every_module_imports_in_a_fresh_interpreter():
    mods = sorted(package_modules())
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok', len(sys.argv) - 1)\n"
    res = subprocess.run([sys.executable, "-c", code, *mods], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == ["ok", str(len(mods))]
