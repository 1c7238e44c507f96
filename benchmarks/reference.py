"""A fixed Numba reference kernel for the W1/W2 model: the yardstick of the guard.

The guard (``python -m benchmarks --quick``) divides this kernel's CPU time per subject
by pkpd's, in the same process, rounds interleaved. Both are compiled Numba loops over
the same arithmetic (a 3 x 3 exact propagation per output step), so a busy or slow
machine (another process on the other core, a slower CPU, frequency scaling) slows
both alike, unlike the solve_ivp loop, which is interpreted Python and slowed 4-12x
under load while pkpd slowed 2x (issue 21).

The kernel is deliberately plain and is never to be optimised: a change to it moves
every ratio and needs the floors measured again. Per subject it builds the rate matrix
A of ``models/w1_ketamine_nk.toml`` from the individual parameters, and walks the output
times, split at the infusion starts and ends; for each step of length dt it takes
Phi = exp(A dt) and Gamma = int_0^dt exp(A s) ds (recomputed only when dt changes, as
pkpd's exact path does) from exp([[A dt, I dt], [0, 0]]) by scaling and squaring of a
Taylor series, and advances y <- Phi y + Gamma c.
"""

import math

import numpy as np

from pkpd._jit import jit

N_STATES = 3
PARAMETERS = ("CL", "V1", "Q", "V2", "FM", "CL_NK", "V_NK")
TAYLOR_TERMS = 18
DT_ULPS = 4.0 * 2.220446049250313e-16   # step lengths equal up to the rounding of the times share Phi


@jit
def _expm_taylor(m, out, term, tmp):
    """exp(m) into out by scaling (1-norm <= 0.5), a Taylor series and squaring."""
    size = m.shape[0]
    norm = 0.0
    for j in range(size):
        total = 0.0
        for i in range(size):
            total += abs(m[i, j])
        norm = max(norm, total)
    squarings = max(0, int(math.ceil(math.log2(norm / 0.5)))) if norm > 0.5 else 0
    scale = 1.0 / 2.0 ** squarings
    for i in range(size):
        for j in range(size):
            out[i, j] = 1.0 if i == j else 0.0
            term[i, j] = out[i, j]
    for k in range(1, TAYLOR_TERMS + 1):
        for i in range(size):
            for j in range(size):
                acc = 0.0
                for p in range(size):
                    acc += term[i, p] * m[p, j]
                tmp[i, j] = acc * scale / k
        for i in range(size):
            for j in range(size):
                term[i, j] = tmp[i, j]
                out[i, j] += tmp[i, j]
    for _ in range(squarings):
        for i in range(size):
            for j in range(size):
                acc = 0.0
                for p in range(size):
                    acc += out[i, p] * out[p, j]
                tmp[i, j] = acc
        for i in range(size):
            for j in range(size):
                out[i, j] = tmp[i, j]


@jit
def reference_kernel(parameters, rates, edges, infusing, times, values):
    """Outputs (ng/mL) of every subject of W1/W2 into values.

    Parameters
    ----------
    parameters : ndarray, shape (n_subjects, 7)
        CL (L/h), V1 (L), Q (L/h), V2 (L), FM (1), CL_NK (L/h), V_NK (L) of each subject.
    rates : ndarray, shape (n_subjects,), mg/h
        Each subject's infusion rate into the central compartment.
    edges : ndarray, shape (n_edges,), h
        Times at which the input changes (infusion starts and ends), increasing.
    infusing : ndarray of bool, shape (n_edges,)
        Whether the infusion runs from each edge to the next.
    times : ndarray, shape (n_times,), h
        Output times, increasing; the state is 0 before the first edge or time.
    values : ndarray, shape (n_subjects, n_times, 2)
        KETAMINE and NORKETAMINE (ng/mL), written.
    """
    n = N_STATES
    a = np.zeros((n, n))
    m = np.zeros((2 * n, 2 * n))
    e = np.zeros((2 * n, 2 * n))
    term = np.zeros((2 * n, 2 * n))
    tmp = np.zeros((2 * n, 2 * n))
    y = np.zeros(n)
    new = np.zeros(n)
    c = np.zeros(n)
    for s in range(parameters.shape[0]):
        cl, v1, q, v2, fm, cl_nk, v_nk = parameters[s]
        a[0, 0] = -(cl + q) / v1
        a[0, 1] = q / v2
        a[1, 0] = q / v1
        a[1, 1] = -q / v2
        a[2, 0] = fm * cl / v1
        a[2, 2] = -cl_nk / v_nk
        y[:] = 0.0
        t = min(times[0], edges[0]) if edges.size else times[0]
        edge = 0
        on = False
        last_dt = -1.0
        for k in range(times.size):
            target = times[k]
            while True:
                while edge < edges.size and edges[edge] <= t:
                    on = infusing[edge]
                    edge += 1
                stop = target
                if edge < edges.size and edges[edge] < target:
                    stop = edges[edge]
                dt = stop - t
                if dt > 0.0:
                    if abs(dt - last_dt) > DT_ULPS * (abs(t) + abs(stop)):
                        for i in range(2 * n):
                            for j in range(2 * n):
                                m[i, j] = 0.0
                        for i in range(n):
                            m[i, n + i] = dt
                            for j in range(n):
                                m[i, j] = a[i, j] * dt
                        _expm_taylor(m, e, term, tmp)
                        last_dt = dt
                    c[0] = rates[s] if on else 0.0
                    for i in range(n):
                        acc = 0.0
                        for j in range(n):
                            acc += e[i, j] * y[j] + e[i, n + j] * c[j]
                        new[i] = acc
                    for i in range(n):
                        y[i] = new[i]
                    t = stop
                if stop == target:
                    break
            values[s, k, 0] = 1000.0 * y[0] / v1
            values[s, k, 1] = 1000.0 * y[2] / v_nk


def inputs(workload, result, weights):
    """The kernel's arguments for the subjects of `result` (a pkpd SimulationResult of `workload`).

    Returns
    -------
    parameters, rates, edges, infusing, times, values : ndarrays (see :func:`reference_kernel`)
    """
    from .workloads import infusions

    doses = next(iter(workload.arms.values()))
    parameters = np.ascontiguousarray(result.parameters[list(PARAMETERS)].to_numpy(float))
    schedule = infusions(doses, 1.0)
    if any(rate != schedule[0][2] for _, _, rate in schedule):
        raise ValueError("the reference kernel takes infusions of one rate per kg (W1, W2)")
    edges = sorted({t for start, end, _ in schedule for t in (start, end)})
    infusing = np.array([any(start <= t < end for start, end, _ in schedule) for t in edges])
    rates = np.ascontiguousarray(weights * schedule[0][2], dtype=float)
    times = np.ascontiguousarray(workload.times, dtype=float)
    values = np.empty((parameters.shape[0], times.size, 2))
    return parameters, rates, np.asarray(edges, float), infusing, times, values
