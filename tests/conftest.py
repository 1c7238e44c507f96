"""Shared fixtures: paths, the NONMEM conformance data, and the warm-up of the models the tests run.

A test (or a module, with ``pytestmark``) declares the models it runs with
``@pytest.mark.models(NAME_OR_PATH, ...)``. Once the tests are collected and
selected, and only when they are about to run (not for ``--collect-only``), the
models the selected tests declare and the on-disk cache lacks are compiled in
parallel processes, one per core: on a fresh machine each takes ~15 s, on all
cores at once instead of one after another inside the tests. A model a test
uses without declaring it still works; it is compiled on first use.
"""

import os
from pathlib import Path

import pytest

# One BLAS thread, set before numpy is first imported (a value the user set wins): the reference
# solutions call small-matrix BLAS and LAPACK (scipy.linalg.expm, solve_ivp) thousands of times, and
# OpenBLAS's threads make each call many times slower when the other core is busy (the 24 steady-state
# tests of test_reference.py took 34 s with OpenBLAS's default threads, 6 s with one, on 2 busy cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
TEST_MODELS = Path(__file__).resolve().parent / "models"


def write_pk1cmt_with_drugs(folder):
    """Write ``folder/pk1cmt.toml``: the library's pk1cmt with a ``[drugs]`` entry, so scenarios can
    dose it. Every test writes the same text under the same name: one compiled cache entry."""
    path = Path(folder) / "pk1cmt.toml"
    path.write_text((ROOT / "models" / "pk1cmt.toml").read_text()
                    + '\n[drugs]\nCENT = { compartment = "CENT", unit = "mg" }\n')
    return path
CONFORMANCE = Path(__file__).resolve().parent / "data" / "nonmem"
WARM_FAILURES = pytest.StashKey[list]()


def declared_models(items):
    """The models the ``models`` markers of `items` name, as sorted strings (names or paths)."""
    return sorted({str(model) for item in items for marker in item.iter_markers("models") for model in marker.args})


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """Compile the models the selected tests declare, before the first test runs.

    A failed warm-up is reported (the worker's traceback, in the terminal summary)
    but does not fail the session: warming only saves time, and a test that needs
    the model compiles it again and fails there, with its own traceback, if the
    model is really broken; a worker lost for another reason (killed, out of
    memory) then costs time, not a false failure.
    """
    if session.config.option.collectonly or session.testsfailed:
        return None
    models = declared_models(session.items)
    if not models:
        return None
    from pkpd._warm import warm

    failures = warm(models, jobs=max(1, min(len(models), os.cpu_count() or 1)))
    session.config.stash[WARM_FAILURES] = failures
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if failures and reporter is not None:
        reporter.write_line(f"warning: model warm-up failed for {sum(len(f.models) for f in failures)} model(s); "
                            "the tests compile them on first use (details at the end)", yellow=True, bold=True)
    return None


def pytest_terminal_summary(terminalreporter, config):
    failures = config.stash.get(WARM_FAILURES, [])
    if failures:
        terminalreporter.section("model warm-up failed", sep="=", yellow=True, bold=True)
        for failure in failures:
            terminalreporter.write_line(str(failure))


@pytest.fixture(scope="session")
def conformance_dir():
    """tests/data/nonmem: NONMEM's answers (mrgsolve/nmtests, GPL-2.0; see PROVENANCE.md there)."""
    return CONFORMANCE


class PicklingExecutor:
    """A map-like executor that runs each task here, after a round trip of the task and its inputs
    through pickle (as a process pool or a dask worker would receive them); counts the tasks."""

    def __init__(self):
        self.tasks = 0

    def map(self, fn, *iterables):
        import pickle

        for arguments in zip(*iterables):
            self.tasks += 1
            task, arguments = pickle.loads(pickle.dumps((fn, arguments)))
            yield task(*arguments)
