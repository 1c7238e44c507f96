"""Advancing a subject's state between events: the step-size controller, the adaptive
and exact step loops, and output saving.

Between two events (doses, infusion ends, parameter changes) rates and parameters are
constant. :func:`integrate` advances the state across such an interval and writes the
outputs of the observation records met on the way; :func:`advance` does the same with
no outputs (the steady-state search). Both take their steps from the same pieces:

- a step function per method with one contract (the model's own Dormand-Prince step,
  see :mod:`~pkpd.engine.dopri`; :mod:`~pkpd.engine.rodas`; :mod:`~pkpd.engine.exact` steps
  land on the output times);
- :func:`next_step_size`, the controller (scalars only, inlined);
- output saving: :func:`save_at` (a state at the records' times) and, inside :func:`integrate`,
  the loop over the records inside an accepted step, by the method's dense output.
"""

import math

import numpy as np

from .jit import jit
from .calls import data, evaluate_rhs, record_output, row_data
from .constants import (HS_H, METHOD_EXACT, METHOD_RK45, OPT_ATOL, OPT_H_MAX, OPT_MAX_STEPS, OPT_METHOD,
                        OPT_RTOL, STATUS_MAX_STEPS, STATUS_NOT_FINITE, STATUS_OK, STATUS_PROPAGATOR_NOT_FINITE,
                        STATUS_STEP_UNDERFLOW, W_ERR, W_G, W_K, W_NEW, W_TMP, W_Y0)
from .dopri import ORDER as DOPRI_ORDER
from .dopri import dopri_dense, first_same_as_last, initial_step
from .exact import constant_term, exact_step, propagator, same_length
from .linalg import NOT_FINITE_ERROR, all_finite, squared_error_norm
from .power import error_power
from .rodas import ORDER as RODAS_ORDER
from .rodas import rodas_dense, rodas_step

# the first stage of the next Dormand-Prince step: to evaluate, the last stage of the step
# just accepted, or already in place (after a rejected step)


# --- output saving -------------------------------------------------------------------

@jit
def save_at(model, t_limit, strict, y, e, k, k_to, ev_time, ev_out, out_state, out_values):
    """Write y as the output of the observation records k.. at times up to t_limit
    (before t_limit if strict). Returns the index of the first record not written."""
    while k < k_to:
        te = ev_time[k]
        if te > t_limit or (strict and te >= t_limit):
            break
        if ev_out[k] >= 0:
            record_output(model, ev_out[k], y, e, out_state, out_values)
        k += 1
    return k


# --- adaptive steps ------------------------------------------------------------------

@jit(inline="always")
def next_step_size(h, h_try, squared_error, order, accepted, last):
    """The controller: the step to try after a step of length h_try with this squared error norm
    (h: the step proposed before the last step of an interval was cut to fit)."""
    if accepted:
        if squared_error == 0.0:
            factor = 10.0
        else:
            factor = min(10.0, 0.9 * error_power(squared_error, order == DOPRI_ORDER))
        if not last or factor < 1.0:
            return h_try * factor
        return h
    if squared_error >= NOT_FINITE_ERROR:
        factor = 0.1
    else:
        factor = max(0.2, 0.9 * error_power(squared_error, order == DOPRI_ORDER))
    return h_try * factor


@jit(inline="always")
def step_to_try(t, t1, h):
    """(step to try, whether it ends the interval): the last step is stretched or cut to reach t1."""
    if t + h >= t1 or t + 1.01 * h >= t1:
        return t1 - t, True
    return h, False


@jit(inline="always")
def below_resolution(h, t):
    return h < 1e-14 * max(1.0, abs(t))


# --- the interval between two events -----------------------------------------------------

@jit
def integrate(model, t0, t1, y, rate, e, hstate, opts, work, mats, k, k_to, strict,
              ev_time, ev_out, out_state, out_values):
    """Advance y from t0 to t1 under constant rates and parameters, writing
    the outputs of observation records k..k_to-1 met on the way (at t1 only if not strict).

    Returns (status, index of the first record not written).

    The loop takes steps with the method's step function, accepts or rejects them with
    :func:`next_step_size`, and after each accepted step saves the outputs inside it from the
    method's dense output. It is written out in one body, with the row views made once:
    helpers taking arrays, called at every step, cost reference counting (atomic operations)
    that doubled the time of a step."""
    method = int(opts[OPT_METHOD])
    if method == METHOD_EXACT:
        return exact_integrate(model, t0, t1, y, rate, e, hstate, work, mats, k, k_to, strict,
                               ev_time, ev_out, out_state, out_values)
    k = save_at(model, t0, strict and t0 >= t1, y, e, k, k_to, ev_time, ev_out, out_state, out_values)
    if t1 <= t0:
        return STATUS_OK, k
    rtol = opts[OPT_RTOL]
    atol = opts[OPT_ATOL]
    max_steps = int(opts[OPT_MAX_STEPS])
    h_max = opts[OPT_H_MAX]
    order = DOPRI_ORDER if method == METHOD_RK45 else RODAS_ORDER
    start, dense, new, err = work[W_Y0], work[W_TMP], work[W_NEW], work[W_ERR]
    h = hstate[HS_H]
    need_first_stage = True
    if h <= 0.0:
        h = initial_step(model, t0, t1, y, rate, e, rtol, atol, work)   # leaves f(t0, y) in work[W_K]
        if not (all_finite(work[W_K]) and math.isfinite(h)):   # derivatives at t0 not finite (e.g. V = 0)
            return STATUS_NOT_FINITE, k
        if h <= 0.0:   # the estimate underflowed (derivatives near overflow): the controller finds the step
            h = 1e-6 * (t1 - t0)
        need_first_stage = False
    t = t0
    steps = 0
    while t < t1:
        if steps >= max_steps:
            return STATUS_MAX_STEPS, k
        h = min(h, h_max)
        h_try, last = step_to_try(t, t1, h)
        if below_resolution(h_try, t):   # the rest of the interval is below time resolution: reached
            return STATUS_OK, save_at(model, t1, strict, y, e, k, k_to, ev_time, ev_out, out_state, out_values)
        if method == METHOD_RK45:
            if need_first_stage:
                evaluate_rhs(model, y, e, rate, work[W_K])
            model.dopri(data(y), data(e), data(rate), h_try, data(opts), data(work))
            error = work[W_ERR, 0]   # the model's step computes its squared error norm
        else:
            rodas_step(model, h_try, y, rate, e, work, mats)
            error = squared_error_norm(err, y, new, rtol, atol)
        steps += 1
        h = next_step_size(h, h_try, error, order, error <= 1.0, last)
        need_first_stage = False   # after a rejected step the first stage is unchanged
        if error <= 1.0:
            for i in range(y.size):
                start[i] = y[i]
                y[i] = new[i]
            t_new = t1 if last else t + h_try
            # the outputs inside the step, from its dense output
            while k < k_to:
                te = ev_time[k]
                if te > t_new or (strict and te >= t_new):
                    break
                if method == METHOD_RK45:
                    dopri_dense((te - t) / h_try, h_try, work)
                else:
                    rodas_dense((te - t) / h_try, work)
                if ev_out[k] >= 0:
                    record_output(model, ev_out[k], dense, e, out_state, out_values)
                k += 1
            t = t_new
            if method == METHOD_RK45:
                first_same_as_last(work)
        elif below_resolution(h, t):
            return STATUS_STEP_UNDERFLOW, k
    hstate[HS_H] = h
    if not all_finite(y):
        return STATUS_NOT_FINITE, k
    return STATUS_OK, k


@jit(inline="always")
def grid_run(k, k_to, t, t1, strict, last_dt, ev_time, ev_out):
    """(m, time of record k + m - 1): the run of output records k, k+1, ... that the exact path
    steps through with one propagator, each one step of length last_dt (within the rounding of
    record times) after the one before, inside the interval, with consecutive output rows."""
    row = ev_out[k]
    m = 1
    while k + m < k_to:
        tn = ev_time[k + m]
        if tn > t1 or (strict and tn >= t1) or not tn > t or not same_length(t, tn, last_dt) \
                or ev_out[k + m] != row + m:
            break
        t = tn
        m += 1
    return m, t


@jit
def exact_integrate(model, t0, t1, y, rate, e, hstate, work, mats, k, k_to, strict,
                    ev_time, ev_out, out_state, out_values):
    """The exact counterpart of integrate: steps y <- Phi y + Gamma c from output record to output record.

    A run of output records on a regular grid (one propagator) is stepped by the model's own
    ``exact`` function in one call, which writes each record's state and outputs
    (bit-identical to stepping them one by one here, as the other records are)."""
    constant_term(model, rate, e, work)
    new, g = work[W_NEW], work[W_G]
    n = y.size
    last_dt = -1.0
    index = np.int64(0)
    t = t0
    te = t1
    while True:
        done = k >= k_to
        if not done:
            te = ev_time[k]
            done = te > t1 or (strict and te >= t1)
        target = t1 if done else te
        if target > t:
            if not same_length(t, target, last_dt):
                index = propagator(model, t, target, e, hstate, mats, work)
                if index < 0:
                    return STATUS_PROPAGATOR_NOT_FINITE, k
                last_dt = target - t
            if not done and ev_out[k] >= 0:
                m, t = grid_run(k, k_to, target, t1, strict, last_dt, ev_time, ev_out)
                row = ev_out[k]
                model.exact(data(y), data(e), row_data(mats, index), data(g), m, row_data(out_state, row),
                            row_data(out_values, row))
                k += m
                continue
            for i in range(n):   # the exact step (exact.exact_step, written out: it runs once per output)
                acc = g[i]
                for j in range(n):
                    acc += mats[index, i, j] * y[j]
                new[i] = acc
            for i in range(n):
                y[i] = new[i]
            t = target
        if done:
            break
        if ev_out[k] >= 0:
            record_output(model, ev_out[k], y, e, out_state, out_values)
        k += 1
    if not all_finite(y):
        return STATUS_NOT_FINITE, k
    return STATUS_OK, k


@jit
def advance(model, t0, t1, y, rate, e, hstate, opts, work, mats):
    """Advance y from t0 to t1 under constant rates and parameters, saving nothing (the
    steady-state search): the steps of :func:`integrate` without its output loop. Returns the status.

    The step loop is written out again rather than shared through a helper: every form of sharing
    tried (an inlined helper taking arrays, a called one, the start-of-interval block as a function)
    measured slower on the rk45 benchmarks, by reference counting or lost optimisation."""
    method = int(opts[OPT_METHOD])
    if method == METHOD_EXACT:
        if t1 > t0:
            constant_term(model, rate, e, work)
            index = propagator(model, t0, t1, e, hstate, mats, work)
            if index < 0:
                return STATUS_PROPAGATOR_NOT_FINITE
            exact_step(index, y, mats, work)
        return STATUS_NOT_FINITE if not all_finite(y) else STATUS_OK
    if t1 <= t0:
        return STATUS_OK
    rtol = opts[OPT_RTOL]
    atol = opts[OPT_ATOL]
    max_steps = int(opts[OPT_MAX_STEPS])
    h_max = opts[OPT_H_MAX]
    order = DOPRI_ORDER if method == METHOD_RK45 else RODAS_ORDER
    new, err = work[W_NEW], work[W_ERR]
    h = hstate[HS_H]
    need_first_stage = True
    if h <= 0.0:
        h = initial_step(model, t0, t1, y, rate, e, rtol, atol, work)
        if not (all_finite(work[W_K]) and math.isfinite(h)):
            return STATUS_NOT_FINITE
        if h <= 0.0:
            h = 1e-6 * (t1 - t0)
        need_first_stage = False
    t = t0
    steps = 0
    while t < t1:
        if steps >= max_steps:
            return STATUS_MAX_STEPS
        h = min(h, h_max)
        h_try, last = step_to_try(t, t1, h)
        if below_resolution(h_try, t):
            return STATUS_OK
        if method == METHOD_RK45:
            if need_first_stage:
                evaluate_rhs(model, y, e, rate, work[W_K])
            model.dopri(data(y), data(e), data(rate), h_try, data(opts), data(work))
            error = work[W_ERR, 0]   # the model's step computes its squared error norm
        else:
            rodas_step(model, h_try, y, rate, e, work, mats)
            error = squared_error_norm(err, y, new, rtol, atol)
        steps += 1
        h = next_step_size(h, h_try, error, order, error <= 1.0, last)
        need_first_stage = False
        if error <= 1.0:
            for i in range(y.size):
                y[i] = new[i]
            t = t1 if last else t + h_try
            if method == METHOD_RK45:
                first_same_as_last(work)
        elif below_resolution(h, t):
            return STATUS_STEP_UNDERFLOW
    hstate[HS_H] = h
    if not all_finite(y):
        return STATUS_NOT_FINITE
    return STATUS_OK
