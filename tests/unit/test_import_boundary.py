"""The package graph holds: protocol <- lfrkit <- agent, provisioning <- central; tools above.

agent/core and protocol are pure (no hardware, network, clock, disk or vendor runtime); no
package imports one above it, and no modules import each other in a circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = ["protocol", "agent/core"]
# Pure logic may use these and nothing else.
ALLOWED = {
    "__future__",
    "base64",
    "binascii",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "hashlib",
    "hmac",
    "itertools",
    "json",
    "math",
    "re",
    "types",
    "typing",
    "uuid",
    "numpy",
    "cryptography",
    "protocol",
    "agent",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_import_only_pure_modules(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            inside_agent_core = module == "agent" or module.startswith("agent.core")
            if top not in ALLOWED or (top == "agent" and not inside_agent_core):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


# Which of our packages each package may import (itself always). central uses the device's
# vision stack (agent.vision, agent.models, agent.core) to enrol with exactly the node's
# models, and nothing else of the agent; tools measure everything but import no tests.
OURS = ("protocol", "lfrkit", "agent", "provisioning", "central", "tools", "tests", "models")
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "protocol": (),
    "lfrkit": ("protocol",),
    "agent": ("protocol", "lfrkit"),
    "provisioning": ("protocol", "lfrkit"),
    "central": (
        "protocol",
        "lfrkit",
        "provisioning",
        "agent.vision",
        "agent.models",
        "agent.core",
        "agent.pipeline",
    ),
    "tools": ("protocol", "lfrkit", "agent", "provisioning", "central", "models"),
}


def _package_modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        found[".".join(parts)] = path
    return found


def _all_imports(path: Path, module: str) -> list[tuple[int, str]]:
    """Absolute names of every import in the file, top-level or inside a function."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from pkg import module` imports a module too
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_no_package_imports_one_above_it(package: str) -> None:
    allowed = (package, *MAY_IMPORT[package])
    bad = []
    for module, path in _package_modules(package).items():
        for line, name in _all_imports(path, module):
            if name.split(".")[0] not in OURS or name.split(".")[0] == package:
                continue
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_no_import_cycles_between_modules() -> None:
    modules: dict[str, Path] = {}
    for package in MAY_IMPORT:
        modules.update(_package_modules(package))
    graph = {
        module: {name for _, name in _all_imports(path, module) if name in modules} - {module}
        for module, path in modules.items()
    }
    # A package's __init__ importing its own modules is not a cycle of design.
    for module, targets in graph.items():
        graph[module] = {m for m in targets if not module.startswith(m + ".")}
    cycles = _strongly_connected(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of two or more modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.add(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_importing_everything_touches_no_vendor_runtime() -> None:
    # Hardware and vendor libraries load inside adapters only; `import agent` works anywhere.
    code = (
        "import sys, pkgutil, importlib\n"
        "import agent, protocol, lfrkit, provisioning, central\n"
        "for pkg in (agent, protocol, lfrkit, provisioning, central):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "vendor = {'paho', 'picamera2', 'tflite_runtime', 'ai_edge_litert', 'tensorflow',"
        " 'systemd', 'cv2', 'libcamera'}\n"
        "print(sorted(vendor & {n.split('.')[0] for n in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"
