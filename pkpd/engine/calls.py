"""The engine's calls into a model (its :class:`~pkpd.engine.interface.ModelKernels`)."""

from .._jit import jit


@jit
def evaluate_rhs(model, y, e, rate, dydt):
    """dydt = the model's right-hand side at y, plus the dose rates."""
    model.rhs(y.ctypes, e.ctypes, dydt.ctypes)
    for i in range(y.size):
        dydt[i] += rate[i]


@jit
def record_output(model, row, y, e, out_state, out_values):
    """Write state y and the model's outputs at y into row `row` of the results."""
    for i in range(y.size):
        out_state[row, i] = y[i]
    model.outputs(y.ctypes, e.ctypes, out_values[row].ctypes)


@jit
def load_env(model, P, row, e):
    """e = the inputs of parameter row `row`, then the model's derived parameters."""
    for c in range(P.shape[1]):
        e[c] = P[row, c]
    model.derive(e.ctypes)
