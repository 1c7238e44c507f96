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
import numbers
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .._errors import PkpdError


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

    Raises
    ------
    PkpdError
        When built with a field that breaks a rule: ``key`` names the field
        (after the dose's label, a scenario's key path such as
        ``arms[0].doses[1]``), with the rule and the value.
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
    drug: str = ""      # the [drugs] entry a scenario named (for its documented dose range)
    written: str = ""   # the dose as the scenario wrote it, e.g. "3 g MgSO4·7H2O over 30 min" (for messages)

    def __post_init__(self):
        if not isinstance(self.target, str) or not self.target:
            self._fail("target", "must be a drug or compartment name", self.target)
        for name in ("amount", "rate", "every", "duration", "time", "until"):
            value = getattr(self, name)
            if value is not None and not _finite(value):
                self._fail(name, "must be a finite number", value)
        for name in ("amount", "rate", "every"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                self._fail(name, "must be positive", value)
        if self.duration < 0:
            self._fail("duration", "must not be negative", self.duration)
        if isinstance(self.count, bool) or not isinstance(self.count, numbers.Integral) or self.count < 1:
            self._fail("count", "must be an integer >= 1", self.count)
        if not isinstance(self.per_weight, bool):
            self._fail("per_weight", "must be true or false", self.per_weight)
        if self.amount is None and self.rate is None:
            self._fail("amount", "is required (or give a rate and a duration)")
        if self.amount is None and not self.duration > 0:
            self._fail("duration", "is required: an infusion by rate needs an amount or a duration")
        if (self.count > 1 or self.until is not None) and self.every is None:
            self._fail("every", "is required when count > 1 or until is given")

    def _fail(self, name, rule, *value):
        """Raise PkpdError at field `name` (after the label); the value, if given, written as its repr."""
        found = {"value": value[0], "got": repr(value[0])} if value else {}
        raise PkpdError(rule, key=f"{self.label}.{name}" if self.label else name, **found)

    def administrations(self):
        """How many administrations :meth:`start_times` gives, computed without making them."""
        if self.until is not None:
            return max(0, math.ceil((self.until - self.time) / self.every))
        return self.count

    def start_times(self) -> NDArray[np.floating]:
        if self.until is not None:
            return np.arange(self.time, self.until, self.every)
        return self.time + np.arange(self.count) * (self.every or 0.0)


def _finite(value):
    """A finite real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


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
    raise PkpdError(f"model {model.name!r} has no drug or compartment {target!r} (known: {', '.join(known)})",
                    key=key)


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
        duration = float(dose.duration)  # a Dose checked its fields when built
        if dose.rate is not None:
            rate = dose.rate * scale
            amount = rate * duration if dose.amount is None else dose.amount * scale
        else:
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


#: A dose more than this factor outside the model's documented range gets a warning.
DOSE_RANGE_FACTOR = 10.0


def resolve_dose(model, dose, median_weight):
    """A dose as mg/kg and as mg at the population's median weight (rates per hour likewise).

    Parameters
    ----------
    model : Model
    dose : Dose
    median_weight : float or None
        Median body weight of the population (kg); None when it has no WT.

    Returns
    -------
    dict
        ``drug``, ``unit`` (the target compartment's amount unit, e.g. "mg" or "mmol"),
        ``median_weight_kg``, ``amount_per_kg`` and ``amount_at_median_weight``
        (per administration), ``rate_per_kg`` and ``rate_at_median_weight``
        (per time unit; None for a bolus), ``administrations``. Values that need
        a weight are None without one.
    """
    compartment = model.drugs[dose.target]["compartment"] if dose.target in model.drugs else dose.target
    unit = model.compartment_units.get(compartment) or model.units.get("amount", "mg")
    rate = dose.rate if dose.rate is not None else (
        dose.amount / dose.duration if dose.amount is not None and dose.duration > 0 else None)
    amount = dose.amount if dose.amount is not None else rate * dose.duration

    def per_kg(value):
        if value is None:
            return None
        if dose.per_weight:
            return value
        return value / median_weight if median_weight else None

    def absolute(value):
        if value is None:
            return None
        if not dose.per_weight:
            return value
        return value * median_weight if median_weight else None

    return {"drug": dose.drug or dose.target, "unit": unit, "time_unit": model.units.get("time", "h"), "median_weight_kg": median_weight,
            "amount_per_kg": per_kg(amount), "amount_at_median_weight": absolute(amount),
            "rate_per_kg": per_kg(rate), "rate_at_median_weight": absolute(rate),
            "administrations": dose.administrations(), "written": dose.written}


def describe_resolved(resolved, per_weight):
    """One compact line, the dose as given first.

    '0.5 mg/kg = 34.8 mg at the median weight 69.5 kg; rate 0.25 mg/kg/h = 17.4 mg/h'.
    """
    unit, time_unit = resolved["unit"], resolved["time_unit"]
    weight = resolved["median_weight_kg"]

    def pair(per_kg, absolute, suffix=""):
        parts = [f"{per_kg:.4g} {unit}/kg{suffix}" if per_kg is not None else None,
                 f"{absolute:.4g} {unit}{suffix}" if absolute is not None else None]
        return " = ".join(part for part in (parts if per_weight else parts[::-1]) if part)

    text = pair(resolved["amount_per_kg"], resolved["amount_at_median_weight"])
    if weight:
        text += f" at the median weight {weight:.3g} kg"
    if resolved["rate_per_kg"] is not None or resolved["rate_at_median_weight"] is not None:
        text += f"; rate {pair(resolved['rate_per_kg'], resolved['rate_at_median_weight'], '/' + time_unit)}"
    count = resolved["administrations"]
    text += f"; {count:g} administrations" if count != 1 else ""
    return f"{resolved['written']} -> {text}" if resolved.get("written") else text


def dose_warning(model, dose, resolved):
    """A warning when a dose is more than DOSE_RANGE_FACTOR outside its drug's documented range, else None.

    The range is the drug's ``dose_range`` in the model file (per kg). Boluses are
    compared by amount; infusions by rate, and by amount only for being too small
    (a long infusion legitimately gives a large total). Typically this catches
    "0.5 mg" written where "0.5 mg/kg" was meant.
    """
    from .._units import magnitude_in

    drug = model.drugs.get(dose.drug or dose.target, {})
    documented = drug.get("dose_range")
    if not documented:
        return None
    unit, time_unit = resolved["unit"], resolved["time_unit"]
    infusion = resolved["rate_per_kg"] is not None
    checks = [("amount", resolved["amount_per_kg"], f"{unit}/kg", not infusion)]
    if infusion:
        checks.append(("rate", resolved["rate_per_kg"], f"{unit}/kg/{time_unit}", True))
    for kind, value, per_kg_unit, check_high in checks:
        if value is None or kind not in documented:
            continue
        low, high = (magnitude_in(text, per_kg_unit, f"dose_range.{kind}", molar_mass=drug.get("molar_mass"))
                     for text in documented[kind])
        if value < low / DOSE_RANGE_FACTOR:
            side = f"{low / value:.3g}x below"
        elif check_high and value > high * DOSE_RANGE_FACTOR:
            side = f"{value / high:.3g}x above"
        else:
            continue
        hint = ""
        if kind == "amount" and not dose.per_weight and low <= dose.amount <= high:
            hint = f"; did you mean {dose.amount:g} {unit}/kg?"
        given = f"{value:.3g} {per_kg_unit}"
        if not dose.per_weight:
            absolute = resolved[f"{kind}_at_median_weight"]
            given = (f"{absolute:.3g} {unit}{'/' + time_unit if kind == 'rate' else ''} "
                     f"({given} at the median weight {resolved['median_weight_kg']:.3g} kg)")
        return (f"{dose.label or dose.target}: {dose.drug or dose.target} {kind} {given} is {side} the "
                f"model's documented range {documented[kind][0]} to {documented[kind][1]}{hint}")
    return None
