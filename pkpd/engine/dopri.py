"""Dormand-Prince 5(4) with the quartic dense output of Shampine (1986), as in scipy.integrate.RK45.

Step contract (shared with :mod:`pkpd.engine.rodas`): from y over h, the new state in
``work[W_NEW]``, the local error estimate in ``work[W_ERR]`` and the dense-output
coefficients in the stage rows ``work[W_K:W_K + 7]``; :func:`dopri_dense` then gives the
state at any fraction of the step from ``work[W_Y0]`` (the step's start).

The step itself is each model's ``dopri`` function (:mod:`pkpd.engine.interface`), generated
by ``pkpd.model.codegen`` from this module's :data:`TABLEAU` and :data:`E` with the model's
right-hand side in place; this module keeps the tableau, the first step size and the dense
output, which do not call the model at every stage.
"""

import math

import numpy as np

from .jit import jit
from .calls import evaluate_rhs
from .constants import W_K, W_TMP, W_Y0

ORDER = 5.0   # the controller's exponent is 1/ORDER: local error of the embedded pair

# (the right-hand side does not depend on time: the nodes c_i are not needed)
A21 = 1.0 / 5.0
A31 = 3.0 / 40.0
A32 = 9.0 / 40.0
A41 = 44.0 / 45.0
A42 = -56.0 / 15.0
A43 = 32.0 / 9.0
A51 = 19372.0 / 6561.0
A52 = -25360.0 / 2187.0
A53 = 64448.0 / 6561.0
A54 = -212.0 / 729.0
A61 = 9017.0 / 3168.0
A62 = -355.0 / 33.0
A63 = 46732.0 / 5247.0
A64 = 49.0 / 176.0
A65 = -5103.0 / 18656.0
B1 = 35.0 / 384.0
B3 = 500.0 / 1113.0
B4 = 125.0 / 192.0
B5 = -2187.0 / 6784.0
B6 = 11.0 / 84.0
# the tableau as one matrix, row s the weights of stages 0..s-1 in stage s (row 6: the new state,
# whose derivative is stage 6, the next step's first); written into each model's step function
# (pkpd.model.codegen._dopri_source)
TABLEAU = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [A21, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [A31, A32, 0.0, 0.0, 0.0, 0.0, 0.0],
    [A41, A42, A43, 0.0, 0.0, 0.0, 0.0],
    [A51, A52, A53, A54, 0.0, 0.0, 0.0],
    [A61, A62, A63, A64, A65, 0.0, 0.0],
    [B1, 0.0, B3, B4, B5, B6, 0.0]])
E = np.array([-71.0 / 57600.0, 0.0, 71.0 / 16695.0, -71.0 / 1920.0,
              17253.0 / 339200.0, -22.0 / 525.0, 1.0 / 40.0])
P = np.array([
    [1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0, -12715105075.0 / 11282082432.0],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0, 87487479700.0 / 32700410799.0],
    [0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0, -10690763975.0 / 1880347072.0],
    [0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0, 701980252875.0 / 199316789632.0],
    [0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0, -1453857185.0 / 822651844.0],
    [0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0]])


@jit
def initial_step(model, t0, t1, y, rate, e, rtol, atol, work):
    """First step size: Hairer, Norsett & Wanner (1993), II.4, as in scipy's select_initial_step.

    Leaves f(t0, y) in work[W_K] (the first stage of the first step)."""
    n = y.size
    f0 = work[W_K]
    evaluate_rhs(model, y, e, rate, f0)
    d0 = 0.0
    d1 = 0.0
    for i in range(n):
        scale = atol + rtol * abs(y[i])
        d0 += (y[i] / scale) ** 2
        d1 += (f0[i] / scale) ** 2
    d0 = math.sqrt(d0 / n)
    d1 = math.sqrt(d1 / n)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / d1
    h0 = min(h0, t1 - t0)
    y1 = work[W_TMP]
    for i in range(n):
        y1[i] = y[i] + h0 * f0[i]
    f1 = work[W_K + 1]
    evaluate_rhs(model, y1, e, rate, f1)
    d2 = 0.0
    for i in range(n):
        scale = atol + rtol * abs(y[i])
        d2 += ((f1[i] - f0[i]) / scale) ** 2
    d2 = math.sqrt(d2 / n) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / 5.0)
    return min(100.0 * h0, h1)


@jit(inline="always")
def dopri_dense(x, h, work):
    """State at fraction x of the step of length h just taken from work[W_Y0], into work[W_TMP]:
    y = y0 + h * K^T P [x, x^2, x^3, x^4].

    The seven weights first, then one pass over the states with the sum over stages in a
    register (in the order of the stages, from 0.0, as a row accumulated stage by stage would
    give: the same bits)."""
    q0 = x * (P[0, 0] + x * (P[0, 1] + x * (P[0, 2] + x * P[0, 3])))
    q1 = x * (P[1, 0] + x * (P[1, 1] + x * (P[1, 2] + x * P[1, 3])))
    q2 = x * (P[2, 0] + x * (P[2, 1] + x * (P[2, 2] + x * P[2, 3])))
    q3 = x * (P[3, 0] + x * (P[3, 1] + x * (P[3, 2] + x * P[3, 3])))
    q4 = x * (P[4, 0] + x * (P[4, 1] + x * (P[4, 2] + x * P[4, 3])))
    q5 = x * (P[5, 0] + x * (P[5, 1] + x * (P[5, 2] + x * P[5, 3])))
    q6 = x * (P[6, 0] + x * (P[6, 1] + x * (P[6, 2] + x * P[6, 3])))
    for i in range(work.shape[1]):
        total = 0.0
        total += work[W_K, i] * q0
        total += work[W_K + 1, i] * q1
        total += work[W_K + 2, i] * q2
        total += work[W_K + 3, i] * q3
        total += work[W_K + 4, i] * q4
        total += work[W_K + 5, i] * q5
        total += work[W_K + 6, i] * q6
        work[W_TMP, i] = work[W_Y0, i] + h * total


@jit(inline="always")
def first_same_as_last(work):
    """After an accepted step, its last stage is the next step's first."""
    for i in range(work.shape[1]):
        work[W_K, i] = work[W_K + 6, i]
