"""Model-based infusion schedules: target-controlled infusion (TCI) written as an ordinary regimen.

A target-controlled infusion pump (Jacobs, IEEE Trans Biomed Eng 1990;37:107; Shafer and
Gregg, J Pharmacokinet Biopharm 1992;20:147; opentiva) chooses, every step of Δ, a constant
rate from a model of the patient and everything infused before. This module computes that
piecewise-constant profile *once*, for the typical patient (every covariate at the model's
value, no random effects), and returns it as a plain :class:`Regimen` of back-to-back
infusions that is then simulated in a population like any other regimen: the pump's model
is the typical patient, the patients are not.

Algorithm. With the step ends t_j = start + jΔ, a linear time-invariant model gives

    C(t_j) = B_j + Σ_{k<=j} r_k U_{j-k+1},

where B is the output without the scheduled drug (other doses, baselines) and U_m the output
m steps after a unit rate given during one step, both simulated by the engine (so any output
works: plasma, a venous delay, an effect site). At step k the rate is the largest r_k >= 0
whose predicted output, with the pump stopped after this step, stays at or below the target
at every later step end (Shafer and Gregg's rule: the peak equals the target). For an output
without delay the peak is at the end of the step, and this is Jacobs' rule, the target
reached exactly at every step end; for a delayed output the pump loads less and waits, so
the output rises to the target without overshooting it. A pump cannot withdraw drug: where
the output would exceed the target anyway, the rate is 0. The schedule is then simulated as
written; a model that is not linear in this dose (saturable elimination) gets Newton
corrections with the same triangular operator until every step end is within
:data:`TOLERANCE` of the plan, or a one-line error.

Between step ends the output is not controlled: a step short against the model's fastest
half-life holds the target closely (``tests/test_tci.py``: within 0.05 % of the closed-form
BET of pk2cmt and pk3cmt with 15-min steps), a long one gives a saw-tooth.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import PkpdError
from ..events.regimen import Dose, Regimen

if TYPE_CHECKING:
    from ..model import Model

TOLERANCE = 1e-3        # relative miss of the target at a step end that the schedule may keep
MAX_CORRECTIONS = 20    # Newton corrections for a model that is not linear in the dose
MAX_STEPS = 20_000      # steps of one schedule


@dataclass(frozen=True)
class TciSpec:
    """A target-controlled infusion, in the model's units.

    Attributes
    ----------
    drug : str
        The dose target: a drug of the model's ``[drugs]`` or a compartment.
    output : str
        The model output held at the target.
    start, duration, step : float
        When the pump starts, how long it holds the target, the length of one constant-rate step
        (model time unit).
    per_weight : bool
        Write the rates per kg of body weight (the typical patient's rate / its weight).
    weight : float
        The typical patient's body weight (kg).
    """
    drug: str
    output: str
    start: float
    duration: float
    step: float
    per_weight: bool = False
    weight: float = 70.0

    @property
    def steps(self):
        """Steps of the schedule: the last ends at start + duration, or after it when `step` does not divide it."""
        return int(math.ceil(self.duration / self.step - 1e-9))


def typical_weight(model):
    """The model's reference body weight (its WT covariate's value), else 70 kg."""
    reference = model.covariates.get("WT")
    return float(reference.value) if reference is not None else 70.0


def typical_patient(model, spec):
    """One subject: every covariate at the model's value (not drawn from its distribution), WT at
    `spec.weight`; the caller simulates without random effects."""
    from ..population import Population

    values = {name: [float(covariate.value)] for name, covariate in model.covariates.items()}
    return Population.from_table(pd.DataFrame({**values, "WT": [spec.weight]}))


class TciPlanner:
    """TCI schedules of one drug and output for any target: the unit response simulated once.

    Parameters
    ----------
    model : Model
    spec : TciSpec
    options : dict, optional
        ``method``, ``rtol``, ``atol`` as in :func:`pkpd.simulate`.
    key : str
        Where errors point: ``tci`` (:func:`tci_regimen`'s arguments) or ``search.tci`` (a scenario).
    """

    def __init__(self, model, spec, options=None, key="tci"):
        from ..model import load_model

        self.model, self.spec, self.key = load_model(model), spec, key
        if spec.output not in self.model.outputs:
            raise PkpdError(f"model {self.model.name!r} has no output {spec.output!r}", key=f"{self.key}.output")
        if spec.steps > MAX_STEPS:
            raise PkpdError(f"gives {spec.steps:,} steps (at most {MAX_STEPS:,}); use a larger step",
                            key=f"{self.key}.step", got=f"{spec.step:g} over {spec.duration:g}")
        self.options = {k: v for k, v in (options or {}).items() if k in ("method", "rtol", "atol")}
        self.patient = typical_patient(self.model, spec)
        unit = Dose(None, spec.drug, time=spec.start, rate=1.0, duration=spec.step)
        response = self._output([unit], 2 * spec.steps) - self._output([], 2 * spec.steps)
        if not response[0] > 0:
            raise PkpdError(f"does not rise during an infusion of {spec.drug!r}: no infusion can reach a target in it",
                            key=f"{self.key}.output", got=spec.output)
        # step ends the plan watches: the schedule's, and after it as long as one step's output still rises
        self.horizon = min(response.size, spec.steps + int(np.argmax(response)))
        self.unit_response = response[:self.horizon]

    def _output(self, doses, count=None):
        """The output at the first `count` step ends (all of the schedule's by default), shape (count,)."""
        from .._simulate import simulate

        spec = self.spec
        times = spec.start + spec.step * np.arange(1, (count or spec.steps) + 1)
        result = simulate(self.model, Regimen(doses), self.patient, times, variability=False, progress=False,
                          **self.options)
        return result.output(spec.output)[0]

    def _plan(self, target, base):
        """Rates by the peak rule, and the output they give at the step ends, by superposition.

        At step k the pump takes the largest rate whose output, predicted at every later step end with
        the pump stopped after this step, does not exceed the target (Shafer and Gregg's rule; for an
        output without delay the peak is at the end of the step, and the rate brings it exactly there).
        """
        response, predicted = self.unit_response, np.array(base, float)
        rates = np.zeros(self.spec.steps)
        rising = response > 0
        for k in range(rates.size):
            room = np.full(response.size - k, np.inf)
            gain = response[:room.size]
            room[rising[:room.size]] = (target - predicted[k:])[rising[:room.size]] / gain[rising[:room.size]]
            rates[k] = max(0.0, float(room.min()))
            predicted[k:] += rates[k] * gain
        return rates, predicted[:rates.size]

    def _solve(self, wanted, rates):
        """Rates r >= 0 whose superposed outputs meet `wanted` step by step (forward substitution)."""
        response, solved = self.unit_response, np.array(rates, float)
        for j in range(solved.size):
            reached = np.dot(solved[:j], response[j:0:-1]) if j else 0.0
            solved[j] = max(0.0, (wanted[j] - reached) / response[0])
        return solved

    def rates(self, target, background=()):
        """The typical patient's rate of every step (drug amount per time unit, not per kg), shape (steps,).

        `background` (doses given besides the schedule) gives the base the rates build on.
        """
        if not target > 0:
            raise PkpdError("must be a positive concentration", key=f"{self.key}.target", got=repr(target))
        background = list(background)
        rates, planned = self._plan(target, self._output(background, self.horizon))
        for _ in range(MAX_CORRECTIONS):
            reached = self._output([*background, *self._doses(rates, per_kg=False)])
            miss = planned - reached
            # as planned, or above the plan with the pump stopped (it cannot withdraw drug)
            if np.all((np.abs(miss) <= TOLERANCE * target) | ((rates == 0) & (miss < 0))):
                return rates
            # Newton step: the same triangular operator on the residual, rates kept >= 0
            rates = self._solve(self._superposed(rates) + miss, rates)
        raise PkpdError(f"the schedule does not converge to the target within {TOLERANCE:.1%} (the output is not "
                        f"close enough to linear in the dose of {self.spec.drug!r})", key=f"{self.key}.target",
                        got=f"{target:g}")

    def _superposed(self, rates):
        """What the linear model predicts for `rates`, without the base."""
        response = self.unit_response
        return np.array([np.dot(rates[:j + 1], response[j::-1]) for j in range(rates.size)])

    def _doses(self, rates, per_kg):
        spec = self.spec
        scale = spec.weight if per_kg else 1.0
        return [Dose(None, spec.drug, time=float(spec.start + k * spec.step), rate=float(rate / scale),
                     duration=float(spec.step), per_weight=per_kg, label=f"TCI step {k + 1}")
                for k, rate in enumerate(rates) if rate > 0]

    def regimen(self, target, background=None, name=""):
        """The schedule reaching and holding `target` (model output unit) as a regimen of infusions (per kg
        when ``spec.per_weight``), after the doses of `background` (a Regimen given besides it)."""
        others = list(background.doses) if background is not None else []
        doses = self._doses(self.rates(target, others), per_kg=self.spec.per_weight)
        return Regimen([*others, *doses], name=name)


def tci_regimen(model: "Model | str | Path", drug: str, output: str, target: float, *, duration: float, step: float,
                start: float = 0.0, per_weight: bool = False, weight: float | None = None,
                background: Regimen | None = None, method: str = "auto", rtol: float | None = None,
                atol: float | None = None) -> Regimen:
    """The target-controlled infusion schedule that reaches and holds `target` for the typical patient.

    Parameters
    ----------
    model : Model or str
    drug : str
        A drug of the model (``"ketamine"``) or a compartment name.
    output : str
        The output held at the target (any output: arterial, venous, effect site).
    target : float
        Target level, in the output's unit (``model.outputs[output].unit``).
    duration, step, start : float
        How long the target is held, the length of each constant-rate step, the start (model time unit).
    per_weight : bool
        Write the rates per kg (mg/kg/h): the typical patient's rates over its weight.
    weight : float, optional
        The typical patient's weight in kg (default: the model's WT value, else 70 kg).
    background : Regimen, optional
        Other doses given at the same time.
    method, rtol, atol
        As in :func:`pkpd.simulate`.

    Returns
    -------
    Regimen
        The background doses, then one infusion per step with a positive rate (amount per time unit,
        per kg if `per_weight`); steps at rate 0 are left out.

    Examples
    --------
    >>> import pkpd
    >>> schedule = pkpd.tci_regimen("pk2cmt", "CENT", "CP", 2.0, duration=4.0, step=0.5)
    >>> [round(dose.rate, 2) for dose in schedule.doses][:3]
    [83.03, 5.96, 5.92]
    """
    from ..model import Model, load_model
    from .._options import DEFAULT

    if not isinstance(model, Model):
        model = load_model(model)
    if not (duration > 0 and step > 0):
        raise PkpdError("duration and step must be positive", key="tci", got=f"{duration!r}, {step!r}")
    spec = TciSpec(drug=drug, output=output, start=float(start), duration=float(duration), step=float(step),
                   per_weight=per_weight, weight=typical_weight(model) if weight is None else float(weight))
    options = dict(method=method, rtol=DEFAULT.rtol if rtol is None else rtol,
                   atol=DEFAULT.atol if atol is None else atol)
    return TciPlanner(model, spec, options).regimen(float(target), background)
