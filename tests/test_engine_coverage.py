"""The engine is ordinary Python: it runs without Numba (``NUMBA_DISABLE_JIT=1``), which gives
its line coverage and tracebacks that name its real source files (issue 14)."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

COVERAGE_FLOOR = 90.0   # % of the engine's lines run by the NONMEM conformance suite (93 % when written)

FAILING_SUBJECT = r"""
import numpy as np
import pkpd

model = pkpd.load_model("pk1cmt")
kernels = model.kernels

def rhs(y, e, dydt):
    raise FloatingPointError("a right-hand side that fails")

object.__setattr__(model, "_kernels", kernels._replace(rhs=rhs))
pkpd.simulate(model, [pkpd.Dose(100.0, "CENT")], pkpd.Population(1, seed=1), np.linspace(0, 4, 5),
              method="rk45", progress=False)
"""


def _without_jit(tmp_path):
    return {**os.environ, "NUMBA_DISABLE_JIT": "1", "PKPD_CACHE_DIR": str(tmp_path / "cache")}


def test_a_failing_subject_traceback_names_the_engine_source(tmp_path):
    run = subprocess.run([sys.executable, "-c", FAILING_SUBJECT], cwd=ROOT, env=_without_jit(tmp_path),
                         capture_output=True, text=True)
    assert run.returncode != 0 and "FloatingPointError: a right-hand side that fails" in run.stderr
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', run.stderr)
    engine = [(os.path.relpath(file, ROOT), int(line), name) for file, line, name in frames
              if os.path.abspath(file).startswith(str(ROOT / "pkpd" / "engine"))]
    names = [name for _, _, name in engine]
    assert names[:1] == ["run_population"] and "run_subject" in names and names[-1] == "evaluate_rhs"
    file, line, _ = engine[-1]
    source = (ROOT / file).read_text().splitlines()[line - 1]
    assert file == os.path.join("pkpd", "engine", "calls.py") and "model.rhs(" in source


def test_engine_line_coverage_of_the_conformance_suite(tmp_path):
    pytest.importorskip("coverage")
    data = tmp_path / "coverage.data"
    run = subprocess.run([sys.executable, "-m", "coverage", "run", f"--data-file={data}", "--include=pkpd/engine/*",
                          "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_conformance.py"],
                         cwd=ROOT, env=_without_jit(tmp_path), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = subprocess.run([sys.executable, "-m", "coverage", "report", f"--data-file={data}", "-m"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    total = float(re.search(r"^TOTAL\s+\d+\s+\d+\s+(\d+)%", report, re.M).group(1))
    print(f"\nengine line coverage (NUMBA_DISABLE_JIT=1, tests/test_conformance.py):\n{report}")
    assert total >= COVERAGE_FLOOR, report
