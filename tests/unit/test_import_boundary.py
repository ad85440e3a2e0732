"""agent/core and protocol are pure: no hardware, network, clock, disk or vendor runtime."""

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


def test_importing_everything_touches_no_vendor_runtime() -> None:
    # Hardware and vendor libraries load inside adapters only; `import agent` works anywhere.
    code = (
        "import sys, pkgutil, importlib\n"
        "import agent, protocol, provisioning, central\n"
        "for pkg in (agent, protocol, provisioning, central):\n"
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
