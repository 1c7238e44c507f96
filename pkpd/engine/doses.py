"""Doses under NONMEM's rules, and the queue of pending events (lagged doses, infusion ends)."""

import math

from .jit import jit
from .calls import data
from .constants import (MOD_ALAG, MOD_D, MOD_F, MOD_R, Q_DURATION, Q_SEQUENCE, Q_TIME, Q_VALUE, QI_CMT, QI_KIND,
                        QUEUE_INFUSION_END, STATUS_BAD_BIOAVAILABILITY, STATUS_BAD_LAG,
                        STATUS_BAD_MODELLED_DURATION, STATUS_BAD_MODELLED_RATE, STATUS_OK)


# --- the event queue -------------------------------------------------------------------

@jit
def queue_push(qf, qi, count, sequence, time, kind, cmt, value, duration):
    """Add an event; returns the new count, -1 when the queue is full."""
    if count >= qf.shape[0]:
        return -1
    qf[count, Q_TIME] = time
    qf[count, Q_VALUE] = value
    qf[count, Q_DURATION] = duration
    qf[count, Q_SEQUENCE] = sequence
    qi[count, QI_KIND] = kind
    qi[count, QI_CMT] = cmt
    return count + 1


@jit
def queue_first(qf, count):
    """Index of the earliest pending event (ties: first pushed), or -1."""
    best = -1
    for i in range(count):
        if best < 0 or qf[i, Q_TIME] < qf[best, Q_TIME] or (
                qf[i, Q_TIME] == qf[best, Q_TIME] and qf[i, Q_SEQUENCE] < qf[best, Q_SEQUENCE]):
            best = i
    return best


@jit
def queue_remove(qf, qi, count, index):
    last = count - 1
    for c in range(qf.shape[1]):
        qf[index, c] = qf[last, c]
    for c in range(qi.shape[1]):
        qi[index, c] = qi[last, c]
    return last


# --- doses ---------------------------------------------------------------------------------

@jit
def start_dose(t, cmt, amount, rate_value, duration, y, rate, active, qf, qi, count, sequence):
    """Give a dose now: a bolus adds to y, an infusion adds to the rate vector
    and schedules its end. Returns the new queue count (-1 on overflow)."""
    if rate_value == 0.0:
        y[cmt] += amount
        return count
    if duration <= 0.0 or amount == 0.0:
        return count
    rate[cmt] += rate_value
    active[cmt] += 1
    return queue_push(qf, qi, count, sequence, t + duration, QUEUE_INFUSION_END, cmt, rate_value, 0.0)


@jit
def end_infusion(cmt, rate_value, rate, active):
    active[cmt] -= 1
    if active[cmt] <= 0:
        active[cmt] = 0
        rate[cmt] = 0.0
    else:
        rate[cmt] -= rate_value


@jit
def dose_terms(model, amt, cmt, rate_code, e, mods):
    """(status, amount, rate, duration, lag) of one dose record under NONMEM's rules.

    F scales the amount; a given RATE is kept and the duration becomes F*AMT/RATE;
    RATE=-1 takes the model's R, RATE=-2 the model's D with rate F*AMT/D."""
    mods[MOD_F] = 1.0
    mods[MOD_ALAG] = 0.0
    mods[MOD_R] = 0.0
    mods[MOD_D] = 0.0
    model.dose(data(e), cmt, data(mods))
    bio = mods[MOD_F]
    lag = mods[MOD_ALAG]
    if not (bio >= 0.0) or not math.isfinite(bio):
        return STATUS_BAD_BIOAVAILABILITY, 0.0, 0.0, 0.0, 0.0
    if not (lag >= 0.0) or not math.isfinite(lag):
        return STATUS_BAD_LAG, 0.0, 0.0, 0.0, 0.0
    amount = bio * amt
    if rate_code > 0.0:
        return STATUS_OK, amount, rate_code, amount / rate_code, lag
    if rate_code == -1.0:
        r = mods[MOD_R]
        if not (r > 0.0) or not math.isfinite(r):
            return STATUS_BAD_MODELLED_RATE, 0.0, 0.0, 0.0, 0.0
        return STATUS_OK, amount, r, amount / r, lag
    if rate_code == -2.0:
        d = mods[MOD_D]
        if not (d > 0.0) or not math.isfinite(d):
            return STATUS_BAD_MODELLED_DURATION, 0.0, 0.0, 0.0, 0.0
        return STATUS_OK, amount, amount / d, d, lag
    return STATUS_OK, amount, 0.0, 0.0, lag
