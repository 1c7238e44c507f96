"""How a model plugs into the engine: six small compiled functions passed by address.

The engine is compiled once (per installation and Numba version) for arguments of
these function types; each model compiles only its own six functions as C callbacks
(``numba.cfunc``) of exactly these signatures and passes their ctypes function
pointers in a :class:`ModelKernels` tuple. Numba types a ctypes function pointer by
its signature alone (the same type for every model, hence one compiled and
disk-cached engine) and reads the address when the engine is called; the engine
then calls the model through a plain C function pointer (a few nanoseconds).

Every argument is a pointer to float64 (``y``, ``e``, ``dydt``, ``jac``, ``out``,
``mods``) except the compartment index ``cmt`` (int64); ``e`` is the model's
environment: its inputs followed by its derived parameters, and ``jac`` is an
(n_states, n_states) matrix in row-major order.

=========  =============================  ====================================================
derive     ``derive(e)``                  derived parameters from the inputs, in place
rhs        ``rhs(y, e, dydt)``            right-hand side of the ODEs without dose rates
jacobian   ``jacobian(y, e, jac)``        d(rhs)/dy
outputs    ``outputs(y, e, out)``         the model's outputs
dose       ``dose(e, cmt, mods)``         F, ALAG, R, D of compartment cmt into mods
initial    ``initial(e, y)``              initial amounts
=========  =============================  ====================================================
"""

import ctypes
from typing import NamedTuple

import numba
from numba import types
from numba.core import sigutils
from numba.core.ccallback import CFunc

from .._jit import JIT_OPTIONS

_POINTER = types.CPointer(types.float64)
SIGNATURES = {
    "derive": types.void(_POINTER),
    "rhs": types.void(_POINTER, _POINTER, _POINTER),
    "jacobian": types.void(_POINTER, _POINTER, _POINTER),
    "outputs": types.void(_POINTER, _POINTER, _POINTER),
    "dose": types.void(_POINTER, types.int64, _POINTER),
    "initial": types.void(_POINTER, _POINTER),
}
_CFUNC_OPTIONS = {key: value for key, value in JIT_OPTIONS.items() if key not in ("cache", "nogil")}


class ModelKernels(NamedTuple):
    """A model's compiled functions as the engine takes them: ctypes function pointers.

    Callable from Python too, with :func:`pointer` arguments."""
    derive: object
    rhs: object
    jacobian: object
    outputs: object
    dose: object
    initial: object


def compile_model_functions(module, guard=None):
    """The :class:`ModelKernels` of a model's generated module (plain functions ``model_<name>``),
    each compiled as a C callback with Numba's disk cache; `guard(cache)`, if given, is
    called on each function's cache before it is first read (see pkpd._numba_cache).

    Under ``NUMBA_DISABLE_JIT=1`` (the engine's coverage run) the plain Python functions, which
    take flat arrays where the compiled ones take pointers (see :func:`pointer`)."""
    if numba.config.DISABLE_JIT:
        return ModelKernels(**{name: getattr(module, f"model_{name}") for name in SIGNATURES})
    compiled = {}
    for name, signature in SIGNATURES.items():
        function = CFunc(getattr(module, f"model_{name}"), sigutils.normalize_signature(signature), locals={}, options=_CFUNC_OPTIONS)
        function.enable_caching()
        if guard is not None:
            guard(function._cache)
        function.compile()
        compiled[name] = function
    module.COMPILED = compiled   # the compiled code lives as long as the module that holds it
    return ModelKernels(**{name: function.ctypes for name, function in compiled.items()})


def pointer(array):
    """A C-contiguous float64 array as the pointer a model function takes (Python calls)."""
    if array.dtype != "float64" or not array.flags.c_contiguous:
        raise TypeError("model functions take C-contiguous float64 arrays")
    if numba.config.DISABLE_JIT:
        return array.reshape(-1)
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
