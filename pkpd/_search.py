"""Regimen search: which doses, rates and intervals meet population targets, within limits.

A search varies chosen fields of an arm's doses (loading dose and its duration,
maintenance rate and duration, amount, interval, number of doses, start) over
grids with units, simulates every candidate regimen in the *same* virtual
patients (one :class:`Population`, one seed: common random numbers, so two
candidates differ only by their doses and the comparison is not blurred by
sampling noise), and ranks the candidates by population metrics:

=====================  ===========================================================================
metric                 per subject, then over subjects
=====================  ===========================================================================
``fraction_within``    stays within a window throughout an interval (continuously, see
                       :mod:`pkpd.metrics.window`); the fraction of subjects who do
``time_within``        fraction of the interval spent within the window; its mean (or a statistic)
``cmax``, ``cmin``     extreme over an interval, refined between samples; median, mean or ``pN``
``auc``, ``cavg``      area (linear-up/log-down) and average over an interval; a statistic
``adverse_event_rate`` peak probability of an output of role ``adverse_event_probability``; the
                       mean over subjects (the expected incidence)
``total_dose``         total amount of a drug (mg, or mg/kg); the mean over subjects
=====================  ===========================================================================

Constraints bound metrics (``at_least``, ``at_most``); the objective minimises or
maximises one (by default the total dose). A candidate is feasible when every
constraint holds for its point estimate; the best feasible candidate is chosen
(ties: the first in grid order, i.e. the smaller values of the first variables).

Strategy
--------
Each variable takes the values of its grid (``from``, ``to``, ``step`` or a list),
so the search space is a lattice. When the lattice has at most ``budget``
points, every point is evaluated (the exact answer on the grid). Otherwise a
coarse sub-lattice (every s-th value, the ends included, at most half the
budget) is evaluated, then refined: the lattice neighbours (offsets -s, 0, +s in
every variable) of the best few candidates are evaluated, s is halved, and the
rounds continue at s = 1 until the best candidates no longer change or the
budget is spent. A lattice search rather than a scipy optimiser because the
metrics are step functions of the doses (a fraction of n subjects changes by
1/n at a time: no gradient, plateaus everywhere that mislead Nelder-Mead or
trust-region methods), the variables are discrete by design (a dose step, a
whole number of doses), and a lattice evaluates in batches, is deterministic,
and lets every candidate's metrics be written to ``search.csv``.

A ``[search.tci]`` table adds a target-controlled infusion to every candidate (see
:mod:`pkpd._tci`): the schedule that holds an output at a target for the typical patient,
computed per candidate for its target (a variable that sets ``tci.target``) and evaluated in
the population like any other regimen.

Monte Carlo intervals (95 %) say how much a metric owes to the finite virtual
population: Wilson intervals for the fraction of subjects within a window (every
candidate), percentile bootstrap over subjects for the other metrics of the final
candidates (the chosen one and the next best).
"""

import dataclasses
import itertools
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ._errors import PkpdError, ScenarioError, suggestion
from ._keys import Keys
from .metrics import exposure_metrics, window as continuous
from .population import Population
from ._regimen import Dose, Regimen, expand
from ._resources import check_memory
from ._scenario_checks import parse_amount
from ._tci import MAX_STEPS as TCI_MAX_STEPS, TciPlanner, TciSpec, typical_weight

if TYPE_CHECKING:
    from .model import Model
    from ._scenario import Scenario

SEARCH_KEYS = Keys(["arm", "variables", "constraints", "objective", "budget", "tci"], required=["variables"])
TCI_KEYS = Keys(["drug", "output", "target", "start", "duration", "step", "per_kg", "weight"],
                required=["drug", "output", "duration", "step"])
TCI_TARGET = "tci.target"   # the field of a variable that searches the target of [search.tci]
VARIABLE_KEYS = Keys(["set", "from", "to", "step", "values"], required=["set"])
METRIC_KEYS = ["output", "window", "interval", "statistic", "drug", "unit", "name"]
CONSTRAINT_KEYS = Keys(["metric", *METRIC_KEYS, "at_least", "at_most"], required=["metric"])
GOALS = {"minimise": 1, "minimize": 1, "maximise": -1, "maximize": -1}
OBJECTIVE_KEYS = [*GOALS, *METRIC_KEYS]
#: Dose fields a variable may set: the scenario's key -> the field of :class:`pkpd.Dose`.
DOSE_FIELDS = {"amount": "amount", "rate": "rate", "duration": "duration", "start": "time", "every": "every",
               "count": "count"}
TIME_FIELDS = ("duration", "start", "every")
METRICS = ["fraction_within", "time_within", "cmax", "cmin", "auc", "cavg", "adverse_event_rate", "total_dose"]
FRACTION_METRICS = ("fraction_within", "time_within", "adverse_event_rate")
DEFAULT_BUDGET = 500
MAX_VALUES = 10_000          # values of one variable
ANCHORS = 3                  # candidates whose neighbourhoods each refinement round evaluates
FINALS = 5                   # candidates that get bootstrap intervals
_SET = re.compile(r"^doses\[(\d+)\]\.(\w+)$")
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


# --- the checked specification -------------------------------------------------------------------

@dataclass(frozen=True)
class Variable:
    """A decision variable: the dose fields it sets and its grid.

    `values` are in the model's units (per kg when the dose is); `unit` is the unit the
    user wrote and `scale` the model value of one `unit`, for display.
    """
    name: str
    targets: tuple            # ((dose index, scenario key), ...); (None, "target") for the TCI target
    values: np.ndarray
    unit: str
    scale: float

    def shown(self, index):
        """The value at `index` in the user's unit, rounded to 10 significant digits."""
        return float(f"{self.values[index] / self.scale:.10g}")

    def text(self, index):
        return f"{self.shown(index):g} {self.unit}".strip()

    @property
    def column(self):
        """Its column in ``search.csv``: 'loading (mg/kg)', 'count (doses)'."""
        return f"{self.name} ({self.unit or 'doses'})"

    @property
    def paths(self):
        """The fields it sets as the scenario writes them: ['doses[0].amount'], ['tci.target']."""
        return [TCI_TARGET if d is None else f"doses[{d}].{f}" for d, f in self.targets]


@dataclass(frozen=True)
class Metric:
    """A population metric (see the module table); `unit` is the unit of its value."""
    kind: str
    name: str
    output: str | None = None
    window: tuple | None = None
    interval: tuple | None = None
    statistic: str = "mean"
    drug: str | None = None
    per_weight: bool = False
    unit: str = "1"
    label: str = ""

    @property
    def column(self):
        """Its column in ``search.csv``: 'fraction_within_KETAMINE_VEN (fraction)'."""
        return f"{self.name} ({_unit_text(self.unit)})"

    @property
    def is_fraction_of_subjects(self):
        return self.kind == "fraction_within"


@dataclass(frozen=True)
class Constraint:
    metric: Metric
    at_least: float | None = None
    at_most: float | None = None

    def violation(self, value):
        """How far `value` is outside the limit, relative to the limit (0 inside)."""
        scale = max(abs(self.at_least if self.at_least is not None else self.at_most), 1e-12)
        if self.metric.unit == "1":
            scale = 1.0
        excess = 0.0
        if self.at_least is not None:
            excess = max(excess, (self.at_least - value) / scale)
        if self.at_most is not None:
            excess = max(excess, (value - self.at_most) / scale)
        return excess

    def text(self):
        parts = []
        if self.at_least is not None:
            parts.append(f">= {_value_text(self.metric, self.at_least)}")
        if self.at_most is not None:
            parts.append(f"<= {_value_text(self.metric, self.at_most)}")
        return f"{self.metric.label} {' and '.join(parts)}"


@dataclass(frozen=True)
class SearchSpec:
    """A checked ``[search]`` section (values in the model's units)."""
    arm: str
    variables: tuple
    constraints: tuple
    objective: Metric
    sense: int                 # +1 minimise, -1 maximise
    budget: int
    tci: "TciSpec | None" = None     # a target-controlled infusion added to every candidate
    tci_target: float | None = None  # its target when no variable searches it (output unit)

    @property
    def metrics(self):
        """Every metric, each once, in the order constraints then objective."""
        found = {}
        for metric in [c.metric for c in self.constraints] + [self.objective]:
            found.setdefault(metric.name, metric)
        return list(found.values())

    @property
    def size(self):
        return math.prod(v.values.size for v in self.variables)


class _Check:
    """Where a spec's errors point: the scenario file (and its key paths), or a Python argument."""

    def __init__(self, file=None, error=PkpdError):
        self.file, self.error = file, error

    def fail(self, key, rule, **found):
        if "value" in found:
            found.setdefault("got", repr(found["value"]))
        raise self.error(rule, file=self.file, key=key, **found)

    def keys(self, key, table, allowed):
        if not isinstance(table, dict):
            self.fail(key, "must be a table", value=table)
        for name in table:
            if name not in allowed:
                self.fail(f"{key}.{name}", f"unknown key{suggestion(name, allowed, 'allowed')}")
        for name in getattr(allowed, "required", ()):   # pkpd._keys.Keys: the docs show the same list
            if name not in table:
                self.fail(f"{key}.{name}", "is required")

    def refuse(self, key, error):
        self.fail(key, error.rule, **error.fields())


def parse_search(table, model, regimen, times, *, arm="", file=None, error=PkpdError):
    """Check a ``[search]`` table (or the same keys given to :func:`search`) against the model and regimen.

    Parameters
    ----------
    table : dict
        ``variables``, ``constraints``, ``objective``, ``budget`` (and ``arm``, read by the caller).
    model : Model
    regimen : Regimen
        The template regimen whose doses the variables change.
    times : ndarray
        The output grid (model time unit): the default interval of every metric.
    arm : str
        The template arm's name.
    file : str, optional
        The scenario file's name, for messages.

    Returns
    -------
    SearchSpec

    Raises
    ------
    PkpdError (ScenarioError from a scenario)
        One line naming the key path (``search.variables.loading.from``), the rule and the value.
    """
    check = _Check(file, error)
    check.keys("search", table, SEARCH_KEYS)
    raw = table["variables"]
    if not isinstance(raw, dict) or not raw:
        check.fail("search.variables", "must be a table of name = { set = ..., from = ..., to = ..., step = ... }",
                   value=raw)
    span = (float(times[0]), float(times[-1]))
    tci, tci_target = _tci(check, table["tci"], model, span) if "tci" in table else (None, None)
    variables = tuple(_variable(check, model, regimen, name, spec, tci) for name, spec in raw.items())
    _check_variables(check, regimen, variables)
    searched = next((v.name for v in variables if (None, "target") in v.targets), None)
    if tci is not None and (tci_target is None) == (searched is None):
        check.fail("search.tci.target", f"is set by variable {searched!r}; give one or the other" if searched else
                   f"is required (or a variable with set = '{TCI_TARGET}')")
    if tci is not None:   # the metrics see the schedule's drug as a dose of the arm
        regimen = Regimen([*regimen.doses, Dose(1.0, tci.drug, per_weight=tci.per_weight)], name=regimen.name)
    constraints = table.get("constraints", [])
    if not isinstance(constraints, list):
        check.fail("search.constraints", "must be a list of tables ([[search.constraints]])", value=constraints)
    parsed = []
    for index, spec in enumerate(constraints):
        key = f"search.constraints[{index}]"
        check.keys(key, spec, CONSTRAINT_KEYS)
        metric = _metric(check, key, spec, spec["metric"], model, regimen, span)
        if "at_least" not in spec and "at_most" not in spec:
            check.fail(key, "give at_least or at_most (or both)")
        limits = {bound: _limit(check, f"{key}.{bound}", spec[bound], metric, model, regimen)
                  for bound in ("at_least", "at_most") if bound in spec}
        metric = _with_limit_unit(check, key, spec, metric, model, regimen)
        if len(limits) == 2 and limits["at_least"] > limits["at_most"]:
            check.fail(key, f"at_least ({spec['at_least']}) must not exceed at_most ({spec['at_most']})")
        parsed.append(Constraint(metric, limits.get("at_least"), limits.get("at_most")))
    objective = table.get("objective", {"minimise": "total_dose"})
    check.keys("search.objective", objective, OBJECTIVE_KEYS)
    goals = [goal for goal in GOALS if goal in objective]
    if len(goals) != 1:
        check.fail("search.objective", "give exactly one of minimise or maximise (a metric name)",
                   got=", ".join(goals) or "neither")
    goal = _metric(check, "search.objective", objective, objective[goals[0]], model, regimen, span,
                   kind_key=f"search.objective.{goals[0]}")
    goal = _with_limit_unit(check, "search.objective", objective, goal, model, regimen)
    budget = table.get("budget", DEFAULT_BUDGET)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        check.fail("search.budget", "must be a positive integer (candidates to evaluate at most)", value=budget)
    spec = SearchSpec(arm=arm, variables=variables, constraints=tuple(parsed), objective=goal,
                      sense=GOALS[goals[0]], budget=budget, tci=tci, tci_target=tci_target)
    names = [c.metric.name for c in parsed] + [goal.name]
    for index, metric in enumerate([c.metric for c in parsed] + [goal]):
        twin = next(m for m in [c.metric for c in parsed] + [goal] if m.name == metric.name)
        if twin != metric:
            where = f"search.constraints[{index}]" if index < len(parsed) else "search.objective"
            check.fail(f"{where}.name", f"{metric.name!r} names two different metrics; give each its own name")
    if len(set(names) & {v.name for v in variables}):
        check.fail("search.variables", "a variable cannot share its name with a metric")
    return spec


def _tci(check, table, model, span):
    """The ``[search.tci]`` table: (TciSpec, its fixed target in the output's unit or None)."""
    key = "search.tci"
    check.keys(key, table, TCI_KEYS)
    drug, output = table["drug"], table["output"]
    targets = [*model.drugs, *model.compartments]
    if drug not in targets:
        check.fail(f"{key}.drug", f"model {model.name!r} has no drug or compartment {drug!r}"
                                  f"{suggestion(str(drug), targets, 'known')}")
    if output not in model.outputs:
        check.fail(f"{key}.output", f"model {model.name!r} has no output {output!r}"
                                    f"{suggestion(str(output), list(model.outputs), 'outputs')}")
    unit = model.units.get("time", "h")
    start = _magnitude(check, f"{key}.start", table["start"], unit) if "start" in table else span[0]
    duration = _magnitude(check, f"{key}.duration", table["duration"], unit, positive=True)
    step = _magnitude(check, f"{key}.step", table["step"], unit, positive=True)
    if math.ceil(duration / step - 1e-9) > TCI_MAX_STEPS:
        check.fail(f"{key}.step", f"gives more than {TCI_MAX_STEPS:,} steps over {table['duration']}; use a larger "
                                  f"step", value=table["step"])
    per_kg = table.get("per_kg", "WT" in model.covariates)
    if not isinstance(per_kg, bool):
        check.fail(f"{key}.per_kg", "must be true or false", value=per_kg)
    weight = (_magnitude(check, f"{key}.weight", table["weight"], "kg", positive=True) if "weight" in table
              else typical_weight(model))
    target = _concentration(check, f"{key}.target", table["target"], model, output) if "target" in table else None
    spec = TciSpec(drug=drug, output=output, start=start, duration=duration, step=step, per_weight=per_kg,
                   weight=weight)
    return spec, target


def _concentration(check, key, text, model, output):
    """A positive level of `output` in its unit."""
    value = _level(check, key, text, model, output)
    if not value > 0:
        check.fail(key, "must be a positive concentration", value=text)
    return value


def _variable(check, model, regimen, name, spec, tci=None):
    key = f"search.variables.{name}"
    check.keys(key, spec, VARIABLE_KEYS)
    targets = spec["set"] if isinstance(spec["set"], list) else [spec["set"]]
    if not targets:
        check.fail(f"{key}.set", "must name at least one dose field, e.g. 'doses[0].amount'")
    parsed = []
    for index, target in enumerate(targets):
        where = f"{key}.set" + (f"[{index}]" if isinstance(spec["set"], list) else "")
        if target == TCI_TARGET:
            if tci is None:
                check.fail(where, "needs a [search.tci] section (the target-controlled infusion it sets)")
            parsed.append((None, "target"))
            continue
        match = _SET.match(target) if isinstance(target, str) else None
        if match is None:
            check.fail(where, "must be a dose field such as 'doses[0].amount' or 'doses[1].rate'", value=target)
        dose_index, field_name = int(match.group(1)), match.group(2)
        if dose_index >= len(regimen.doses):
            check.fail(where, f"the arm has {len(regimen.doses)} dose(s) (doses[0] to "
                              f"doses[{len(regimen.doses) - 1}])", value=target)
        if field_name not in DOSE_FIELDS:
            check.fail(where, f"unknown dose field {field_name!r}{suggestion(field_name, DOSE_FIELDS, 'fields')}")
        dose = regimen.doses[dose_index]
        if field_name == "amount" and dose.rate is not None:
            check.fail(where, f"doses[{dose_index}] is given by rate and duration; search its rate or duration")
        if field_name == "rate" and dose.rate is None:
            check.fail(where, f"doses[{dose_index}] is given by amount; search its amount or duration (or write "
                              f"it with a rate)")
        parsed.append((dose_index, field_name))
    kinds = {("time" if f in TIME_FIELDS else f) for _, f in parsed}
    if len(kinds) > 1:
        check.fail(f"{key}.set", f"one variable sets fields of one kind (times, amounts, rates or counts); got "
                                 f"{', '.join(f'doses[{d}].{f}' for d, f in parsed)}")
    first_dose, first_field = parsed[0]
    if "values" in spec:
        if any(k in spec for k in ("from", "to", "step")):
            check.fail(key, "give values, or from, to and step, not both")
        texts = spec["values"]
        if not isinstance(texts, list) or not texts:
            check.fail(f"{key}.values", "must be a non-empty list", value=texts)
        values = [_value(check, f"{key}.values[{i}]", t, model, regimen, parsed, tci=tci)
                  for i, t in enumerate(texts)]
        if any(b <= a for a, b in zip(values, values[1:])):
            check.fail(f"{key}.values", "must be increasing", value=texts)
        grid = np.array(values)
        shown = list(zip(texts, values))
    else:
        for bound in ("from", "to"):
            if bound not in spec:
                check.fail(f"{key}.{bound}", "is required (or give values)")
        low = _value(check, f"{key}.from", spec["from"], model, regimen, parsed, tci=tci)
        high = _value(check, f"{key}.to", spec["to"], model, regimen, parsed, tci=tci)
        if low > high:
            check.fail(f"{key}", f"bounds reversed: from ({spec['from']}) must not exceed to ({spec['to']})")
        if "step" in spec or first_field == "count":
            step = _value(check, f"{key}.step", spec.get("step", 1), model, regimen, parsed, step=True, tci=tci)
        elif high > low:
            check.fail(f"{key}.step", "is required when from and to differ")
        else:
            step = 1.0
        count = int(math.floor((high - low) / step + 1e-9)) + 1
        if count > MAX_VALUES:
            check.fail(f"{key}.step", f"gives {count:,} values (at most {MAX_VALUES:,}); use a larger step",
                       value=spec.get("step"))
        grid = low + step * np.arange(count)
        shown = [(spec["from"], low), (spec["to"], high)]
    unit, scale = _display(shown, first_field)
    variable = Variable(name=str(name), targets=tuple(parsed), values=grid, unit=unit, scale=scale)
    for index in sorted({0, grid.size - 1}):  # the ends of the range, each alone, must make valid doses
        try:
            _candidate(regimen, [variable], (index,))
        except PkpdError as error:
            check.fail(key, f"{variable.text(index)} makes an invalid dose: {error.key} {error.rule}",
                       **error.fields())
    return variable


def _check_variables(check, regimen, variables):
    seen = {}
    for variable in variables:
        for target in variable.targets:
            if target in seen:
                check.fail(f"search.variables.{variable.name}.set", f"doses[{target[0]}].{target[1]} is already set "
                                                                    f"by variable {seen[target]!r}")
            seen[target] = variable.name


def _value(check, key, text, model, regimen, targets, step=False, tci=None):
    """`text` as a number in the model's unit of every target field (the same number for each)."""
    found = None
    for dose_index, field_name in targets:
        if dose_index is None:   # the TCI target (alone: a variable sets fields of one kind), a level of its output
            return _concentration(check, key, text, model, tci.output)
        dose = regimen.doses[dose_index]
        if field_name == "count":
            if isinstance(text, bool) or not isinstance(text, int) or text < 1:
                check.fail(key, "must be an integer >= 1 (a number of doses)", value=text)
            value = float(text)
        elif isinstance(text, (int, float)) and not isinstance(text, bool):
            example = {"amount": "0.5 mg/kg", "rate": "0.2 mg/kg/h"}.get(field_name, "30 min")
            check.fail(key, f"must carry a unit, e.g. '{example}'", value=text)
        elif field_name in TIME_FIELDS:
            value = _magnitude(check, key, text, model.units.get("time", "h"), positive=step or field_name == "every")
        elif not step and _is_zero(text):  # a dose of nothing: the candidate leaves the dose out
            value = 0.0 * _value(check, key, f"1 {_NUMBER.match(text).group(2)}", model, regimen,
                                 [(dose_index, field_name)])
        else:
            unit = _dose_unit(model, dose) + (f"/{model.units.get('time', 'h')}" if field_name == "rate" else "")
            value, per_kg = _amount(check, key, text, unit, model.drugs.get(dose.drug or dose.target, {}),
                                    rate=field_name == "rate")
            if per_kg != dose.per_weight:
                example = f"'0.1 {unit}/kg'" if dose.per_weight else f"'10 {unit}'"
                given = "per kg of body weight" if dose.per_weight else "not per body weight"
                check.fail(key, f"unit mismatch: doses[{dose_index}] is {given}; give "
                                f"{'a unit per kg' if dose.per_weight else 'an absolute unit'}, e.g. {example}",
                           value=text)
        if found is not None and abs(value - found) > 1e-12 * max(abs(found), 1.0):
            check.fail(key, "the dose fields a variable sets must share one unit", value=text)
        found = value
    return found


def _amount(check, key, text, unit, drug, rate=False):
    """(magnitude in `unit` or `unit`/kg, per kg?) by the scenario's dose rules, errors at `key`."""
    try:
        return parse_amount(text, unit, drug, key, rate=rate)
    except PkpdError as error:
        check.refuse(key, error)


def _magnitude(check, key, text, unit, positive=False, molar_mass=None):
    """A quantity's magnitude in `unit`, errors at `key`."""
    from ._units import magnitude_in, parse_quantity

    try:
        return magnitude_in(parse_quantity(text, key, positive=positive), unit, key, molar_mass=molar_mass)
    except PkpdError as error:
        check.refuse(key, error)


def _schedule_doses(model, tci, doses):
    """A TCI schedule's infusions as scenario dose tables: rates in the drug's unit (per kg) per time unit."""
    time_unit = model.units.get("time", "h")
    unit = model.compartment_units.get(model.drugs.get(tci.drug, {}).get("compartment", tci.drug)) \
        or model.units.get("amount", "mg")
    rate_unit = f"{unit}{'/kg' if tci.per_weight else ''}/{time_unit}"

    def when(value):   # minutes when the model counts hours, so that steps of minutes read as written
        return f"{value * 60:.10g} min" if time_unit == "h" else f"{value:.10g} {time_unit}"

    return [{"drug": tci.drug, "rate": f"{dose.rate:.10g} {rate_unit}", "start": when(dose.time),
             "duration": when(dose.duration)} for dose in doses]


def _is_zero(text):
    """Whether `text` is a quantity whose number is 0 ('0 mg/kg')."""
    match = _NUMBER.match(text) if isinstance(text, str) else None
    return match is not None and float(match.group(1)) == 0.0


def _display(written, field_name):
    """(unit text, model value of one unit) from how the user wrote values: ('10 min', 1/6 h) -> ('min', 1/60).

    `written` holds (text, value in the model's unit) pairs; the first with a non-zero number decides.
    """
    if field_name == "count":
        return "", 1.0
    for text, value in written:
        match = _NUMBER.match(str(text))
        if match and float(match.group(1)) != 0:
            return match.group(2), value / float(match.group(1))
    match = _NUMBER.match(str(written[0][0]))
    return (match.group(2) if match else ""), 1.0


def _metric(check, key, spec, kind, model, regimen, span, kind_key=None):
    kind_key = kind_key or f"{key}.metric"
    if kind not in METRICS:
        check.fail(kind_key, f"unknown metric {kind!r}{suggestion(str(kind), METRICS, 'metrics')}")
    output = spec.get("output")
    if kind == "adverse_event_rate" and output is None:
        events = [name for name, o in model.outputs.items() if o.role == "adverse_event_probability"]
        if not events:
            check.fail(f"{key}.output", f"model {model.name!r} has no output of role adverse_event_probability")
        output = events[0]
    if kind in ("total_dose",):
        if output is not None:
            check.fail(f"{key}.output", "total_dose takes a drug, not an output")
    elif output is None:
        check.fail(f"{key}.output", f"is required for {kind}")
    elif output not in model.outputs:
        check.fail(f"{key}.output", f"model {model.name!r} has no output {output!r}"
                                    f"{suggestion(str(output), list(model.outputs), 'outputs')}")
    elif kind == "adverse_event_rate" and model.outputs[output].role != "adverse_event_probability":
        check.fail(f"{key}.output", f"{output!r} has role {model.outputs[output].role!r}, not "
                                    f"adverse_event_probability")
    window = None
    if kind in ("fraction_within", "time_within"):
        if "window" not in spec:
            check.fail(f"{key}.window", f"is required for {kind}: [low, high]")
        window = _window_bounds(check, f"{key}.window", spec["window"], model, output)
    elif "window" in spec:
        check.fail(f"{key}.window", "only fraction_within and time_within take a window")
    interval = span
    if "interval" in spec:
        if kind == "total_dose":
            check.fail(f"{key}.interval", "total_dose counts every dose of the regimen; it takes no interval")
        interval = _interval(check, f"{key}.interval", spec["interval"], model, span)
    statistic = _statistic(check, key, spec, kind)
    drug = spec.get("drug")
    if kind == "total_dose":
        drugs = sorted({dose.drug or dose.target for dose in regimen.doses})
        if drug is None:
            if len(drugs) != 1:
                check.fail(f"{key}.drug", f"is required: the arm doses {', '.join(drugs) or 'nothing'}")
            drug = drugs[0]
        elif drug not in drugs:
            check.fail(f"{key}.drug", f"the arm doses no {drug!r}{suggestion(str(drug), drugs, 'it doses')}")
    elif drug is not None:
        check.fail(f"{key}.drug", "only total_dose takes a drug")
    if "unit" in spec and kind != "total_dose":
        check.fail(f"{key}.unit", "only total_dose takes a unit (mg or mg/kg)")
    unit = _metric_unit(kind, model, output)
    per_weight = False
    if kind == "total_dose":
        doses = [d for d in regimen.doses if (d.drug or d.target) == drug]
        per_weight = all(d.per_weight for d in doses)
        unit = _dose_unit(model, doses[0]) + ("/kg" if per_weight else "")
    name = spec.get("name") or "_".join(p for p in (kind, None if statistic in ("mean", "fraction") else statistic,
                                                    output) if p)
    if not isinstance(name, str) or not name.strip():
        check.fail(f"{key}.name", "must be a non-empty string", value=name)
    metric = Metric(kind=kind, name=name, output=output, window=window, interval=interval, statistic=statistic,
                    drug=drug, per_weight=per_weight, unit=unit)
    return dataclasses.replace(metric, label=_label(metric, model, span))


def _with_limit_unit(check, key, spec, metric, model, regimen):
    """A total_dose metric counted per kg or not as its limit or ``unit`` says ("2 mg/kg", "150 mg")."""
    if metric.kind != "total_dose":
        return metric
    texts = [spec[k] for k in ("unit", "at_least", "at_most") if k in spec]
    if not texts:
        return metric
    where = f"{key}.{next(k for k in ('unit', 'at_least', 'at_most') if k in spec)}"
    text = f"1 {texts[0]}" if "unit" in spec else texts[0]
    dose = next(d for d in regimen.doses if (d.drug or d.target) == metric.drug)
    _, per_weight = _amount(check, where, text, _dose_unit(model, dose), model.drugs.get(metric.drug, {}))
    unit = _dose_unit(model, dose) + ("/kg" if per_weight else "")
    changed = dataclasses.replace(metric, per_weight=per_weight, unit=unit)
    return dataclasses.replace(changed, label=_label(changed, model, None))


def _dose_unit(model, dose):
    drug = model.drugs.get(dose.drug or dose.target, {})
    compartment = drug.get("compartment", dose.target)
    return model.compartment_units.get(compartment) or model.units.get("amount", "mg")


def _metric_unit(kind, model, output):
    if kind in FRACTION_METRICS:
        return "1"
    if kind == "total_dose":
        return ""
    unit = model.outputs[output].unit
    return f"{unit}*{model.units.get('time', 'h')}" if kind == "auc" else unit


def _statistic(check, key, spec, kind):
    if kind == "fraction_within":
        if "statistic" in spec:
            check.fail(f"{key}.statistic", "fraction_within is a fraction of subjects; it takes no statistic")
        return "fraction"
    if kind in ("adverse_event_rate", "total_dose"):
        if "statistic" in spec and spec["statistic"] != "mean":
            check.fail(f"{key}.statistic", f"{kind} is a mean over subjects", value=spec["statistic"])
        return "mean"
    statistic = spec.get("statistic", "mean" if kind == "time_within" else "median")
    if statistic in ("mean", "median"):
        return statistic
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", str(statistic))
    if match is None or not 0 <= float(match.group(1)) <= 100:
        check.fail(f"{key}.statistic", "must be 'mean', 'median' or a percentile such as 'p95'", value=statistic)
    return statistic


def _level(check, key, text, model, output):
    unit = model.outputs[output].unit
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        check.fail(key, f"must carry a unit, e.g. '10 {unit}'", value=text)
    molar_mass = next((d.get("molar_mass") for d in model.drugs.values() if d.get("molar_mass")), None)
    return _magnitude(check, key, text, unit, molar_mass=molar_mass)


def _window_bounds(check, key, pair, model, output):
    if not (isinstance(pair, list) and len(pair) == 2):
        check.fail(key, "must be [low, high]", value=pair)
    low, high = (_level(check, f"{key}[{i}]", text, model, output) for i, text in enumerate(pair))
    if not low < high:
        check.fail(key, f"low ({pair[0]}) must be below high ({pair[1]})")
    return (low, high)


def _interval(check, key, pair, model, span):
    if not (isinstance(pair, list) and len(pair) == 2):
        check.fail(key, "must be [start, stop]", value=pair)
    unit = model.units.get("time", "h")
    bounds = [_magnitude(check, f"{key}[{index}]", text, unit) for index, text in enumerate(pair)]
    if not bounds[0] < bounds[1]:
        check.fail(key, "start must be before stop", value=pair)
    if bounds[0] < span[0] - 1e-9 or bounds[1] > span[1] + 1e-9:
        check.fail(key, f"must lie within the output times ({span[0]:g} to {span[1]:g} {unit})", value=pair)
    return (bounds[0], bounds[1])


def _limit(check, key, text, metric, model, regimen):
    """A constraint's limit in the metric's unit: a fraction (0.9 or '90 %'), a concentration, an AUC, a dose."""
    if metric.kind in FRACTION_METRICS:
        if isinstance(text, str) and text.strip().endswith("%"):
            try:
                value = float(text.strip()[:-1]) / 100.0
            except ValueError:
                check.fail(key, "must be a fraction such as 0.9 or '90 %'", value=text)
        elif isinstance(text, (int, float)) and not isinstance(text, bool):
            value = float(text)
        else:
            check.fail(key, "must be a fraction such as 0.9 or '90 %'", value=text)
        if not 0 <= value <= 1:
            check.fail(key, "must be a fraction in [0, 1] (or 0-100 %)", value=text)
        return value
    if metric.kind == "total_dose":
        dose = next(d for d in regimen.doses if (d.drug or d.target) == metric.drug)
        return _amount(check, key, text, _dose_unit(model, dose), model.drugs.get(metric.drug, {}))[0]
    if metric.kind == "auc":
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            check.fail(key, f"must carry a unit, e.g. '100 {metric.unit}'", value=text)
        return _magnitude(check, key, text, metric.unit)
    return _level(check, key, text, model, metric.output)


def _label(metric, model, span):
    """'fraction of subjects within 100-200 ng/mL of KETAMINE_VEN (ketamine, racemic, venous plasma) from
    20 min to 4 h'."""
    time_unit = model.units.get("time", "h")
    during = ""
    if metric.interval is not None and (span is None or metric.interval != span):
        during = f" from {_time_text(metric.interval[0], time_unit)} to {_time_text(metric.interval[1], time_unit)}"
    what = ""
    if metric.output is not None:
        spec = model.outputs[metric.output]
        kind = f", {spec.analyte}, {spec.matrix}" if spec.role == "concentration" else ""
        what = f"{metric.output}{kind}"
    if metric.kind == "fraction_within":
        low, high = metric.window
        return f"within {low:g}-{high:g} {model.outputs[metric.output].unit} ({what}){during}"
    if metric.kind == "time_within":
        low, high = metric.window
        return (f"{metric.statistic} fraction of the time within {low:g}-{high:g} "
                f"{model.outputs[metric.output].unit} ({what}){during}")
    if metric.kind == "adverse_event_rate":
        return f"expected {model.outputs[metric.output].event} ({metric.output}){during}"
    if metric.kind == "total_dose":
        return f"total {metric.drug} ({metric.unit})"
    above = (f" above baseline {model.outputs[metric.output].baseline}"
             if metric.kind == "auc" and model.outputs[metric.output].baseline else "")
    return f"{metric.statistic} {metric.kind}{above} of {what}{during}"


def _time_text(value, unit):
    if unit == "h" and 0 < value < 1:
        return f"{value * 60:.4g} min"
    return f"{value:.4g} {unit}"


def _value_text(metric, value):
    if metric.unit == "1":
        return f"{100 * value:.1f} %"
    return f"{value:.4g} {metric.unit}"


# --- candidates ------------------------------------------------------------------------------------

def _candidate(regimen, variables, index):
    """The template regimen with each variable's fields at its value of lattice point `index`."""
    changes = {}
    for variable, position in zip(variables, index):
        value = variable.values[position]
        for dose_index, field_name in variable.targets:
            if dose_index is None:   # the TCI target: see _Lattice.regimen_of
                continue
            changes.setdefault(dose_index, {})[DOSE_FIELDS[field_name]] = (
                int(round(value)) if field_name == "count" else float(value))
    doses = [dataclasses.replace(dose, **changes[i], written="") if i in changes else dose
             for i, dose in enumerate(regimen.doses)
             if not (changes.get(i, {}).get("amount") == 0.0 or changes.get(i, {}).get("rate") == 0.0)]
    return Regimen(doses, name=regimen.name)


def evaluate(spec, model, regimen, population, times, *, options, executor=None):
    """Simulate one regimen and measure every metric of `spec`.

    Returns
    -------
    values : dict of str to float
        The population value of each metric.
    per_subject : dict of str to ndarray, shape (n_subjects,)
        What the population value summarises (for bootstrap intervals).
    """
    from ._simulate import simulate

    span = (float(times[0]), float(times[-1]))
    kinks = continuous.kinks_of(regimen, *span)
    dense = [m.interval for m in spec.metrics if m.kind in ("fraction_within", "time_within")]
    grid = continuous.evaluation_times(times, kinks, dense)
    grid = grid[(grid >= span[0]) & (grid <= span[1])]
    result = simulate(model, regimen, population, grid, progress=False, executor=executor, **options)
    values, per_subject = {}, {}
    for metric in spec.metrics:
        subjects = _per_subject(metric, model, regimen, result, grid, kinks, population)
        per_subject[metric.name] = subjects
        values[metric.name] = float(_reduce(metric.statistic, subjects[None, :])[0])
    return values, per_subject


def _per_subject(metric, model, regimen, result, grid, kinks, population):
    if metric.kind == "total_dose":
        doses = Regimen([d for d in regimen.doses if (d.drug or d.target) == metric.drug])
        weights = _weights(result, population)
        amounts = expand(model, doses, weights if weights is not None else np.ones(result.values.shape[0]))[2]
        total = amounts.sum(axis=1)
        return total / weights if metric.per_weight else total
    values = result.output(metric.output)
    start, stop = metric.interval
    if metric.kind in ("fraction_within", "time_within"):
        stays, fraction = continuous.window_metrics(grid, values, *metric.window, start, stop, kinks)
        return stays.astype(float) if metric.kind == "fraction_within" else fraction
    if metric.kind in ("cmax", "cmin", "adverse_event_rate"):
        low, high = continuous.extremes(grid, values, start, stop, kinks)
        return low if metric.kind == "cmin" else high
    baseline = result.baseline(metric.output) if metric.kind == "auc" else None
    if baseline is not None:   # an endogenous substance: its AUC above the baseline, as in every table of a run
        values = values - baseline[:, None]
    return exposure_metrics(grid, values, interval=(start, stop))[metric.kind]


def _weights(result, population):
    """Each subject's WT as simulate used it: the model's input, else the population's covariate (a model
    that uses WT only for doses per kg), else None."""
    if "WT" in result.parameters.columns:
        return result.parameters["WT"].to_numpy(float)
    if "WT" in population.covariates:
        return population.covariates["WT"].to_numpy(float)
    return None


def _reduce(statistic, values):
    """`statistic` over subjects (the last axis) of `values`, shape (..., n_subjects)."""
    if statistic in ("mean", "fraction"):
        return values.mean(axis=-1)
    if statistic == "median":
        return np.median(values, axis=-1)
    return np.percentile(values, float(statistic[1:]), axis=-1)


# --- the search ------------------------------------------------------------------------------------

@dataclass
class SearchResult:
    """What a search found.

    Attributes
    ----------
    table : pandas.DataFrame
        Every candidate evaluated, in order: ``candidate``, ``stage``, one column per variable
        (``NAME (unit)``), per metric its value (``NAME (unit)``) and, where computed, its 95 %
        Monte Carlo interval (``NAME low``, ``NAME high``), then ``feasible``, ``violation``,
        ``robust`` (every constraint holds over its whole interval; final candidates only),
        ``final`` and ``chosen``.
    spec : SearchSpec
    chosen : int or None
        Row of the chosen candidate; None when no candidate meets the limits.
    closest : int
        Row of the chosen candidate, or of the one closest to the limits.
    regimen : Regimen
        The regimen of `closest`.
    values : dict
        Variable name -> value (in its unit) of `closest`.
    message : str
        The answer in one line.
    notes : list of str
        What the user should know (a choice at the edge of a range, the budget spent).
    strategy : str
    seconds : float
    subjects : int
    """
    table: pd.DataFrame
    spec: SearchSpec
    chosen: int | None
    closest: int
    regimen: Regimen
    values: dict
    message: str
    notes: list = field(default_factory=list)
    strategy: str = ""
    seconds: float = 0.0
    subjects: int = 0

    @property
    def feasible(self):
        return self.chosen is not None

    def figures(self, caption_end=""):
        """Yield ``(stem, figure, caption)`` of the search's figures (for :func:`pkpd.figure_set`): the objective
        over the grid, and the trade-off of attainment and adverse events when the search has both."""
        from .figures.search import search_caption, search_figure, tradeoff_caption, tradeoff_figure

        yield "search", search_figure(self), f"{search_caption(self)} {caption_end}".strip()
        tradeoff = tradeoff_figure(self)
        if tradeoff is not None:
            yield "search_tradeoff", tradeoff, f"{tradeoff_caption(self)} {caption_end}".strip()

    def manifest_record(self):
        """The search as ``manifest.json`` records it."""
        row = self.table.iloc[self.closest]
        metrics = {}
        for metric in self.spec.metrics:
            column = metric.column
            metrics[metric.name] = {"value": float(row[column]), "unit": _unit_text(metric.unit),
                                    "low": _finite(row.get(f"{metric.name} low")),
                                    "high": _finite(row.get(f"{metric.name} high")), "label": metric.label}
        return {
            "arm": self.spec.arm,
            "variables": {v.name: {"set": v.paths, "unit": v.unit,
                                   "values": [v.shown(i) for i in range(v.values.size)]} for v in self.spec.variables},
            "constraints": [c.text() for c in self.spec.constraints],
            "objective": f"{'minimise' if self.spec.sense > 0 else 'maximise'} {self.spec.objective.label}",
            "strategy": self.strategy, "budget": self.spec.budget, "candidates": int(len(self.table)),
            "subjects": self.subjects, "feasible": self.feasible,
            "chosen" if self.feasible else "closest": {"values": self.values, "metrics": metrics,
                                                       "robust": bool(row["robust"])},
            "interval_level": continuous.LEVEL, "answer": self.message, "notes": self.notes,
            "wall_time_s": round(self.seconds, 3),
        }


def _finite(value):
    return None if value is None or not np.isfinite(value) else float(value)


def _unit_text(unit):
    return "fraction" if unit == "1" else unit


class _Lattice:
    """The evaluated candidates of a search, keyed by lattice point."""

    def __init__(self, spec, model, regimen, population, times, options, executor, bar):
        self.spec, self.model, self.regimen = spec, model, regimen
        self.population, self.times, self.options, self.executor = population, times, options, executor
        self.bar = bar
        self.rows, self.points, self.per_subject = [], {}, []
        self.shape = tuple(v.values.size for v in spec.variables)
        self.planner = TciPlanner(model, spec.tci, options, key="search.tci") if spec.tci is not None else None

    @property
    def spent(self):
        return len(self.rows) >= self.spec.budget

    def evaluate(self, point, stage):
        if point in self.points or self.spent:
            return
        regimen = self.regimen_of(point)
        values, per_subject = evaluate(self.spec, self.model, regimen, self.population, self.times,
                                       options=self.options, executor=self.executor)
        violation = sum(c.violation(values[c.metric.name]) for c in self.spec.constraints)
        self.points[point] = len(self.rows)
        self.rows.append({"point": point, "stage": stage, "values": values, "violation": violation})
        self.per_subject.append(per_subject)
        self.bar.update(1)

    def regimen_of(self, point):
        """The regimen of lattice point `point`: the template's doses with the variables' values, then the
        target-controlled infusion (if any) for its target, computed for the typical patient."""
        regimen = _candidate(self.regimen, self.spec.variables, point)
        if self.planner is None:
            return regimen
        target = self.spec.tci_target
        for variable, position in zip(self.spec.variables, point):
            if (None, "target") in variable.targets:
                target = float(variable.values[position])
        return self.planner.regimen(target, regimen, name=regimen.name)

    def rank(self, row):
        """Sort key: feasible first, by objective; then by violation; ties by lattice order."""
        objective = self.spec.sense * row["values"][self.spec.objective.name]
        return (0, objective, row["point"]) if row["violation"] == 0 else (1, row["violation"], row["point"])

    def best(self, count):
        return sorted(self.rows, key=self.rank)[:count]


def _coarse_axes(shape, budget):
    """Per variable, the lattice indices of a coarse grid of at most `budget` points (ends included)."""
    strides = [1] * len(shape)

    def axis(n, stride):
        return sorted(set(range(0, n, stride)) | {n - 1})

    while math.prod(len(axis(n, s)) for n, s in zip(shape, strides)) > budget:
        widest = max(range(len(shape)), key=lambda i: len(axis(shape[i], strides[i])))
        if len(axis(shape[widest], strides[widest])) <= 2:
            break
        strides[widest] *= 2
    return [axis(n, s) for n, s in zip(shape, strides)], strides


def _run_lattice(lattice):
    """Evaluate the lattice (all of it, or a coarse grid then refinement); return the strategy text."""
    spec, shape = lattice.spec, lattice.shape
    if spec.size <= spec.budget:
        for point in itertools.product(*(range(n) for n in shape)):
            lattice.evaluate(point, "grid")
        return f"every point of the {' x '.join(map(str, shape))} grid ({spec.size} candidates)"
    axes, strides = _coarse_axes(shape, max(1, spec.budget // 2))
    for point in itertools.product(*axes):
        lattice.evaluate(point, "coarse")
    coarse = len(lattice.rows)
    previous = None
    while not lattice.spent:
        strides = [max(1, -(-s // 2)) for s in strides]
        anchors = [row["point"] for row in lattice.best(ANCHORS)]
        for anchor in anchors:
            for offset in itertools.product(*((-s, 0, s) for s in strides)):
                point = tuple(a + o for a, o in zip(anchor, offset))
                if all(0 <= p < n for p, n in zip(point, shape)):
                    lattice.evaluate(point, "refine")
        current = [row["point"] for row in lattice.best(ANCHORS)]
        if all(s == 1 for s in strides) and current == previous:
            break
        previous = current
    converged = "" if not lattice.spent else "; the budget was spent before the refinement converged"
    return (f"coarse grid of {coarse} of the {' x '.join(map(str, shape))} grid ({spec.size:,} points), then "
            f"refinement around the best {ANCHORS} ({len(lattice.rows) - coarse} more){converged}")


def search(model: "Model | str | Path | Scenario", regimen: Regimen | Sequence[Dose] | None = None,
           population: Population | int | None = None, times: ArrayLike | None = None, *,
           variables: Mapping[str, Mapping[str, Any]] | None = None,
           constraints: Sequence[Mapping[str, Any]] = (), objective: Mapping[str, Any] | None = None,
           budget: int = DEFAULT_BUDGET, tci: Mapping[str, Any] | None = None, method: str = "auto",
           rtol: float | None = None, atol: float | None = None, variability: bool = True,
           progress: bool | None = None, executor: Any = None) -> "SearchResult":
    """Search doses, rates and intervals for the regimen that best meets population targets within limits.

    Parameters
    ----------
    model : Model or str, or Scenario or path
        A model (then give `regimen`, `population`, `times`, `variables`), or a scenario with a
        ``[search]`` section (its arm, population, output times and solver are used).
    regimen : Regimen or list of Dose
        The template: the variables change fields of its doses.
    population : Population
        The virtual patients every candidate is simulated in (common random numbers).
    times : array_like
        Output times (model time unit): the default interval of every metric.
    variables : dict
        Name -> ``{"set": "doses[0].amount", "from": "0.1 mg/kg", "to": "0.5 mg/kg", "step":
        "0.05 mg/kg"}`` (or ``"values": [...]``), as in a scenario's ``[search.variables]``.
    constraints : list of dict
        ``{"metric": "fraction_within", "output": "CP", "window": ["1 mg/L", "2 mg/L"], "interval":
        ["1 h", "8 h"], "at_least": "90 %"}``, ``{"metric": "cmax", "output": "CP", "statistic":
        "p95", "at_most": "3 mg/L"}``, ``{"metric": "adverse_event_rate", "at_most": 0.25}``, ...
    objective : dict, optional
        ``{"minimise": "total_dose"}`` (the default), ``{"maximise": "time_within", "output": ...}``.
    budget : int
        Most candidates evaluated.
    tci : dict, optional
        A target-controlled infusion added to every candidate, as a scenario's ``[search.tci]``:
        ``{"drug": "ketamine", "output": "KETAMINE_VEN", "duration": "4 h", "step": "5 min"}`` and
        ``"target": "150 ng/mL"`` or a variable with ``"set": "tci.target"``.
    method, rtol, atol, variability, executor
        As in :func:`pkpd.simulate` (`executor` runs each candidate's chunks of subjects).
    progress : bool, optional
        A progress bar over candidates (by default when the search lasts over 2 s).

    Returns
    -------
    SearchResult

    Raises
    ------
    PkpdError
        A bad specification, in one line naming the key path. A problem no candidate
        solves is not an error: ``result.chosen`` is None and ``result.message`` names
        the closest candidate.

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> found = pkpd.search("pk1cmt", [pkpd.Dose(100.0, "CENT")], pkpd.Population(20, seed=1),
    ...                     np.arange(0.0, 25.0, 1.0),
    ...                     variables={"dose": {"set": "doses[0].amount", "from": "50 mg", "to": "500 mg",
    ...                                         "step": "50 mg"}},
    ...                     constraints=[{"metric": "cmin", "output": "CP", "at_least": "1 mg/L"}])
    >>> found.values
    {'dose': 100.0}
    """
    from .model import Model, load_model
    from ._options import DEFAULT

    if regimen is None:
        return search_scenario(model, progress=progress, executor=executor)
    if not isinstance(model, Model):
        model = load_model(model if isinstance(model, (str, Path)) else str(model))
    if not isinstance(regimen, Regimen):
        regimen = Regimen(list(regimen))
    times = np.asarray(times, dtype=float)
    table = {"variables": variables, "constraints": list(constraints), "budget": budget}
    if objective is not None:
        table["objective"] = objective
    if tci is not None:
        table["tci"] = dict(tci)
    spec = parse_search(table, model, regimen, times, arm=regimen.name)
    options = dict(method=method, rtol=DEFAULT.rtol if rtol is None else rtol,
                   atol=DEFAULT.atol if atol is None else atol, variability=variability)
    return run_search(spec, model, regimen, population, times, options=options, progress=progress,
                      executor=executor)


def search_scenario(scenario, *, population=None, progress=None, executor=None):
    """The search of a scenario's ``[search]`` section (a Scenario or a path)."""
    from ._scenario import load_scenario

    if not hasattr(scenario, "search"):
        scenario = load_scenario(scenario)
    if scenario.search is None:
        raise ScenarioError("has no [search] section", file=scenario.path.name)
    if population is None:
        population = Population(scenario.n, seed=scenario.seed, **scenario.population_spec)
    arm = next(a for a in scenario.arms if a.name == scenario.search.arm)
    options = dict(method=scenario.solver["method"], rtol=scenario.solver["rtol"], atol=scenario.solver["atol"],
                   variability=scenario.variability)
    return run_search(scenario.search, arm.model or scenario.model, arm.regimen, population, scenario.times,
                      options=options, progress=progress, executor=executor)


def search_of(scenario, check):
    """The ``[search]`` section of a loaded scenario, checked (``check``: the scenario's checker)."""
    table = scenario.raw["search"]
    if not isinstance(table, dict):
        check.fail("search", "must be a table", value=table)
    names = [arm.name for arm in scenario.arms]
    name = table.get("arm")
    if name is None:
        if len(names) != 1:
            check.fail("search.arm", f"is required: the scenario has {len(names)} arms; name the one whose doses "
                                     f"are searched ({', '.join(names)})")
        name = names[0]
    elif name not in names:
        check.fail("search.arm", f"no arm named {name!r}{suggestion(str(name), names, 'arms')}")
    arm = next(a for a in scenario.arms if a.name == name)
    return parse_search(table, arm.model or scenario.model, arm.regimen, scenario.times, arm=name,
                        file=scenario.path.name, error=ScenarioError)


def search_resources(scenario):
    """Memory a scenario's search holds at its peak and a rough time (see :func:`estimate_search`); the
    chosen regimen is then simulated as one more arm, which is counted too.

    Returns
    -------
    bytes : float
    seconds : float
    what : str
        ", search of 500 candidates x 1,000 subjects x 310 times", for the refusal message.
    """
    from ._simulate import estimate_memory

    spec = scenario.search
    arm = next(a for a in scenario.arms if a.name == spec.arm)
    model = arm.model or scenario.model
    size, seconds, what, doses = estimate_search(spec, model, arm.regimen, scenario.n, scenario.times.size)
    chosen, chosen_seconds = estimate_memory(model, scenario.n, scenario.times.size, doses)
    return size + chosen, seconds + chosen_seconds, f", {what}"


def estimate_search(spec, model, regimen, n, n_output_times):
    """Bytes a search holds at its peak and a rough time, from the sizes alone (nothing is simulated).

    The candidates are simulated one at a time (all subjects at every output time, the dose and
    infusion-end times and the dense grid of each window), their per-subject metrics kept for
    the intervals (candidates x subjects x metrics), the bootstrap's resampled subjects made once.

    Returns
    -------
    bytes, seconds : float
    what : str
        "search of 500 candidates x 1,000 subjects x 310 times".
    doses : int
        The most administrations of a candidate (either end of every range, and the TCI's steps).
    """
    from ._simulate import estimate_memory

    candidates = min(spec.size, spec.budget)
    ends = [tuple(v.values.size - 1 for v in spec.variables), (0,) * len(spec.variables)]
    doses = max(sum(d.administrations() for d in _candidate(regimen, spec.variables, point).doses)
                for point in ends) + (spec.tci.steps if spec.tci is not None else 0)
    windows = {m.interval for m in spec.metrics if m.kind in ("fraction_within", "time_within")}
    n_times = n_output_times + 2 * doses + len(windows) * (continuous.POINTS_PER_INTERVAL + 1)
    one, seconds = estimate_memory(model, n, n_times, doses)
    kept = 8.0 * candidates * n * len(spec.metrics) + 16.0 * continuous.BOOTSTRAP_RESAMPLES * n
    return (one + kept, seconds * candidates,
            f"search of {candidates:,} candidates x {n:,} subjects x {n_times:,} times", doses)


def run_search(spec, model, regimen, population, times, *, options, progress=None, executor=None):
    """Evaluate the lattice of `spec` on `population` and choose; see :func:`search`."""
    from tqdm.auto import tqdm

    from .model import load_model

    from ._simulate import engine_variants

    started = time.perf_counter()
    model = load_model(model)
    if options.get("method", "auto") == "auto":
        model = engine_variants(model)[-1]  # what simulate would run, made once rather than per candidate
    if isinstance(population, int):
        population = Population(population, seed=0)
    size, seconds, what, _ = estimate_search(spec, model, regimen, population.subject_ids.size, len(times))
    check_memory(size, f"regimen {what}", None, seconds)
    bar = tqdm(total=min(spec.size, spec.budget), unit="candidate", delay=2.0, disable=(progress is False),
               leave=False, desc="searching regimens")
    try:
        lattice = _Lattice(spec, model, regimen, population, times, options, executor, bar)
        strategy = _run_lattice(lattice)
    finally:
        bar.close()
    return _conclude(lattice, strategy, time.perf_counter() - started, population)


def _conclude(lattice, strategy, seconds, population):
    spec = lattice.spec
    ranked = lattice.best(len(lattice.rows))
    finals = ranked[:FINALS]
    top = finals[0]
    chosen = lattice.points[top["point"]] if top["violation"] == 0 else None
    closest = lattice.points[top["point"]]
    n = population.subject_ids.size
    seed = int(population.seed) if np.isscalar(population.seed) else 0
    indices = continuous.resample_indices(n, seed)
    table = _table(lattice, {lattice.points[row["point"]] for row in finals}, indices, n)
    table.loc[closest, "chosen"] = chosen is not None
    values = {v.name: v.shown(i) for v, i in zip(spec.variables, top["point"])}
    regimen = lattice.regimen_of(top["point"])
    notes = _edge_notes(spec, top["point"])
    if lattice.spent and spec.size > spec.budget:
        notes.append(f"the budget of {spec.budget} candidates was spent; raise search.budget for a finer answer")
    message = _answer(spec, table.iloc[closest], values, chosen is not None)
    return SearchResult(table=table, spec=spec, chosen=chosen, closest=closest, regimen=regimen, values=values,
                        message=message, notes=notes, strategy=strategy, seconds=seconds, subjects=int(n))


def _table(lattice, finals, indices, n):
    spec = lattice.spec
    records = []
    for number, row in enumerate(lattice.rows):
        record = {"candidate": number + 1, "stage": row["stage"]}
        for variable, position in zip(spec.variables, row["point"]):
            record[variable.column] = variable.shown(position)
        for metric in spec.metrics:
            value = row["values"][metric.name]
            record[metric.column] = value
            low = high = np.nan
            subjects = lattice.per_subject[number][metric.name]
            if metric.is_fraction_of_subjects:
                low, high = (float(x) for x in continuous.wilson_interval(round(value * n), n))
            elif number in finals:
                low, high = continuous.bootstrap_interval(subjects, lambda x, s=metric.statistic: _reduce(s, x),
                                                          indices)
            record[f"{metric.name} low"] = low
            record[f"{metric.name} high"] = high
        record["feasible"] = row["violation"] == 0
        record["violation"] = row["violation"]
        record["robust"] = (number in finals and all(_robust(c, record) for c in spec.constraints))
        record["final"] = number in finals
        record["chosen"] = False
        records.append(record)
    return pd.DataFrame(records)


def _robust(constraint, record):
    """Whether a constraint holds over the whole Monte Carlo interval of its metric."""
    name = constraint.metric.name
    low, high = record[f"{name} low"], record[f"{name} high"]
    if not (np.isfinite(low) and np.isfinite(high)):
        return False
    return ((constraint.at_least is None or low >= constraint.at_least)
            and (constraint.at_most is None or high <= constraint.at_most))


def _edge_notes(spec, point):
    notes = []
    for variable, position in zip(spec.variables, point):
        if variable.values.size < 2:
            continue
        if position in (0, variable.values.size - 1):
            side = "lower" if position == 0 else "upper"
            notes.append(f"{variable.name} = {variable.text(position)} is at the {side} end of its range; the best "
                         f"regimen may lie beyond it: widen search.variables.{variable.name}")
    return notes


def _answer(spec, row, values, feasible):
    """'loading 0.25 mg/kg, rate 0.3 mg/kg/h: 95.3 % [93.9-96.5] within 100-200 ng/mL (...) ...'."""
    settings = ", ".join(f"{v.name} {v.text(_position(v, values[v.name]))}" for v in spec.variables)
    parts = []
    for metric in spec.metrics:
        value, low, high = row[metric.column], row[f"{metric.name} low"], row[f"{metric.name} high"]
        interval = ""
        if np.isfinite(low) and np.isfinite(high):
            if metric.unit == "1":
                interval = f" [{100 * low:.1f}-{100 * high:.1f}]"
            else:
                interval = f" [{low:.4g}-{high:.4g}]"
        parts.append(f"{_value_text(metric, value)}{interval} {metric.label}")
    text = f"{settings}: {'; '.join(parts)}"
    if feasible:
        return text
    broken = [c.text() for c in spec.constraints if c.violation(row[c.metric.column]) > 0]
    return f"no candidate within the limits; closest: {text} (misses {'; '.join(broken)})"


def _position(variable, shown):
    return int(np.argmin(np.abs(variable.values / variable.scale - shown)))


# --- a search inside ``pkpd run`` -----------------------------------------------------------------

def with_search_arm(scenario, result):
    """`scenario` with one more arm: the chosen regimen (or the closest, named so), simulated and
    reported like every other arm."""
    template = next(arm for arm in scenario.arms if arm.name == result.spec.arm)
    settings = ", ".join(f"{name} {value:g} {v.unit}".strip()
                         for (name, value), v in zip(result.values.items(), result.spec.variables))
    name = f"search best: {settings}" if result.feasible else f"search closest (misses the limits): {settings}"
    arm = dataclasses.replace(template, name=name, regimen=Regimen(result.regimen.doses, name=name),
                              description=result.message)
    return dataclasses.replace(scenario, arms=[*scenario.arms, arm])


def recommended_arm_toml(scenario, result):
    """The chosen regimen as a scenario ``[[arms]]`` table that ``pkpd run`` accepts as it is: the
    template arm's doses as written, the searched fields replaced; None when the arm is not
    written in the file (an arm of a sweep)."""
    import json

    written = next((arm for arm in scenario.raw.get("arms", [])
                    if isinstance(arm, dict) and arm.get("name") == result.spec.arm), None)
    if written is None:
        return None
    doses = [dict(dose) for dose in written.get("doses", [])]
    for variable in result.spec.variables:
        index = _position(variable, result.values[variable.name])
        for dose_index, key in variable.targets:
            if dose_index is not None:
                doses[dose_index][key] = (int(round(variable.values[index])) if key == "count"
                                          else variable.text(index))
    if result.spec.tci is not None:
        doses += _schedule_doses(scenario.model, result.spec.tci, result.regimen.doses[len(doses):])

    def value(item):
        return json.dumps(item, ensure_ascii=False) if isinstance(item, str) else str(item)

    lines = [f"# {'chosen' if result.feasible else 'closest (misses the limits)'} by the search of "
             f"{scenario.path.name}: {result.message}", "[[arms]]",
             f"name = {value('search: ' + result.spec.arm)}", "doses = ["]
    lines += ["    { " + ", ".join(f"{k} = {value(v)}" for k, v in dose.items()) + " },"
              for dose in doses if not any(_is_zero(dose.get(k)) for k in ("amount", "rate"))]
    lines.append("]")
    if isinstance(written.get("parameters"), dict):
        lines.append("parameters = { " + ", ".join(f"{k} = {value(v)}" for k, v in written["parameters"].items())
                     + " }")
    return "\n".join(lines) + "\n"
