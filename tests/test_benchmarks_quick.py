"""The performance guard: `python -m benchmarks --quick` against benchmarks/floors.toml.

Ratios to an in-process solve_ivp baseline (not absolute times), measured on 1
thread: 1,000 subjects of W1 and 200 of W2, exact and RK45 paths. A lost exact
fast path or a Python loop in the integration would fall below the floors; the
exact path must also stay within 1e-9 of the scipy.linalg.expm reference.
"""

import json
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_meets_the_floors(tmp_path):
    report = tmp_path / "quick.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(report)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert report.exists(), run.stderr[-3000:]
    floors = json.loads(report.read_text())["floors"]
    assert floors, "no floor was checked"
    failed = [f"{label}: {measured:.3g} (must be {relation} {bound:g})"
              for label, measured, bound, ok, relation in floors if not ok]
    assert not failed, "performance regression:\n" + "\n".join(failed) + "\n\n" + run.stdout
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
