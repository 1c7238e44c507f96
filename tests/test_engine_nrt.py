"""The engine's per-subject code counts no references, and only its entry point is cached on disk
(pkpd/engine/jit.py).

Numba's reference counting (atomic increments and decrements on every array argument and
row view) was a quarter of W1's exact-path time; every engine function below
run_population is compiled without Numba's runtime. These checks read the dispatchers'
options only: nothing is compiled."""

import numba
import pytest

from pkpd.engine import subject
from pkpd.engine.jit import jit


def _engine_dispatchers():
    found = {}
    from pkpd.engine import calls, doses, dopri, exact, integrate, linalg, power, rodas, steady_state
    for module in (calls, doses, dopri, exact, integrate, linalg, power, rodas, steady_state, subject):
        for name, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.py_func.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_engine_function_but_the_allocating_one_runs_without_reference_counting():
    dispatchers = _engine_dispatchers()
    assert len(dispatchers) > 30
    counting = sorted(name for name, d in dispatchers.items() if d.targetoptions.get("_nrt", True))
    assert counting == ["pkpd.engine.subject.run_population"]
    assert subject.run_population.targetoptions.get("_nrt", True) is True   # it allocates the workspaces


def test_an_allocating_function_is_refused_at_compile_time():
    import numpy as np

    @jit
    def allocates(n):
        return np.zeros(n)

    with pytest.raises(Exception):
        allocates(3)


def test_only_the_entry_point_is_cached_on_disk():
    """A cached caller embeds its callees' code: with every engine function cached by its own file's
    time stamp, an edit of one engine module left callers in unchanged modules running the old code.
    Only run_population is cached, keyed by a digest of every engine module."""
    cached = sorted(name for name, d in _engine_dispatchers().items()
                    if type(d._cache).__name__ != "NullCache")
    assert cached == ["pkpd.engine.subject.run_population"]
    assert "source_key" in subject.run_population.py_func.__code__.co_freevars
