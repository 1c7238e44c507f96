"""Independent reference solutions: scipy.linalg.expm and scipy.integrate.solve_ivp.

Nothing here uses pkpd's engine. Doses are given explicitly as a list of
(time, compartment index, amount, duration) with duration 0 for a bolus.
"""

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm


def _breakpoints(doses, times):
    """Output times, dose times and infusion ends, sorted."""
    breaks = set(times)
    for t, _, _, d in doses:
        breaks.add(t)
        if d > 0:
            breaks.add(t + d)
    return sorted(breaks)


def linear_solution(matrix, doses, times):
    """Amounts at `times` for dy/dt = matrix @ y + infusions, by expm between breakpoints.

    Parameters
    ----------
    matrix : ndarray (n, n)
    doses : list of (time, cmt, amount, duration)
    times : sorted ndarray of output times; a bolus at an output time is included (post-dose).
    """
    n = matrix.shape[0]
    breaks = _breakpoints(doses, times)
    y = np.zeros(n)
    t_prev = breaks[0]
    out = {}

    def rates(t):  # infusion rates active on (t, next)
        r = np.zeros(n)
        for t0, cmt, amount, d in doses:
            if d > 0 and t0 <= t < t0 + d:
                r[cmt] += amount / d
        return r

    for t in breaks:
        if t > t_prev:
            dt = t - t_prev
            aug = np.zeros((n + 1, n + 1))
            aug[:n, :n] = matrix * dt
            aug[:n, n] = rates(t_prev) * dt
            y = (expm(aug) @ np.append(y, 1.0))[:n]
        for t0, cmt, amount, d in doses:
            if d == 0 and t0 == t:
                y[cmt] += amount
        out[t] = y.copy()
        t_prev = t
    return np.array([out[t] for t in times])


def ode_solution(rhs, n, doses, times, rtol=1e-10, atol=1e-12, method="LSODA"):
    """Amounts at `times` for dy/dt = rhs(y) + infusions, by solve_ivp piecewise between breakpoints."""
    breaks = _breakpoints(doses, times)
    y = np.zeros(n)
    out = {}
    t_prev = breaks[0]
    for t in breaks:
        if t > t_prev:
            r = np.zeros(n)
            for t0, cmt, amount, d in doses:
                if d > 0 and t0 <= t_prev < t0 + d:
                    r[cmt] += amount / d
            solution = solve_ivp(lambda _t, yy: rhs(yy) + r, (t_prev, t), y, method=method,
                                 rtol=rtol, atol=atol)
            y = solution.y[:, -1].copy()
        for t0, cmt, amount, d in doses:
            if d == 0 and t0 == t:
                y[cmt] += amount
        out[t] = y.copy()
        t_prev = t
    return np.array([out[t] for t in times])


def records(doses, times, cmt_numbers, obs_cmt=2):
    """A NONMEM data frame for explicit doses (time, state index, amount, duration) and observations."""
    import pandas as pd

    rows = []
    for t, cmt, amount, d in doses:
        rows.append(dict(ID=1, TIME=t, EVID=1, AMT=amount, CMT=cmt_numbers[cmt], RATE=amount / d if d > 0 else 0))
    for t in times:
        rows.append(dict(ID=1, TIME=t, EVID=0, AMT=0, CMT=obs_cmt, RATE=0))
    frame = pd.DataFrame(rows)
    order = np.lexsort((frame["EVID"].to_numpy() != 1, frame["TIME"].to_numpy()))  # doses first at ties
    return frame.iloc[order].reset_index(drop=True)
