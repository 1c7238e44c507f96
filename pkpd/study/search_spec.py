"""The ``[search]`` section of a scenario and the arguments of :func:`pkpd.search`, checked into a
frozen :class:`SearchSpec` (variables, constraints, objective, budget, a TCI), the candidate regimen
of a lattice point and the memory a search needs; :mod:`pkpd.study.search` evaluates the candidates and
chooses. Checked when a scenario loads, so this sits below the scenario layer."""

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from .._errors import PkpdError, ScenarioError, suggestion
from .._keys import Keys
from ..metrics import window as continuous
from ..events.regimen import Dose, Regimen
from .checks import parse_amount
from .tci import MAX_STEPS as TCI_MAX_STEPS, TciSpec, typical_weight

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
        return f"{self.name} ({unit_text(self.unit)})"

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
            parts.append(f">= {value_text(self.metric, self.at_least)}")
        if self.at_most is not None:
            parts.append(f"<= {value_text(self.metric, self.at_most)}")
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
            candidate(regimen, [variable], (index,))
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
        elif not step and is_zero(text):  # a dose of nothing: the candidate leaves the dose out
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
    from .._units import magnitude_in, parse_quantity

    try:
        return magnitude_in(parse_quantity(text, key, positive=positive), unit, key, molar_mass=molar_mass)
    except PkpdError as error:
        check.refuse(key, error)


def schedule_doses(model, tci, doses):
    """A TCI schedule's infusions as scenario dose tables: rates in the drug's unit (per kg) per time unit."""
    time_unit = model.units.get("time", "h")
    unit = model.compartment_units.get(model.drugs.get(tci.drug, {}).get("compartment", tci.drug)) \
        or model.units.get("amount", "mg")
    rate_unit = f"{unit}{'/kg' if tci.per_weight else ''}/{time_unit}"

    def when(value):   # minutes when the model counts hours, so that steps of minutes read as written
        return f"{value * 60:.10g} min" if time_unit == "h" else f"{value:.10g} {time_unit}"

    return [{"drug": tci.drug, "rate": f"{dose.rate:.10g} {rate_unit}", "start": when(dose.time),
             "duration": when(dose.duration)} for dose in doses]


def is_zero(text):
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
    if kind != "auc":
        return unit
    # a pain score's AUC in score x days, as every table of a run gives it (SimulationResult.exposure)
    return f"{unit}*{'d' if model.outputs[output].role == 'pain_score' else model.units.get('time', 'h')}"


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


def value_text(metric, value):
    if metric.unit == "1":
        return f"{100 * value:.1f} %"
    return f"{value:.4g} {metric.unit}"


# --- candidates ------------------------------------------------------------------------------------

def candidate(regimen, variables, index):
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


def unit_text(unit):
    return "fraction" if unit == "1" else unit


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
    from .._simulate import estimate_memory

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
    from .._simulate import estimate_memory

    candidates = min(spec.size, spec.budget)
    ends = [tuple(v.values.size - 1 for v in spec.variables), (0,) * len(spec.variables)]
    doses = max(sum(d.administrations() for d in candidate(regimen, spec.variables, point).doses)
                for point in ends) + (spec.tci.steps if spec.tci is not None else 0)
    windows = {m.interval for m in spec.metrics if m.kind in ("fraction_within", "time_within")}
    n_times = n_output_times + 2 * doses + len(windows) * (continuous.POINTS_PER_INTERVAL + 1)
    one, seconds = estimate_memory(model, n, n_times, doses)
    kept = 8.0 * candidates * n * len(spec.metrics) + 16.0 * continuous.BOOTSTRAP_RESAMPLES * n
    return (one + kept, seconds * candidates,
            f"search of {candidates:,} candidates x {n:,} subjects x {n_times:,} times", doses)
