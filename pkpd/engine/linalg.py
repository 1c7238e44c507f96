"""Small dense linear algebra without allocation, for matrices of a few states."""

import math

from .jit import jit


@jit
def lu_factor(a, pivot):
    """LU factorisation of a in place, with partial pivoting; row interchanges in pivot.

    Allocation-free replacement of np.linalg.solve for the small matrices of the
    engine; a singular matrix gives inf or nan (the callers' finiteness checks
    turn that into a status) instead of an exception inside a parallel kernel."""
    lu_factor_n(a.shape[0], a, pivot)


@jit(inline="always")
def lu_factor_n(n, a, pivot):
    """:func:`lu_factor` of an n x n matrix, inlined: with n a constant the loops unroll (see
    :func:`pkpd.engine.exact.phi_gamma`)."""
    for c in range(n):
        p = c
        for r in range(c + 1, n):
            if abs(a[r, c]) > abs(a[p, c]):
                p = r
        pivot[c] = p
        if p != c:
            for j in range(n):
                a[c, j], a[p, j] = a[p, j], a[c, j]
        for r in range(c + 1, n):
            f = a[r, c] / a[c, c]
            a[r, c] = f
            if f != 0.0:
                for j in range(c + 1, n):
                    a[r, j] -= f * a[c, j]


@jit
def lu_solve(a, pivot, x):
    """Overwrite the vector x with a^-1 x, from lu_factor's a and pivot."""
    lu_solve_n(a.shape[0], a, pivot, x)


@jit(inline="always")
def lu_solve_n(n, a, pivot, x):
    """:func:`lu_solve` of an n x n system, inlined (see :func:`lu_factor_n`)."""
    for c in range(n):
        p = int(pivot[c])
        if p != c:
            x[c], x[p] = x[p], x[c]
    for c in range(n):
        acc = x[c]
        for m in range(c):
            acc -= a[c, m] * x[m]
        x[c] = acc
    for c in range(n - 1, -1, -1):
        acc = x[c]
        for m in range(c + 1, n):
            acc -= a[c, m] * x[m]
        x[c] = acc / a[c, c]


@jit(inline="always")
def matmul_n(n, a, b, out):
    """out = a b for n x n matrices, inlined (see :func:`lu_factor_n`)."""
    for i in range(n):
        for j in range(n):
            acc = 0.0
            for m in range(n):
                acc += a[i, m] * b[m, j]
            out[i, j] = acc


NOT_FINITE_ERROR = 1e20


@jit(inline="always")
def squared_error_norm(err, y0, y1, rtol, atol):
    """The square of the RMS norm of err scaled by atol + rtol * max(|y0|, |y1|), or NOT_FINITE_ERROR
    when y1 is not finite. Squared: the step controller takes the square root's power directly, and
    the acceptance test (norm <= 1) holds for the square alike, so no square root sits on the
    critical path of every step."""
    total = 0.0
    n = err.size
    for i in range(n):
        if not math.isfinite(y1[i]):
            return NOT_FINITE_ERROR
        scale = atol + rtol * max(abs(y0[i]), abs(y1[i]))
        r = err[i] / scale
        total += r * r
    return total / n


@jit
def all_finite(y):
    for i in range(y.size):
        if not math.isfinite(y[i]):
            return False
    return True
