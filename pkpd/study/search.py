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
:mod:`pkpd.study.tci`): the schedule that holds an output at a target for the typical patient,
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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .._errors import ScenarioError
from ..metrics import exposure_metrics, window as continuous
from ..population import Population
from ..events.regimen import Dose, Regimen, expand
from .._resources import check_memory
from .._units import convert
from .search_spec import (DEFAULT_BUDGET, SearchSpec, candidate, estimate_search, is_zero, parse_search,
                           schedule_doses, unit_text, value_text)
from .tci import TciPlanner

if TYPE_CHECKING:
    from ..model import Model
    from .scenario import Scenario

ANCHORS = 3                  # candidates whose neighbourhoods each refinement round evaluates
FINALS = 5                   # candidates that get bootstrap intervals


def evaluate(spec, model, regimen, population, times, *, options, executor=None):
    """Simulate one regimen and measure every metric of `spec`.

    Returns
    -------
    values : dict of str to float
        The population value of each metric.
    per_subject : dict of str to ndarray, shape (n_subjects,)
        What the population value summarises (for bootstrap intervals).
    """
    from .._simulate import simulate

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
    found = exposure_metrics(grid, values, interval=(start, stop))[metric.kind]
    time_unit = result.units["TIME"]
    if metric.kind == "auc" and model.outputs[metric.output].role == "pain_score" and time_unit != "d":
        found = found * convert(1.0, time_unit, "d")   # score x days, as SimulationResult.exposure gives it
    return found


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
        from ..figures.search import search_caption, search_figure, tradeoff_caption, tradeoff_figure

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
            metrics[metric.name] = {"value": float(row[column]), "unit": unit_text(metric.unit),
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
        regimen = candidate(self.regimen, self.spec.variables, point)
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
    from ..model import Model, load_model
    from .._options import DEFAULT

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
    from .scenario import load_scenario

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


def run_search(spec, model, regimen, population, times, *, options, progress=None, executor=None):
    """Evaluate the lattice of `spec` on `population` and choose; see :func:`search`."""
    from tqdm.auto import tqdm

    from ..model import load_model

    from .._simulate import engine_variants

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
        parts.append(f"{value_text(metric, value)}{interval} {metric.label}")
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
        doses += schedule_doses(scenario.model, result.spec.tci, result.regimen.doses[len(doses):])

    def value(item):
        return json.dumps(item, ensure_ascii=False) if isinstance(item, str) else str(item)

    lines = [f"# {'chosen' if result.feasible else 'closest (misses the limits)'} by the search of "
             f"{scenario.path.name}: {result.message}", "[[arms]]",
             f"name = {value('search: ' + result.spec.arm)}", "doses = ["]
    lines += ["    { " + ", ".join(f"{k} = {value(v)}" for k, v in dose.items()) + " },"
              for dose in doses if not any(is_zero(dose.get(k)) for k in ("amount", "rate"))]
    lines.append("]")
    if isinstance(written.get("parameters"), dict):
        lines.append("parameters = { " + ", ".join(f"{k} = {value(v)}" for k, v in written["parameters"].items())
                     + " }")
    return "\n".join(lines) + "\n"
