"""The simulation engine: ordinary Numba modules, compiled once per installation and Numba version.

A model plugs in through eight small compiled functions (:mod:`.interface`); the engine
takes their addresses as arguments, so its compiled code, cached on disk by Numba,
serves every model.

Modules, from the bottom up: :mod:`.constants` (shared with the Python side),
:mod:`.linalg`, :mod:`.calls` (into the model), the step functions :mod:`.dopri`,
:mod:`.rodas` and :mod:`.exact`, :mod:`.integrate` (controller, step loops, output
saving), :mod:`.doses` (NONMEM dose rules, event queue), :mod:`.steady_state` and
:mod:`.subject` (one subject's events; the loop over a chunk of subjects, which
:func:`pkpd._engine.run_stream` runs on a thread pool).
"""

import os

from .._numba_cache import guard_dispatchers
from .interface import SIGNATURES, ModelKernels, compile_model_functions, pointer
from .subject import run_population

__all__ = ["SIGNATURES", "ModelKernels", "compile_model_functions", "pointer", "run_population", "is_cached"]


def _dispatchers():
    from . import calls, doses, dopri, exact, integrate, linalg, power, rodas, steady_state, subject

    for module in (calls, doses, dopri, exact, integrate, linalg, power, rodas, steady_state, subject):
        yield from vars(module).values()


def _rebuild(cache):
    import sys

    print("pkpd: cache entry for the engine was corrupt; rebuilding", file=sys.stderr)
    cache.flush()


def is_cached():
    """Whether Numba's disk cache holds the compiled engine (no compilation on first use)."""
    if not hasattr(run_population, "_cache"):   # NUMBA_DISABLE_JIT=1: nothing is compiled
        return True
    return os.path.exists(run_population._cache._cache_file._index_path)


guard_dispatchers({id(value): value for value in _dispatchers()}.values(), _rebuild)
