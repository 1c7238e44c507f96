"""The engine's calls into a model (its :class:`~pkpd.engine.interface.ModelKernels`)."""

import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import jit

if numba.config.DISABLE_JIT:   # the engine runs as Python (coverage): model functions take flat arrays
    def data(array):
        return array.reshape(-1)

    def row_data(matrix, row):
        return matrix[row:].reshape(-1)
else:
    @intrinsic
    def row_data(typingctx, matrix, row):
        """The pointer to matrix[row, 0, ...] (C-contiguous: the rows from `row` on, flat), for a
        model function, without making a view."""
        signature = types.CPointer(matrix.dtype)(matrix, row)

        def codegen(context, builder, sig, args):
            array = context.make_array(matrix)(context, builder, args[0])
            zero = context.get_constant(types.intp, 0)
            indices = [args[1]] + [zero] * (matrix.ndim - 1)
            return cgutils.get_item_pointer(context, builder, matrix, array, indices, wraparound=False)

        return signature, codegen

    @intrinsic
    def data(typingctx, array):
        """The pointer to an array's first element, for a model function: no reference counting and
        no ctypes object (``array.ctypes`` costs atomic operations on every call)."""
        signature = types.CPointer(array.dtype)(array)

        def codegen(context, builder, sig, args):
            return context.make_array(array)(context, builder, args[0]).data

        return signature, codegen


@jit
def evaluate_rhs(model, y, e, rate, dydt):
    """dydt = the model's right-hand side at y, plus the dose rates."""
    model.rhs(data(y), data(e), data(dydt))
    for i in range(y.size):
        dydt[i] += rate[i]


@jit(inline="always")
def record_output(model, row, y, e, out_state, out_values):
    """Write state y and the model's outputs at y into row `row` of the results."""
    for i in range(y.size):
        out_state[row, i] = y[i]
    model.outputs(data(y), data(e), row_data(out_values, row))   # a pointer, not a view: no reference counting


@jit
def load_env(model, P, row, e):
    """e = the inputs of parameter row `row`, then the model's derived parameters."""
    for c in range(P.shape[1]):
        e[c] = P[row, c]
    model.derive(data(e))
