"""TFLite runtimes side by side: the same models, the same inputs, invoke() only.

``make bench`` runs this file as a script, once per runtime and each in its own interpreter
process, so that a runtime which crashes or cannot load (tflite-runtime 2.14 under numpy 2:
``_ARRAY_API not found`` when the first interpreter is created) costs one line in the report,
not the bench. It imports only the standard library, numpy and the runtime under test, so it
also runs in a side venv that has the project's models but not the project, for example

    python3.11 -m venv /tmp/tflrt && /tmp/tflrt/bin/pip install 'numpy<2' tflite-runtime
    make bench BENCH_ARGS='--tflite-runtime-python /tmp/tflrt/bin/python'

    python tools/bench/runtimes.py --runtime ai-edge-litert --probe
    python tools/bench/runtimes.py --runtime tflite-runtime --runs 100 --threads 1 2 4

prints one JSON document: the runtime's version and numpy's, and per model and thread count
the invoke() times in milliseconds (or why the model did not load).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODELS = Path(__file__).resolve().parents[2] / "models"
RUNTIMES = ("ai-edge-litert", "tflite-runtime")
# One model is enough to show whether a runtime works at all (it must create an interpreter:
# tflite-runtime 2.14 imports under numpy 2 and fails only then).
PROBE_MODEL = "mobilefacenet_int8w.tflite"


def _interpreter(runtime: str) -> tuple[Any, str]:
    if runtime == "ai-edge-litert":
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, version("ai-edge-litert")
    if runtime == "tflite-runtime":
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, str(getattr(tflite_runtime, "__version__", "?"))
    raise SystemExit(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")


def _load(factory: Any, name: str, sha256: str, threads: int) -> tuple[Any, bytes]:
    data = (MODELS / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{name}: sha256 differs from models/MANIFEST.json")
    interpreter = factory(model_content=data, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter, data  # the interpreter may point into data: keep both alive


def _inputs(interpreter: Any) -> None:
    rng = np.random.default_rng(0)
    for d in interpreter.get_input_details():
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "f":
            x = rng.random(tuple(d["shape"]), dtype=np.float32).astype(dtype)
        else:
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, size=tuple(d["shape"]), endpoint=True)
            x = x.astype(dtype)
        interpreter.set_tensor(d["index"], x)


def _cause(exc: BaseException) -> str:
    """The exception and, when it wraps one, the root cause (numpy's ABI error is two deep)."""
    chain = [exc]
    while (inner := chain[-1].__cause__ or chain[-1].__context__) and len(chain) < 8:
        chain.append(inner)
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
    if len(chain) > 1:
        root = chain[-1]
        text += f" (caused by {type(root).__name__}: {str(root).splitlines()[0][:120]})"
    return text


def measure(
    runtime: str, runs: int, threads: list[int], probe: bool, budget: float = 10.0
) -> dict[str, Any]:
    factory, version = _interpreter(runtime)
    manifest = json.loads((MODELS / "MANIFEST.json").read_text())
    out: dict[str, Any] = {"runtime": runtime, "version": version, "numpy": np.__version__}
    models: dict[str, Any] = {}
    names = [PROBE_MODEL] if probe else sorted(manifest["models"])
    for name in names:
        spec = manifest["models"][name]
        entry: dict[str, Any] = {"role": spec["role"], "variant": spec["variant"], "ms": {}}
        for count in [1] if probe else threads:
            try:
                interpreter, _data = _load(factory, name, spec["sha256"], count)
                _inputs(interpreter)
                for _ in range(1 if probe else 3):
                    interpreter.invoke()
                samples: list[float] = []
                began = time.perf_counter()
                # At most `runs`, and no more than `budget` seconds per model and thread count
                # (a runtime whose threads fight for busy cores can take seconds per run).
                while len(samples) < (0 if probe else runs) and (
                    len(samples) < 3 or time.perf_counter() - began < budget
                ):
                    start = time.perf_counter()
                    interpreter.invoke()
                    samples.append((time.perf_counter() - start) * 1000)
                entry["ms"][str(count)] = samples
            # A model this runtime cannot load, however it fails: say which and why.
            except Exception as exc:  # noqa: BLE001
                entry["error"] = _cause(exc)
                break
        models[name] = entry
    out["models"] = models
    return out


def run_in(
    python: str,
    runtime: str,
    runs: int,
    threads: list[int],
    *,
    probe: bool,
    timeout: float = 900,
    path: Path | None = None,
) -> dict[str, Any]:
    """This script under ``python`` (``path``: prepended to its PYTHONPATH): its JSON, or
    ``{"error": <the line that names the cause>}``."""
    command = [python, str(Path(__file__).resolve()), "--runtime", runtime, "--runs", str(runs)]
    command += ["--threads", *map(str, threads)] + (["--probe"] if probe else [])
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")]).rstrip(":")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"runtime": runtime, "python": python, "error": str(exc)}
    if done.returncode == 0:
        try:
            result: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            pass
        else:
            result["python"] = python
            failed = [m.get("error") for m in result["models"].values() if "error" in m]
            if probe and failed:
                # The extension module prints its own cause on stderr before it fails.
                printed = [e for e in _error_lines(done.stderr) if e not in failed[0]]
                result["error"] = failed[0] + (f"; stderr: {printed[-1]}" if printed else "")
            return result
    lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    errors = _error_lines(done.stderr or done.stdout)
    cause = errors[-1] if errors else lines[-1] if lines else f"exit status {done.returncode}"
    return {"runtime": runtime, "python": python, "error": cause[:300]}


def alongside(other_python: str) -> dict[str, Any]:
    """Probe the tflite-runtime package of ``other_python``'s environment under *this*
    interpreter and its numpy (only that package is put on the path): what happens if one
    installed tflite-runtime beside ai-edge-litert here."""
    found = subprocess.run(
        [
            other_python,
            "-c",
            "import tflite_runtime, os; print(os.path.dirname(tflite_runtime.__file__))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    package = Path(found.stdout.strip())
    if found.returncode != 0 or not package.is_dir():
        return {"error": f"tflite_runtime not importable under {other_python}"}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tflite_runtime").symlink_to(package)
        return run_in(sys.executable, "tflite-runtime", 1, [1], probe=True, path=Path(tmp))


def _error_lines(text: str) -> list[str]:
    """Lines like "AttributeError: _ARRAY_API not found" (the ones that name a cause)."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line.split(":")[0].endswith(("Error", "Exception"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=RUNTIMES, required=True)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--probe", action="store_true", help="load and run one model once")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.runtime, args.runs, args.threads, args.probe)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
