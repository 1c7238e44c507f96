"""Steady state (NONMEM SS=1 and SS=2): of a periodic dose train by Newton's method on the
period map, and of a constant infusion by Newton's method on f(y) + rate = 0.

Both reuse the interval integrator (:func:`~pkpd.engine.integrate.advance`) with a
step-size state of their own, so a subject's exact-path propagator cache is not touched
(the caller invalidates it anyway: the search used the cache's matrices)."""

import math

from .jit import jit
from .calls import data, evaluate_rhs
from .constants import (MATS_JAC, MATS_SS_JAC, OPT_ATOL, OPT_RTOL, QUEUE_INFUSION_END, STATUS_OK, STATUS_QUEUE_OVERFLOW,
                        STATUS_SINGULAR, STATUS_SS_NOT_CONVERGED, W_PIVOT, W_SS_BASE, W_SS_G, W_SS_P,
                        W_SS_PERTURBED, W_SS_RATE, W_SS_Y)
from .doses import queue_push
from .integrate import advance
from .linalg import all_finite, lu_factor, lu_solve

NEWTON_ITERATIONS = 60


@jit
def clear(hstate):
    """A fresh step-size state: no step chosen, no propagator cached."""
    for i in range(hstate.size):
        hstate[i] = 0.0


@jit
def ss_cycle(model, y, phase_end, cmt, amount, rate_value, duration, interval, e, hstate, opts, work, mats):
    """Advance y (the trough, just before a dose of the periodic train) by
    phase_end time units: the dose, then the train's infusions, of which
    floor(duration/interval)+1 run before phase duration mod interval and
    floor(duration/interval) after."""
    srate = work[W_SS_RATE]
    for i in range(y.size):
        srate[i] = 0.0
    if rate_value == 0.0:
        y[cmt] += amount
        return advance(model, 0.0, phase_end, y, srate, e, hstate, opts, work, mats)
    running = math.floor(duration / interval)
    rest = duration - running * interval
    if rest < 0.0:
        rest = 0.0
    first_end = min(rest, phase_end)
    status = STATUS_OK
    if first_end > 0.0:
        srate[cmt] = (running + 1.0) * rate_value
        status = advance(model, 0.0, first_end, y, srate, e, hstate, opts, work, mats)
    if status == STATUS_OK and phase_end > first_end:
        srate[cmt] = running * rate_value
        status = advance(model, first_end, phase_end, y, srate, e, hstate, opts, work, mats)
    return status


@jit
def converged(delta, y, rtol, atol):
    for i in range(y.size):
        if abs(delta[i]) > atol + rtol * abs(y[i]):
            return False
    return True


@jit
def ss_periodic(model, cmt, amount, rate_value, duration, interval, e, ss_opts, work, mats, hstate, result):
    """Trough of the periodic steady state of a dose train, by Newton's method
    on the period map with a finite-difference Jacobian (one iteration is
    exact for linear models; the second confirms it). hstate: the search's own
    step-size state (cleared here)."""
    n = result.size
    clear(hstate)
    ytr = work[W_SS_Y]
    base = work[W_SS_P]
    g = work[W_SS_G]
    for i in range(n):
        ytr[i] = 0.0
    rtol = ss_opts[OPT_RTOL]
    atol = ss_opts[OPT_ATOL]
    scale = amount if rate_value == 0.0 else rate_value * min(duration, interval)
    scale = max(abs(scale), atol)
    jac = mats[MATS_SS_JAC]
    perturbed = work[W_SS_PERTURBED]
    for iteration in range(NEWTON_ITERATIONS):
        for i in range(n):
            base[i] = ytr[i]
        status = ss_cycle(model, base, interval, cmt, amount, rate_value, duration, interval, e, hstate,
                          ss_opts, work, mats)
        if status != STATUS_OK:
            return status
        for i in range(n):
            g[i] = base[i] - ytr[i]
        for j in range(n):
            step = 1e-3 * max(abs(ytr[j]), scale)
            for i in range(n):
                perturbed[i] = ytr[i]
            perturbed[j] += step
            status = ss_cycle(model, perturbed, interval, cmt, amount, rate_value, duration, interval, e, hstate,
                              ss_opts, work, mats)
            if status != STATUS_OK:
                return status
            for i in range(n):
                jac[i, j] = (perturbed[i] - base[i]) / step - (1.0 if i == j else 0.0)
        delta = perturbed       # reused: the perturbed states are no longer needed
        for i in range(n):
            delta[i] = -g[i]
        lu_factor(jac, work[W_PIVOT])
        lu_solve(jac, work[W_PIVOT], delta)
        if not all_finite(delta):
            return STATUS_SINGULAR
        for i in range(n):
            ytr[i] += delta[i]
        if converged(delta, ytr, rtol, atol):
            for i in range(n):
                result[i] = ytr[i]
            return STATUS_OK
    return STATUS_SS_NOT_CONVERGED


@jit
def ss_constant(model, cmt, rate_value, e, ss_opts, work, mats, result):
    """Steady state of a constant infusion: f(y) + rate = 0 by Newton's method."""
    srate = work[W_SS_RATE]
    for i in range(result.size):
        srate[i] = 0.0
        result[i] = 0.0
    srate[cmt] = rate_value
    jac = mats[MATS_JAC]
    g = work[W_SS_G]
    for iteration in range(NEWTON_ITERATIONS):
        evaluate_rhs(model, result, e, srate, g)
        model.jacobian(data(result), data(e), data(jac))
        for i in range(result.size):
            g[i] = -g[i]
        lu_factor(jac, work[W_PIVOT])
        lu_solve(jac, work[W_PIVOT], g)
        delta = g
        if not all_finite(delta):
            return STATUS_SINGULAR
        for i in range(result.size):
            result[i] += delta[i]
        if converged(delta, result, ss_opts[OPT_RTOL], ss_opts[OPT_ATOL]):
            return STATUS_OK
    return STATUS_SS_NOT_CONVERGED


@jit
def steady_state_dose(model, t, cmt, amount, rate_value, duration, interval, lag, e, y, rate, active,
                      qf, qi, count, sequence, ss_opts, work, mats, hstate):
    """Add the steady state of the dose train at time t to y (SS=1 resets y first, in the caller);
    hstate: a step-size state for the search (not the subject's).

    Returns (status, queue count, sequence)."""
    contribution = work[W_SS_BASE]
    if interval == 0.0:
        # constant infusion to steady state; the infusion ends at the record
        status = ss_constant(model, cmt, rate_value, e, ss_opts, work, mats, contribution)
        if status != STATUS_OK:
            return status, count, sequence
        for i in range(y.size):
            y[i] += contribution[i]
        return STATUS_OK, count, sequence
    status = ss_periodic(model, cmt, amount, rate_value, duration, interval, e, ss_opts, work, mats, hstate,
                         contribution)
    if status != STATUS_OK:
        return status, count, sequence
    # state at the record time: `phase` after the last dose of the past train,
    # which started at t + lag - interval (Rule: the record's own dose lands at t + lag)
    lag_mod = lag - math.floor(lag / interval) * interval
    if lag_mod > 0.0:
        phase = interval - lag_mod
        clear(hstate)
        status = ss_cycle(model, contribution, phase, cmt, amount, rate_value, duration, interval, e, hstate,
                          ss_opts, work, mats)
        if status != STATUS_OK:
            return status, count, sequence
    else:
        phase = interval
    for i in range(y.size):
        y[i] += contribution[i]
    if rate_value != 0.0:
        # infusions of the past train still running at t go on until they end
        j = 0
        while phase + j * interval < duration:
            remaining = duration - phase - j * interval
            rate[cmt] += rate_value
            active[cmt] += 1
            count = queue_push(qf, qi, count, sequence, t + remaining, QUEUE_INFUSION_END, cmt, rate_value, 0.0)
            sequence += 1.0
            if count < 0:
                return STATUS_QUEUE_OVERFLOW, count, sequence
            j += 1
    return STATUS_OK, count, sequence
