"""The one jit policy of the project (after numba-stats' ``_jit_custom``).

Every kernel is compiled with the on-disk cache, without the GIL, with the
NumPy error model (division by zero gives inf/nan rather than raising, so a
failing subject becomes a status code instead of an exception) and without
fastmath (results must not depend on the instruction set).
"""

import numba

JIT_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)


def jit(function=None, **overrides):
    """``numba.njit`` with the project's options; ``parallel=True`` may be added."""
    options = {**JIT_OPTIONS, **overrides}
    if function is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(function)
