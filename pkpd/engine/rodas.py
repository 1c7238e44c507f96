"""RODAS4: the L-stable, stiffly accurate Rosenbrock 4(3) pair of Hairer & Wanner
(Solving ODEs II, 2nd ed., 1996, VI.4; their code rodas.f), with its third-order dense output.

Stages: (I/(h gamma) - J) k_i = f(y + sum_j a_ij k_j) + sum_j (c_ij/h) k_j;
y1 = y + a5 . k + k5 + k6; the last stage k6 is the local error estimate.

Step contract as :mod:`pkpd.engine.dopri`: the new state in ``work[W_NEW]``, the error
estimate in ``work[W_ERR]``, the two dense-output vectors in ``work[W_K + 6]`` and
``work[W_K + 5]``, read by :func:`rodas_dense`.
"""

import numpy as np

from .jit import jit
from .calls import data, evaluate_rhs
from .constants import MATS_JAC, MATS_W, W_ERR, W_K, W_NEW, W_PIVOT, W_TMP, W_Y0
from .linalg import lu_factor, lu_solve

ORDER = 4.0

GAMMA = 0.25
A21 = 1.544
A31 = 0.9466785280815826
A32 = 0.2557011698983284
A41 = 3.314825187068521
A42 = 2.896124015972201
A43 = 0.9986419139977817
A51 = 1.221224509226641
A52 = 6.019134481288629
A53 = 12.53708332932087
A54 = -0.6878860361058950
C = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [-5.6688, 0.0, 0.0, 0.0, 0.0],
    [-2.430093356833875, -0.2063599157091915, 0.0, 0.0, 0.0],
    [-0.1073529058151375, -9.594562251023355, -20.47028614809616, 0.0, 0.0],
    [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160, 0.0],
    [8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054]])
STAGE = np.arange(6)   # stage numbers as typed values: one compiled version of rodas_stage
H = np.array([
    [10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823, 1.025137723295662],
    [-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386, -6.594389125716872]])


@jit
def rodas_stage(model, s, h, tmp, e, rate, work, wmat, pivot):
    """Stage s of RODAS4 (0-based) from the stage state in tmp: k_s into work[W_K + s]."""
    n = tmp.size
    ks = work[W_K + s]
    evaluate_rhs(model, tmp, e, rate, ks)
    for j in range(s):
        c = C[s, j] / h
        for i in range(n):
            ks[i] += c * work[W_K + j, i]
    lu_solve(wmat, pivot, ks)


@jit
def rodas_step(model, h, y, rate, e, work, mats):
    """One RODAS4 step from y over h."""
    n = y.size
    jac = mats[MATS_JAC]
    wmat = mats[MATS_W]
    model.jacobian(data(y), data(e), data(jac))
    inv = 1.0 / (h * GAMMA)
    for i in range(n):
        for j in range(n):
            wmat[i, j] = (inv if i == j else 0.0) - jac[i, j]
    pivot = work[W_PIVOT]
    lu_factor(wmat, pivot)
    tmp = work[W_TMP]
    k1 = work[W_K]
    k2 = work[W_K + 1]
    k3 = work[W_K + 2]
    k4 = work[W_K + 3]
    k5 = work[W_K + 4]
    k6 = work[W_K + 5]
    rodas_stage(model, STAGE[0], h, y, e, rate, work, wmat, pivot)
    for i in range(n):
        tmp[i] = y[i] + A21 * k1[i]
    rodas_stage(model, STAGE[1], h, tmp, e, rate, work, wmat, pivot)
    for i in range(n):
        tmp[i] = y[i] + A31 * k1[i] + A32 * k2[i]
    rodas_stage(model, STAGE[2], h, tmp, e, rate, work, wmat, pivot)
    for i in range(n):
        tmp[i] = y[i] + A41 * k1[i] + A42 * k2[i] + A43 * k3[i]
    rodas_stage(model, STAGE[3], h, tmp, e, rate, work, wmat, pivot)
    for i in range(n):
        tmp[i] = y[i] + A51 * k1[i] + A52 * k2[i] + A53 * k3[i] + A54 * k4[i]
    rodas_stage(model, STAGE[4], h, tmp, e, rate, work, wmat, pivot)
    for i in range(n):
        tmp[i] += k5[i]
    rodas_stage(model, STAGE[5], h, tmp, e, rate, work, wmat, pivot)
    new = work[W_NEW]
    err = work[W_ERR]
    d1 = work[W_K + 6]
    for i in range(n):
        new[i] = tmp[i] + k6[i]
        err[i] = k6[i]
        d1[i] = (H[0, 0] * k1[i] + H[0, 1] * k2[i] + H[0, 2] * k3[i] + H[0, 3] * k4[i]
                 + H[0, 4] * k5[i])
        k6[i] = (H[1, 0] * k1[i] + H[1, 1] * k2[i] + H[1, 2] * k3[i] + H[1, 3] * k4[i]
                 + H[1, 4] * k5[i])   # the second dense-output vector, in k6's row


@jit
def rodas_dense(x, work):
    """State at fraction x of the step just taken, into work[W_TMP]:
    y0 (1 - x) + x (y1 + (1 - x) (d1 + x d2)), with y0 in W_Y0 and y1 still in W_NEW."""
    for i in range(work.shape[1]):
        work[W_TMP, i] = (work[W_Y0, i] * (1.0 - x)
                          + x * (work[W_NEW, i] + (1.0 - x) * (work[W_K + 6, i] + x * work[W_K + 5, i])))
