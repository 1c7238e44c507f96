"""The public API type-checks: mypy on pkpd/__init__.py and the modules it re-exports from.

Configuration in pyproject.toml ``[tool.mypy]``; imported private helpers are read for their
types (``follow_imports = "silent"``) but not reported on. The engine (``pkpd/engine/``, Numba
kernels) is not type-checked; it is linted with the package and its coverage measured by
tests/test_engine_coverage.py.
"""

import sys
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[1]

# pkpd/__init__.py and every module whose names it exports (keep in step with its imports)
PUBLIC_MODULES = [
    "pkpd/__init__.py",
    "pkpd/_errors.py",         # PkpdError and its kinds, SimulationError
    "pkpd/model/__init__.py",  # load_model, Model, library_models
    "pkpd/model/loading.py",   # where load_model and library_models are defined
    "pkpd/model/model.py",     # where Model is defined
    "pkpd/population/__init__.py",    # Population
    "pkpd/population/population.py",  # where it is defined
    "pkpd/events/__init__.py",  # Dose, Regimen
    "pkpd/events/regimen.py",   # where they are defined
    "pkpd/_simulate.py",       # simulate, simulate_summary, SimulationResult
    "pkpd/_simulate_data.py",  # simulate_data
    "pkpd/study/__init__.py",  # load_scenario, run_scenario, search, SearchResult, tci_regimen, UncertaintyOptions
    "pkpd/study/run.py",       # where run_scenario is defined
    "pkpd/study/scenario.py",  # load_scenario
    "pkpd/study/trial.py",     # trial (loaded on first use)
    "pkpd/study/search.py",    # search, SearchResult
    "pkpd/study/tci.py",       # tci_regimen
    "pkpd/figures/__init__.py",     # figure_set, write_figures (loaded on first use)
    "pkpd/figures/run_figures.py",  # where they are defined
    "pkpd/study/draws.py",     # UncertaintyOptions
]


def test_public_modules_type_check(tmp_path):
    limit = sys.getrecursionlimit()
    try:
        stdout, stderr, status = mypy_api.run([
            "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "mypy"),
            *(str(ROOT / module) for module in PUBLIC_MODULES)])
    finally:   # mypy raises the limit for itself, in this process: later tests expect Python's own
        sys.setrecursionlimit(limit)
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"


def test_checked_set_covers_the_public_imports():
    """Every module pkpd/__init__.py imports from (a module file, or a package's __init__.py) is in PUBLIC_MODULES."""
    import ast

    tree = ast.parse((ROOT / "pkpd" / "__init__.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for module in ([node.module] if node.module else [alias.name for alias in node.names]):
                path = "pkpd/" + module.replace(".", "/")
                imported.add(f"{path}/__init__.py" if (ROOT / path).is_dir() else f"{path}.py")
    assert imported <= set(PUBLIC_MODULES), sorted(imported - set(PUBLIC_MODULES))
