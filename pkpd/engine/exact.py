"""Exact propagation for models linear in their amounts.

dy/dt = A y + c, with c = model constant + rates, constant between records:
  y(t + dt) = Phi y(t) + Gamma c,  Phi = exp(A dt),  Gamma = int_0^dt exp(A s) ds,
both read off exp(M), M = [[A dt, I dt], [0, 0]]. Phi and Gamma depend only on the
parameters and dt, so they are cached: a subject observed on a regular grid
computes one matrix exponential and then only matrix-vector products.
The cache lives in mats[MATS_CACHE + 2 * slot] (Phi) and [... + 1] (Gamma);
its keys (dt, parameters) in hstate[HS_CACHE + slot * (n_env + 2) + ...].
Step lengths that differ only by the rounding of the record times (a grid made
by np.arange(0, 48, 0.1) has ten distinct differences) share one entry: DT_ULPS
units in the last place of the record times, an error far below any tolerance.
"""

import math

import numpy as np

from .jit import jit
from .calls import data, evaluate_rhs
from .constants import CACHE_SLOTS, HS_CACHE, HS_NEXT, MATS_CACHE, MATS_JAC, MATS_PADE, W_C, W_G, W_NEW, W_TMP
from .linalg import lu_factor_n, lu_solve_n, matmul_n

DT_ULPS = 4.0 * 2.220446049250313e-16

# Higham (2005), Table 2.3 and eq. (2.2): Pade degrees, largest 1-norms for
# double precision, and the coefficients b_0..b_m of each approximant.
PADE_DEGREE = (3, 5, 7, 9, 13)
PADE_THETA = (1.495585217958292e-2, 2.539398330063230e-1, 9.504178996162932e-1,
              2.097847961257068, 5.371920351148152)
PADE_B = np.array([
    [120.0, 60.0, 12.0, 1.0] + [0.0] * 10,
    [30240.0, 15120.0, 3360.0, 420.0, 30.0, 1.0] + [0.0] * 8,
    [17297280.0, 8648640.0, 1995840.0, 277200.0, 25200.0, 1512.0, 56.0, 1.0] + [0.0] * 6,
    [17643225600.0, 8821612800.0, 2075673600.0, 302702400.0, 30270240.0, 2162160.0, 110880.0,
     3960.0, 90.0, 1.0] + [0.0] * 4,
    [64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
     129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
     40840800.0, 960960.0, 16380.0, 182.0, 1.0]])


@jit(inline="always")
def hstate_size(n_env):
    """Length of the step-size state for a model with n_env environment values."""
    return HS_CACHE + CACHE_SLOTS * (n_env + 2)


@jit
def phi_gamma(a_mat, dt, mats, phi, gamma):
    """Phi = exp(A dt) and Gamma = int_0^dt exp(A s) ds into phi and gamma (see :func:`phi_gamma_n`).

    For 3 states the state count is a constant of the compiled code, so its loops unroll. The
    arithmetic is the same either way: the same bits."""
    n = a_mat.shape[0]
    if n == 3:
        return phi_gamma_n(3, a_mat, dt, mats, phi, gamma)
    return phi_gamma_n(n, a_mat, dt, mats, phi, gamma)


@jit(inline="always")
def phi_gamma_n(n, a_mat, dt, mats, phi, gamma):
    """Phi = exp(A dt) and Gamma = int_0^dt exp(A s) ds into phi and gamma, A n x n.

    Scaling and squaring with the Pade approximant of the degree that Higham
    (2005) picks for the 1-norm of M = [[A dt, I dt], [0, 0]], computed on n x n
    blocks without allocating: with B = A dt / 2^s, M^k = [[B^k, dt/2^s B^(k-1)], [0, 0]],
    so with the approximant's odd part U = B O and even part V (polynomials in B^2),
    exp(M) ~ [[(V - U)^-1 (V + U), 2 dt/2^s (V - U)^-1 O], [0, I]], and a squaring
    maps (Phi, Gamma) to (Phi Phi, Phi Gamma + Gamma).

    Returns False, leaving phi and gamma unspecified, when A dt or the result is not
    finite (a zero or infinite parameter, or a step too long for double precision)."""
    norm = dt
    for j in range(n):
        total = 0.0
        for i in range(n):
            total += abs(a_mat[i, j])
        norm = max(norm, total * dt)
    if not math.isfinite(norm):   # (a NaN that max() drops shows in the result, checked below)
        return False
    degree = 4
    for d in range(4):
        if norm <= PADE_THETA[d]:
            degree = d
            break
    squarings = 0
    if norm > PADE_THETA[4]:
        squarings = int(math.ceil(math.log2(norm / PADE_THETA[4])))
    scale = dt / 2.0 ** squarings
    coef = PADE_B[degree]
    b_mat = mats[MATS_PADE]
    odd = mats[MATS_PADE + 1]
    even = mats[MATS_PADE + 2]
    tmp = mats[MATS_PADE + 3]
    powers = mats[MATS_PADE + 4:MATS_PADE + 9]     # I, B^2, B^4, B^6, B^8
    for i in range(n):
        for j in range(n):
            b_mat[i, j] = a_mat[i, j] * scale
            powers[0, i, j] = 1.0 if i == j else 0.0
    top = 3 if degree == 4 else degree + 1         # highest power of B^2 needed
    matmul_n(n, b_mat, b_mat, powers[1])
    for p in range(2, top + 1):
        matmul_n(n, powers[p - 1], powers[1], powers[p])
    if degree < 4:
        for i in range(n):
            for j in range(n):
                o = 0.0
                v = 0.0
                for p in range(top + 1):
                    o += coef[2 * p + 1] * powers[p, i, j]
                    v += coef[2 * p] * powers[p, i, j]
                odd[i, j] = o
                even[i, j] = v
    else:
        # degree 13 (Higham's eq. 2.4): B^6 times a polynomial in B^2 of degree 3
        for i in range(n):
            for j in range(n):
                tmp[i, j] = coef[13] * powers[3, i, j] + coef[11] * powers[2, i, j] + coef[9] * powers[1, i, j]
        matmul_n(n, powers[3], tmp, odd)
        for i in range(n):
            for j in range(n):
                tmp[i, j] = coef[12] * powers[3, i, j] + coef[10] * powers[2, i, j] + coef[8] * powers[1, i, j]
        matmul_n(n, powers[3], tmp, even)
        for i in range(n):
            for j in range(n):
                odd[i, j] += (coef[7] * powers[3, i, j] + coef[5] * powers[2, i, j] + coef[3] * powers[1, i, j]
                              + coef[1] * powers[0, i, j])
                even[i, j] += (coef[6] * powers[3, i, j] + coef[4] * powers[2, i, j] + coef[2] * powers[1, i, j]
                               + coef[0] * powers[0, i, j])
    matmul_n(n, b_mat, odd, tmp)                   # U
    lu = powers[1]
    for i in range(n):
        for j in range(n):
            lu[i, j] = even[i, j] - tmp[i, j]
            phi[i, j] = even[i, j] + tmp[i, j]
            gamma[i, j] = 2.0 * scale * odd[i, j]
    pivot = powers[2][0]
    column = powers[3][0]
    lu_factor_n(n, lu, pivot)
    for x in (phi, gamma):
        for j in range(n):
            for i in range(n):
                column[i] = x[i, j]
            lu_solve_n(n, lu, pivot, column)
            for i in range(n):
                x[i, j] = column[i]
    for _ in range(squarings):
        matmul_n(n, phi, gamma, tmp)
        for i in range(n):
            for j in range(n):
                gamma[i, j] += tmp[i, j]
        matmul_n(n, phi, phi, tmp)
        for i in range(n):
            for j in range(n):
                phi[i, j] = tmp[i, j]
    for i in range(n):
        for j in range(n):
            if not (math.isfinite(phi[i, j]) and math.isfinite(gamma[i, j])):
                return False
    return True


@jit
def invalidate_cache(hstate, n_env):
    for slot in range(CACHE_SLOTS):
        hstate[HS_CACHE + slot * (n_env + 2)] = 0.0


@jit
def transition(model, e, dt, tolerance, hstate, mats, work):
    """Index into mats of (Phi, Gamma) for parameters e and step dt (within
    tolerance), computed if not cached; -1 if they are not finite."""
    n_env = e.size
    width = n_env + 2                 # valid flag, dt, parameters
    for slot in range(CACHE_SLOTS):
        base = HS_CACHE + slot * width
        if hstate[base] != 1.0 or abs(hstate[base + 1] - dt) > tolerance:
            continue
        same = True
        for c in range(n_env):
            if hstate[base + 2 + c] != e[c]:
                same = False
                break
        if same:
            return MATS_CACHE + 2 * slot
    slot = int(hstate[HS_NEXT]) % CACHE_SLOTS
    hstate[HS_NEXT] = slot + 1
    base = HS_CACHE + slot * width
    a_mat = mats[MATS_JAC]
    zero = work[W_TMP]
    for i in range(zero.size):
        zero[i] = 0.0
    model.jacobian(data(zero), data(e), data(a_mat))
    index = MATS_CACHE + 2 * slot
    hstate[base] = 0.0
    if not phi_gamma(a_mat, dt, mats, mats[index], mats[index + 1]):
        return -1
    hstate[base] = 1.0
    hstate[base + 1] = dt
    for c in range(n_env):
        hstate[base + 2 + c] = e[c]
    return index


@jit
def constant_term(model, rate, e, work):
    """c = f(0) + rate, the constant of dy/dt = A y + c, into work[W_C]."""
    c_vec = work[W_C]
    zero = work[W_TMP]
    for i in range(zero.size):
        zero[i] = 0.0
    evaluate_rhs(model, zero, e, rate, c_vec)


@jit
def propagator(model, t, target, e, hstate, mats, work):
    """Index into mats of the propagator (Phi, Gamma) over [t, target], with Gamma c (c in
    work[W_C]) into work[W_G]; -1 when it is not finite. Called when the step length changes."""
    n = work.shape[1]
    dt = target - t
    index = transition(model, e, dt, DT_ULPS * (abs(t) + abs(target)), hstate, mats, work)
    if index >= 0:
        g = work[W_G]
        c_vec = work[W_C]
        for i in range(n):
            acc = 0.0
            for j in range(n):
                acc += mats[index + 1, i, j] * c_vec[j]
            g[i] = acc
    return index


@jit(inline="always")
def same_length(t, target, last_dt):
    """Whether the step [t, target] has the length of the last one, within the rounding of record times."""
    return abs((target - t) - last_dt) <= DT_ULPS * (abs(t) + abs(target))


@jit
def exact_step(index, y, mats, work):
    """y <- Phi y + Gamma c with the propagator `index` (see :func:`propagator`): the exact method's
    step (no error estimate, no dense output: its steps end at the output times)."""
    n = y.size
    new = work[W_NEW]
    for i in range(n):
        acc = work[W_G, i]
        for j in range(n):
            acc += mats[index, i, j] * y[j]
        new[i] = acc
    for i in range(n):
        y[i] = new[i]
