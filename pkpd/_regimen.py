"""Regimens: doses in the model's units, expanded to explicit records in Python.

A :class:`Dose` is one dosing instruction (a bolus or an infusion, possibly
repeated every interval for a count or until a time); a :class:`Regimen` is a
list of them. Numbers are in the model's units (time in h, amounts in the
target compartment's unit, e.g. mg or mmol); ``per_weight=True`` means per kg
of the subject's WT covariate (mg/kg, and mg/kg/h for rates). Scenario files
speak in unit strings ("0.5 mg/kg", "2 h"); they convert to these numbers at
their boundary.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ._errors import PkpdError


@dataclass(frozen=True)
class Dose:
    """One dosing instruction.

    Parameters
    ----------
    amount : float
        Amount per administration, in the target compartment's unit, or per kg
        of body weight if ``per_weight``. For an infusion given by ``rate``,
        may be None when ``duration`` is given (amount = rate * duration).
    target : str
        A drug the model declares in ``[drugs]`` (e.g. "ketamine") or a
        compartment name.
    time : float
        Time of the first administration (model time unit, h).
    duration : float
        Infusion duration; 0 for a bolus.
    rate : float, optional
        Infusion rate (amount per time unit, per kg if ``per_weight``); give
        ``duration`` or ``rate``, not both with an amount.
    every : float, optional
        Interval between administrations.
    count : int
        Number of administrations (1 = a single dose).
    until : float, optional
        Repeat every ``every`` while the start time is before this time
        (instead of ``count``).
    per_weight : bool
        Amount (and rate) are per kg of WT.
    """
    amount: float | None
    target: str
    time: float = 0.0
    duration: float = 0.0
    rate: float | None = None
    every: float | None = None
    count: int = 1
    until: float | None = None
    per_weight: bool = False
    label: str = ""

    def administrations(self):
        """How many administrations :meth:`start_times` gives, computed without making them."""
        if self.until is not None:
            if not self.every:
                raise PkpdError(f"dose {self.label or self.target}: 'until' needs 'every'")
            return max(0, math.ceil((self.until - self.time) / self.every))
        return self.count

    def start_times(self):
        if self.until is not None:
            if not self.every:
                raise PkpdError(f"dose {self.label or self.target}: 'until' needs 'every'")
            return np.arange(self.time, self.until, self.every)
        if self.count > 1 and not self.every:
            raise PkpdError(f"dose {self.label or self.target}: count > 1 needs 'every'")
        return self.time + np.arange(self.count) * (self.every or 0.0)


@dataclass
class Regimen:
    """Doses of one arm; an empty regimen is a placebo (no drug)."""
    doses: list = field(default_factory=list)
    name: str = ""

    def __post_init__(self):
        self.doses = list(self.doses)


def resolve_target(model, target, key="dose"):
    """State index of a dose target: a drug of the model's [drugs] table or a compartment name."""
    if target in model.drugs:
        return model.compartments.index(model.drugs[target]["compartment"])
    if target in model.compartments:
        return model.compartments.index(target)
    known = list(model.drugs) + model.compartments
    raise PkpdError(f"{key}: model {model.name!r} has no drug or compartment {target!r} "
                    f"(known: {', '.join(known)})")


def expand(model, regimen, weights):
    """Explicit dose records for every subject.

    Parameters
    ----------
    model : Model
    regimen : Regimen
    weights : ndarray, shape (n_subjects,)
        Body weight (kg) of each subject, for per-weight doses.

    Returns
    -------
    times : ndarray (n_doses,)
        Start time of each administration (the same for every subject).
    cmt : ndarray (n_doses,) int64
    amounts : ndarray (n_subjects, n_doses)
    rates : ndarray (n_subjects, n_doses)
        0 for boluses.
    """
    times, cmts, amounts, rates = [], [], [], []
    n = weights.size
    for index, dose in enumerate(regimen.doses):
        key = f"doses[{index}]"
        cmt = resolve_target(model, dose.target, key)
        scale = weights if dose.per_weight else np.ones(n)
        duration = float(dose.duration or 0.0)
        if dose.rate is not None:
            if not dose.rate > 0:
                raise PkpdError(f"{key}.rate: must be positive; got {dose.rate}")
            rate = dose.rate * scale
            if dose.amount is None:
                if not duration > 0:
                    raise PkpdError(f"{key}: an infusion by rate needs an amount or a duration")
                amount = rate * duration
            else:
                amount = dose.amount * scale
        else:
            if dose.amount is None or not dose.amount > 0:
                raise PkpdError(f"{key}.amount: must be positive; got {dose.amount}")
            if duration < 0:
                raise PkpdError(f"{key}.duration: must not be negative; got {duration}")
            amount = dose.amount * scale
            rate = amount / duration if duration > 0 else np.zeros(n)
        for start in dose.start_times():
            times.append(float(start))
            cmts.append(cmt)
            amounts.append(amount)
            rates.append(rate)
    if not times:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros((n, 0)), np.zeros((n, 0))
    order = np.argsort(times, kind="stable")
    return (np.asarray(times)[order], np.asarray(cmts, np.int64)[order],
            np.column_stack(amounts)[:, order], np.column_stack(rates)[:, order])
