"""Shared fixtures: paths, the NONMEM conformance data and reference solvers."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT.parent / "shared" / "conformance"
TEST_MODELS = Path(__file__).resolve().parent / "models"


def pytest_sessionstart(session):
    """Compile every model the suite uses, on all cores at once, before the tests start.

    On a fresh machine each model compiles once (~30 s) into the on-disk cache; done here
    in parallel processes rather than one after another inside the tests. With a warm
    cache this takes a few seconds.
    """
    import os

    from pkpd._warm import warm

    models = sorted(str(p) for folder in (ROOT / "models", TEST_MODELS, ROOT / "benchmarks" / "models")
                    for p in folder.glob("*.toml"))
    warm(models, jobs=max(1, min(len(models), os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def conformance_dir():
    if not CONFORMANCE.is_dir():
        pytest.fail(f"NONMEM reference data not found at {CONFORMANCE} (CI keeps it at ../shared/conformance)")
    return CONFORMANCE
