"""Shared fixtures: paths, the NONMEM conformance data and reference solvers."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT.parent / "shared" / "conformance"
TEST_MODELS = Path(__file__).resolve().parent / "models"


@pytest.fixture(scope="session")
def conformance_dir():
    if not CONFORMANCE.is_dir():
        pytest.fail(f"NONMEM reference data not found at {CONFORMANCE} (CI keeps it at ../shared/conformance)")
    return CONFORMANCE
