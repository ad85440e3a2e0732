"""The per-face benchmarks' allocator setting: per-face arrays stop costing fresh pages.

Each case runs in its own interpreter, since the thresholds are process-wide."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

# The arrays of one face's trip through detection and embedding (a 250x250 photo as Pillow
# holds it, the detector's float input and its normalised copies, the two aligned crops in
# float), allocated and freed in turn as the pipeline does.
FACE_LOOP = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from tools.evaluation.allocator import keep_freed_memory

    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    if sys.argv[1] == "after-a-frame":  # as in the agent, which has freed camera frames
        frame = np.ones((480, 640, 3), np.uint8)
        del frame

    def face() -> float:
        photo = np.ones((250, 250, 4), np.uint8)
        canvas = np.ones((128, 128, 3), np.float32)
        x = canvas * 2
        y = x + 1
        arcface = np.ones((112, 112, 3), np.float32)
        dlib = np.ones((150, 150, 3), np.float32)
        return float(photo[0, 0, 0] + y[0, 0, 0] + arcface[0, 0, 0] + dlib[0, 0, 0])

    for _ in range(5):
        face()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        face()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
    """
)


GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's (mallopt)")


def _faults_per_face(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", FACE_LOOP, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


@needs_glibc
def test_fixed_thresholds_give_a_photo_benchmark_the_agents_heap() -> None:
    cold = _faults_per_face("default")
    # The agent's case, glibc's own adaptation: one freed frame and a face faults no pages.
    assert _faults_per_face("after-a-frame") < 5
    # A process that has only seen photos: every face's arrays fault in fresh pages (4 KiB each)
    # unless the thresholds are fixed.
    assert cold > 100, f"a face faulted only {cold} pages in a cold process"
    assert _faults_per_face("keep") < 5


def test_keep_freed_memory_says_whether_it_took_effect() -> None:
    code = "from tools.evaluation.allocator import keep_freed_memory as k; print(k())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(GLIBC)
