"""Scenario files: one readable TOML file describes a study; checked before anything runs.

Every quantity is text with a unit ("0.5 mg/kg", "2 h", "35 d", "3 g MgSO4·7H2O",
"10 ng/mL"), parsed by pint (:mod:`pkpd._units`) and converted to the model's
units here, at the boundary. Every error names the file, the key path
(``arms[1].doses[0].duration``), the rule and the value.
"""

import hashlib
import itertools
import math
import re
import string
import tomllib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .draws import parse_section as parse_uncertainty
from .._errors import PkpdError, ScenarioError, suggestion
from .._keys import Keys
from ..model import Model, check_allowed, library_models, load_model
from .._options import SolverOptions
from ..population import Population
from .._random import MAX_SEED
from ..events.regimen import Dose, Regimen, dose_warning, resolve_dose
from .._resources import check_memory
from .checks import Checker
from .search_spec import search_of, search_resources
from .sensitivity_options import parse_section as parse_sensitivity
from .trial_design import designs_of

# Each table's keys, required ones included (pkpd/_keys.py): the checker below and the docs' key reference read them.
TOP_KEYS = Keys(["model", "seed", "description", "parameters", "population", "arms", "sweep", "outputs", "trial",
                 "solver", "search", "uncertainty", "sensitivity"], required=["model", "outputs"],
                required_when={"arms": "or a sweep"})
POPULATION_KEYS = Keys(["n", "covariates", "correlations", "csv", "variability"])
ARM_KEYS = Keys(["name", "model", "doses", "parameters", "description"], required=["name"])
DOSE_KEYS = Keys(["drug", "amount", "duration", "rate", "start", "every", "count", "until", "route"], required=["drug"],
                 required_when={"amount": "or give a rate and a duration", "every": "when count > 1 or until is given"})
OUTPUT_KEYS = Keys(["times", "variables", "metrics", "thresholds", "windows", "quantiles", "interval"],
                   required=["times"])
TIME_KEYS = Keys(["start", "stop", "step"], required=["start", "stop", "step"])
SWEEP_KEYS = Keys(["drug", "amount", "duration", "rate", "every", "count", "until", "start", "route", "name", "with",
                   "parameters"], required_when={"drug": "when dose keys are swept"})
SOLVER_KEYS = Keys(["method", "rtol", "atol"])
METRICS = ["cmax", "tmax", "cmin", "auc", "cavg"]
#: Arms one sweep may make: beyond, checking alone takes minutes and the run cannot fit.
MAX_ARMS = 10_000
#: Administrations whose times (and infusion ends) a regular output grid takes in (:func:`with_dose_times`).
MAX_ADDED_TIMES = 10_000
#: Format specifications allowed in a sweep's name template: fill/align, sign, width, precision, type.
_FORMAT_SPEC = re.compile(r"^(.?[<>^=])?[+\- ]?0?\d*,?(\.\d+)?[sdfFeEgG%]?$")


@dataclass(frozen=True)
class Arm:
    """One arm: its regimen and, when the arm names a model or sets parameters of its own, its model.

    `own_model` is the model the arm names (``model = "..."``) when it differs from the
    scenario's, before the arm's parameters; None for an arm of the scenario's model.
    """
    name: str
    regimen: Regimen
    description: str = ""
    model: object = None
    parameters: dict = field(default_factory=dict)
    own_model: object = None


@dataclass(frozen=True)
class Scenario:
    """A checked scenario, in the model's units; frozen: derive a changed one with
    :meth:`with_overrides` or :func:`dataclasses.replace`.

    Attributes
    ----------
    path : Path
    model : Model
    seed : int
    n : int
    population_spec : dict
        ``covariates``, ``correlations``, ``csv`` for :class:`pkpd.Population`.
    variability : bool
    arms : list of Arm
    times : ndarray
        Output times in the model's time unit.
    variables : list of str
        Model outputs to report.
    thresholds : dict of str to list of float
    windows : dict of str to list of (float, float)
    interval : tuple or None
        Interval for exposure metrics (model time unit); None = whole grid.
    quantiles : tuple of float
    trial : dict or None
        The raw ``[trial]`` section.
    designs : list of TrialDesign
        The ``[trial]`` section checked when the scenario loaded: one design, or
        one per comparison with ``versus``; empty without a trial.
    search : SearchSpec or None
        The ``[search]`` section checked when the scenario loaded (:mod:`pkpd.study.search_spec`).
    solver : dict
    uncertainty : UncertaintyOptions or None
        The ``[uncertainty]`` section: parameter draws (see :mod:`pkpd.study.draws`).
    sensitivity : SensitivityOptions or None
        The ``[sensitivity]`` section (see :mod:`pkpd.study.sensitivity`).
    hash : str
        SHA-256 of the file's text.
    """
    path: Path
    text: str
    model: Model
    seed: int
    n: int
    population_spec: dict
    variability: bool
    arms: list
    times: np.ndarray
    variables: list
    thresholds: dict
    windows: dict
    interval: tuple | None
    quantiles: tuple
    metrics: list
    trial: dict | None
    solver: dict
    description: str = ""
    raw: dict = field(default_factory=dict, repr=False)
    designs: list = field(default_factory=list)
    search: object = None
    uncertainty: object = None
    sensitivity: object = None

    @property
    def hash(self):
        return hashlib.sha256(self.text.encode()).hexdigest()

    def make_population(self, n=None):
        """The scenario's virtual subjects: `n` (default: the scenario's n per arm), from its seed."""
        return Population(n or self.n, seed=self.seed, **self.population_spec)

    def model_of(self, arm_name):
        """The model arm `arm_name` is simulated with: its own (named or with its parameters), or the scenario's."""
        arm = next(arm for arm in self.arms if arm.name == arm_name)
        return arm.model or self.model

    def with_overrides(self, n=None, seed=None, parameters=None):
        """A new scenario with command-line overrides: subjects per arm, seed, and parameter values.

        `parameters` (name -> number or quantity text) acts as if added to the file's
        ``[parameters]`` table: an arm's own ``parameters`` still win for that arm, and an arm
        that names a model of its own is left as it is (as by ``[parameters]``). This scenario
        is left unchanged.
        """
        changes = {}
        if parameters:
            check = Checker(Path("--set"))
            for arm in self.arms:
                for name in parameters:
                    if name in arm.parameters:
                        check.fail(f"parameters.{name}", f"arm {arm.name!r} sets {name} itself (arm values win); "
                                                         f"change it in the scenario file instead")
            model = _with_parameters(check, self.model, "parameters", parameters)
            changes["model"] = model
            changes["arms"] = [dataclasses.replace(arm, model=model.with_parameters(
                                   arm.parameters, origin=f"{self.path.name}: arm {arm.name!r}"))
                               if arm.model is not None and arm.own_model is None  # an arm of its own model keeps it
                               else arm for arm in self.arms]
        if n is not None:
            if not (isinstance(n, int) and n > 0):
                raise ScenarioError("--n must be a positive integer", value=n, got=repr(n))
            changes["n"] = n
        if seed is not None:
            changes["seed"] = check_seed(seed, "--seed")
        return dataclasses.replace(self, **changes)


def check_resources(scenario, max_memory=None):
    """Refuse a scenario whose run would need more memory than the limit, before anything is allocated.

    The estimate covers every arm's trajectories (all kept for the tables), the long
    exposure table, with a ``[trial]`` section its replicate trials and with a
    ``[search]`` its candidates (:func:`pkpd.study.search_spec.search_resources`); ``pkpd
    validate`` and ``pkpd run`` both call this.

    Returns
    -------
    bytes : float
    seconds : float
        A rough engine time.
    """
    from .._simulate import estimate_memory

    n, n_times = scenario.n, scenario.times.size
    size = seconds = 0.0
    most_doses = 0
    for arm in scenario.arms:
        doses = sum(dose.administrations() for dose in arm.regimen.doses)
        most_doses = max(most_doses, doses)
        arm_size, arm_seconds = estimate_memory(arm.model or scenario.model, n, n_times, doses)
        size, seconds = size + arm_size, seconds + arm_seconds
    size += 150.0 * len(scenario.arms) * n * len(scenario.variables) * (len(scenario.metrics) + 4)
    what = (f"{scenario.path.name}: {n:,} subjects x {len(scenario.arms):,} arms x {n_times:,} output times"
            f"{f' (+ up to {most_doses:.3g} doses)' if most_doses else ''}")
    if scenario.trial is not None:
        largest = 0.0  # designs run one after another; each keeps only its power table
        for design in scenario.designs:
            patients = design.replicates * max(design.sample_sizes)
            days = int(round(design.baseline / 24.0)) + design.n_periods * design.days_per_period
            doses = sum(dose.administrations() for name in design.arms
                        for arm in scenario.arms if arm.name == name for dose in arm.regimen.doses)
            # one sequence's patients are simulated at a time; their daily scores are kept
            per_sequence = -(-patients // len(design.sequences))
            trial_size, trial_seconds = estimate_memory(scenario.model, per_sequence, days, doses)
            largest = max(largest, trial_size + 24.0 * patients * days)
            seconds += trial_seconds * len(design.sequences)
        size += largest
        what += f", trial {design.replicates:,} replicates x {max(design.sample_sizes):,} patients"
    if scenario.search is not None:
        search_size, search_seconds, search_what = search_resources(scenario)
        size, seconds, what = size + search_size, seconds + search_seconds, what + search_what
    if scenario.uncertainty is not None:   # every draw repeats the run; its percentiles are kept
        draws = scenario.uncertainty.draws
        size += 8.0 * draws * len(scenario.arms) * len(scenario.variables) * len(scenario.quantiles) * n_times
        seconds *= 1 + draws
        what += f", {draws:,} parameter draws"
    check_memory(size, what, max_memory, seconds)
    return size, seconds


def resolved_doses(scenario, population):
    """Each arm's doses as mg/kg and mg at the population's median weight, and range warnings.

    Parameters
    ----------
    scenario : Scenario
    population : Population

    Returns
    -------
    doses : dict of str to list of dict
        Arm name -> one :func:`pkpd.events.regimen.resolve_dose` record per dose.
    warnings : list of str
        One line per dose far outside its drug's documented range (file, key path, value, range).
    """
    table = population.covariates
    weight = float(np.median(table["WT"])) if "WT" in table.columns else None
    doses, warnings = {}, []
    for arm in scenario.arms:
        model = arm.model or scenario.model
        doses[arm.name] = []
        for dose in arm.regimen.doses:
            resolved = resolve_dose(model, dose, weight)
            doses[arm.name].append(resolved)
            warning = dose_warning(model, dose, resolved)
            if warning and f"{scenario.path.name}: {warning}" not in warnings:
                warnings.append(f"{scenario.path.name}: {warning}")
    return doses, warnings


def check_seed(seed, key, file=None):
    """The one seed rule of files, --seed and the random streams: an integer in [0, 2**64 - 1]."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ScenarioError("must be an integer in [0, 2**64 - 1]", file=file, key=key, value=seed, got=repr(seed))
    return seed


def _read_text(path):
    """A scenario file's text: UTF-8, a leading byte-order mark dropped (as Windows editors write one)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ScenarioError(f"cannot read the scenario file ({error.strerror or error})", file=str(path)) from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise ScenarioError(f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); save the "
                            f"file as UTF-8", file=path.name) from None


def load_scenario(path: Path | str) -> "Scenario":
    """Read and check a scenario file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        One line naming the file, the key path, the rule and the value.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError("scenario file not found", file=str(path))
    text = _read_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"not valid TOML ({error})", file=path.name) from None
    except RecursionError:
        raise ScenarioError("not valid TOML (arrays or tables nested too deeply)", file=path.name) from None
    check = Checker(path)
    check.keys("", raw, TOP_KEYS)

    model = _named_model(check, "model", raw["model"])

    if "parameters" in raw:
        model = _with_parameters(check, model, "parameters", raw["parameters"])
    seed = check_seed(raw.get("seed", 0), "seed", file=path.name)
    population = raw.get("population", {})
    check.keys("population", population, POPULATION_KEYS)
    n = check.integer("population.n", population.get("n", 100), minimum=1)
    variability = population.get("variability", True)
    if not isinstance(variability, bool):
        check.fail("population.variability", "must be true or false", value=variability)
    population_spec = {k: population[k] for k in ("covariates", "correlations", "csv") if k in population}
    if population_spec.get("covariates") in ("neuropathic_pain", "default"):
        population_spec.pop("covariates")
    if "csv" in population_spec:
        population_spec["csv"] = str(path.parent / check.string("population.csv", population_spec["csv"]))
    _check_population(check, population_spec, seed)

    arms = [_arm(check, model, f"arms[{i}]", arm) for i, arm in enumerate(raw.get("arms", []))]
    _check_arm_models(check, model, arms)
    if "sweep" in raw:
        arms += _sweep(check, model, raw["sweep"])
    if not arms:
        check.fail("arms", f"at least one arm is required ({TOP_KEYS.required_when['arms']})")
    seen = set()
    for index, arm in enumerate(arms):
        if arm.name in seen:
            check.fail(f"arms[{index}].name", f"arm names must be unique; {arm.name!r} is used twice")
        seen.add(arm.name)

    outputs = raw["outputs"]
    check.keys("outputs", outputs, OUTPUT_KEYS)
    time_unit = model.units.get("time", "h")
    times = _times(check, outputs["times"], time_unit)
    if isinstance(outputs["times"], dict):   # a regular grid: exact at every dose and infusion end too
        times = with_dose_times(times, [dose for arm in arms for dose in arm.regimen.doses])
    variables = outputs.get("variables", list(model.outputs))
    if not isinstance(variables, list) or not variables:
        check.fail("outputs.variables", "must be a non-empty list of model outputs", value=variables)
    for index, name in enumerate(variables):
        if name not in model.outputs:
            extra = suggestion(str(name), list(model.outputs), "outputs")
            check.fail(f"outputs.variables[{index}]", f"model {model.name!r} has no output {name!r}{extra}")
    metrics = outputs.get("metrics", METRICS)
    for index, metric in enumerate(metrics):
        if metric not in METRICS:
            extra = suggestion(str(metric), METRICS, "metrics")
            check.fail(f"outputs.metrics[{index}]", f"unknown metric {metric!r}{extra}")
    thresholds, windows = _levels(check, model, outputs)
    _check_arm_outputs(check, model, arms, variables, outputs)
    interval = None
    if "interval" in outputs:
        pair = outputs["interval"]
        if not (isinstance(pair, list) and len(pair) == 2):
            check.fail("outputs.interval", "must be [start, stop]", value=pair)
        interval = (check.magnitude("outputs.interval[0]", pair[0], time_unit, positive=False),
                    check.magnitude("outputs.interval[1]", pair[1], time_unit))
        if not interval[0] < interval[1]:
            check.fail("outputs.interval", "start must be before stop", value=pair)
    quantiles = outputs.get("quantiles", [5, 25, 50, 75, 95])
    if (not isinstance(quantiles, list) or not quantiles
            or any(isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 100 for q in quantiles)
            or sorted(quantiles) != quantiles):
        check.fail("outputs.quantiles", "must be an increasing list of numbers in [0, 100]", value=quantiles)

    solver = raw.get("solver", {})
    check.keys("solver", solver, SOLVER_KEYS)
    try:
        options = SolverOptions(**solver)
    except PkpdError as error:
        check.refuse(f"solver.{error.key}", error)
    solver = {"method": options.method, "rtol": float(options.rtol), "atol": float(options.atol)}

    trial = raw.get("trial")
    if trial is not None and not isinstance(trial, dict):
        check.fail("trial", "must be a table", value=trial)
    scenario = Scenario(path=path, text=text, model=model, seed=seed, n=n, population_spec=population_spec,
                        variability=variability, arms=arms, times=times, variables=list(variables),
                        thresholds=thresholds, windows=windows, interval=interval, quantiles=tuple(quantiles),
                        metrics=list(metrics), trial=trial, solver=solver,
                        description=str(raw.get("description", "")), raw=raw)
    if trial is not None:
        scenario = dataclasses.replace(scenario, designs=designs_of(scenario))
    if "search" in raw:
        scenario = dataclasses.replace(scenario, search=search_of(scenario, check))
    if "uncertainty" in raw:
        scenario = dataclasses.replace(scenario, uncertainty=parse_uncertainty(check, raw["uncertainty"], model, arms))
    if "sensitivity" in raw:
        scenario = dataclasses.replace(scenario, sensitivity=parse_sensitivity(check, raw["sensitivity"], scenario))
    return scenario


def _check_population(check, spec, seed):
    """Refuse a population spec :class:`Population` would refuse (covariates, correlations, csv), here.

    Draws one subject, so that ``pkpd validate`` names the file and key of what
    ``pkpd run`` would otherwise refuse only when it builds the population.
    """
    try:
        Population(1, seed=seed, **spec)
    except PkpdError as error:
        if error.file is not None:  # the patient table's own file, row and column
            raise
        check.fail(error.key or "population", error.rule, **error.fields())


def _times(check, spec, time_unit):
    if isinstance(spec, list):
        if not spec:
            check.fail("outputs.times", "must not be empty")
        values = np.array([check.magnitude(f"outputs.times[{i}]", t, time_unit, positive=False)
                           for i, t in enumerate(spec)])
    else:
        check.keys("outputs.times", spec, TIME_KEYS)
        start = check.magnitude("outputs.times.start", spec["start"], time_unit, positive=False)
        stop = check.magnitude("outputs.times.stop", spec["stop"], time_unit)
        step = check.magnitude("outputs.times.step", spec["step"], time_unit)
        if not stop > start:
            check.fail("outputs.times.stop", "must be after start", value=spec['stop'])
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > 200_000:
            check.fail("outputs.times.step", f"gives {count} output times (at most 200000)", value=spec['step'])
        values = start + step * np.arange(count)
    if np.any(np.diff(values) <= 0):
        check.fail("outputs.times", "must be increasing")
    return values


def with_dose_times(times, doses):
    """The grid `times` with each dose's administration times and infusion ends inside it added.

    A curve drawn or integrated through the grid is then exact where it turns: the peak at the end
    of a 2-h infusion on a 45-min grid is not cut off between two grid points. Times within a
    millionth of the smallest step of a grid time are that grid time (no near-duplicates).
    Infusions whose duration the model sets (modelled rate or duration) are not known here. Beyond
    MAX_ADDED_TIMES administrations in all (a dose every minute for a year) the grid stays as given:
    the memory check of the run, not this, must speak first.
    """
    if sum(dose.administrations() for dose in doses) > MAX_ADDED_TIMES:
        return times
    extra = []
    for dose in doses:
        starts = dose.start_times()
        extra.append(starts)
        length = dose.duration or (dose.amount / dose.rate if dose.rate and dose.amount else 0.0)
        if length > 0:
            extra.append(starts + length)
    if not extra or times.size < 2:
        return times
    extra = np.concatenate(extra)
    extra = np.unique(extra[(extra > times[0]) & (extra < times[-1])])
    tolerance = 1e-6 * float(np.min(np.diff(times)))
    nearest = np.clip(np.searchsorted(times, extra), 1, times.size - 1)
    distance = np.minimum(np.abs(times[nearest] - extra), np.abs(times[nearest - 1] - extra))
    return np.union1d(times, extra[distance > tolerance])


def _levels(check, model, outputs):
    thresholds, windows = {}, {}
    for name, levels in outputs.get("thresholds", {}).items():
        key = f"outputs.thresholds.{name}"
        if name not in model.outputs:
            check.fail(key, f"model {model.name!r} has no output {name!r}")
        if not isinstance(levels, list):
            levels = [levels]
        unit = model.outputs[name].unit
        thresholds[name] = [_level(check, f"{key}[{i}]", _matrix_checked(check, model, name, f"{key}[{i}]", level,
                                                                           "level"), unit, model)
                            for i, level in enumerate(levels)]
    for name, pairs in outputs.get("windows", {}).items():
        key = f"outputs.windows.{name}"
        if name not in model.outputs:
            check.fail(key, f"model {model.name!r} has no output {name!r}")
        if isinstance(pairs, dict) or (pairs and not isinstance(pairs[0], (list, dict))):
            pairs = [pairs]
        pairs = [_matrix_checked(check, model, name, f"{key}[{i}]", pair, "window") for i, pair in enumerate(pairs)]
        unit = model.outputs[name].unit
        windows[name] = []
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2):
                check.fail(f"{key}[{i}]", "must be [low, high]", value=pair)
            low = _level(check, f"{key}[{i}][0]", pair[0], unit, model)
            high = _level(check, f"{key}[{i}][1]", pair[1], unit, model)
            if not low < high:
                check.fail(f"{key}[{i}]", f"low ({pair[0]}) must be below high ({pair[1]})")
            windows[name].append((low, high))
    return thresholds, windows


def _matrix_checked(check, model, name, key, item, field):
    """A level or window, written bare or as ``{ <field> = ..., matrix = "venous plasma" }``: the table form
    states the matrix the number was measured in, which must be the output's (a venous threshold is never
    compared with an arterial curve); the bare form inherits the output's matrix."""
    if not isinstance(item, dict):
        return item
    check.keys(key, item, [field, "matrix", "source"], required=[field, "matrix"])
    output = model.outputs[name]
    matrix = item["matrix"]
    if output.role != "concentration":
        check.fail(f"{key}.matrix", f"output {name!r} is not a concentration (role {output.role}); only a "
                                    f"concentration has a matrix", value=matrix)
    if matrix != output.matrix:
        same = [other for other, spec in model.outputs.items() if spec.role == "concentration"
                and spec.matrix == matrix and spec.analyte == output.analyte]
        hint = (f"; compare it with {', '.join(same)} ({matrix})" if same
                else f"; model {model.name!r} has no {output.analyte} output in {matrix!r}")
        check.fail(f"{key}.matrix", f"output {name!r} is {output.analyte}, {output.matrix}; a {field} "
                                    f"measured in {matrix} cannot be compared with it{hint}", value=matrix)
    return item[field]


def _level(check, key, text, unit, model):
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        check.fail(key, f"must carry a unit, e.g. '10 {unit}'", value=text)
    molar_mass = next((d.get("molar_mass") for d in model.drugs.values() if d.get("molar_mass")), None)
    return check.magnitude(key, text, unit, positive=False, molar_mass=molar_mass)


def _named_model(check, key, name):
    """The model a scenario names at `key`: a library model, or a ``.toml`` file beside the scenario."""
    name = check.string(key, name)
    model_path = (check.path.parent / name) if name.endswith(".toml") else name
    try:
        return load_model(model_path)
    except PkpdError:
        if name in library_models() or name.endswith(".toml"):
            raise
        extra = suggestion(name, library_models(), "library models")
        check.fail(key, f"no library model {name!r}{extra}")


def _check_arm_models(check, model, arms):
    """Arms of a model of their own must count time in the scenario's model's unit (one output grid)."""
    time_unit = model.units.get("time", "h")
    for index, arm in enumerate(arms):
        if arm.own_model is not None and arm.own_model.units.get("time", "h") != time_unit:
            check.fail(f"arms[{index}].model", f"arm {arm.name!r} (model {arm.own_model.name}) counts time in "
                                               f"{arm.own_model.units.get('time', 'h')!r}, the scenario's model "
                                               f"{model.name} in {time_unit!r}; the arms share one time grid")


def _check_arm_outputs(check, model, arms, variables, outputs):
    """Every reported output (variables, thresholds, windows) exists in every arm's model, in the same unit.

    Outputs are matched by name across arms; their labels (analyte, matrix) may differ per arm.
    """
    keys = [("outputs.variables", name) for name in variables]
    keys += [(f"outputs.{section}.{name}", name) for section in ("thresholds", "windows")
             for name in outputs.get(section, {})]
    for arm in arms:
        own = arm.own_model
        if own is None:
            continue
        for key, name in keys:
            if name not in own.outputs:
                check.fail(key, f"arm {arm.name!r} (model {own.name}) has no output {name!r}")
            if own.outputs[name].unit != model.outputs[name].unit:
                check.fail(key, f"output {name!r} is in {own.outputs[name].unit!r} in arm {arm.name!r} (model "
                                f"{own.name}) but in {model.outputs[name].unit!r} in the scenario's model "
                                f"{model.name}; a same-named output must have one unit in every arm")


def _arm(check, model, key, arm):
    check.keys(key, arm, ARM_KEYS)
    name = check.string(f"{key}.name", arm["name"])
    if not name.strip() or not name.isprintable():
        check.fail(f"{key}.name", "must be printable text on one line (no tabs, line breaks or control "
                                  "characters)", value=name)
    own_model = None
    if "model" in arm:
        named = _named_model(check, f"{key}.model", arm["model"])
        if named.hash != model.hash or named.path != model.path:  # naming the scenario's model changes nothing
            own_model = model = named
    doses = arm.get("doses", [])
    if not isinstance(doses, list):
        check.fail(f"{key}.doses", "must be a list of dose tables", value=doses)
    regimen = Regimen([_dose(check, model, f"{key}.doses[{i}]", dose) for i, dose in enumerate(doses)], name=name)
    arm_model, parameters = None, {}
    if "parameters" in arm:
        arm_model = _with_parameters(check, model, f"{key}.parameters", arm["parameters"])
        parameters = {k: arm_model.parameters[k].value for k in arm["parameters"]}
    if own_model is not None and arm_model is None:
        arm_model = own_model
    return Arm(name=name, regimen=regimen, description=str(arm.get("description", "")), model=arm_model,
               parameters=parameters, own_model=own_model)


def _with_parameters(check, model, key, table):
    """`model` with the parameter values of a scenario's `parameters` table.

    A value is a number in the parameter's own unit or a quantity with a unit
    ("2 mmol/L", "30 min"), converted to it.
    """
    if not isinstance(table, dict):
        check.fail(key, "must be a table of parameter = value", value=table)
    values = {}
    for name, value in table.items():
        if name not in model.parameters:
            extra = suggestion(str(name), list(model.parameters), "the model's parameters")
            check.fail(f"{key}.{name}", f"model {model.name!r} has no parameter {name!r}{extra}")
        unit = model.parameters[name].unit
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            check.fail(f"{key}.{name}", f"must be a number (in {unit!r}) or a quantity with a unit", value=value)
        if isinstance(value, str):
            values[name] = check.magnitude(f"{key}.{name}", value, unit, positive=False)
        elif not math.isfinite(value):
            check.fail(f"{key}.{name}", "must be a finite number", value=value)
        else:
            values[name] = float(value)
        rule = check_allowed(model.parameters[name], values[name])
        if rule:
            check.fail(f"{key}.{name}", rule)
    return model.with_parameters(values, origin=f"{check.path.name}: {key}")


def _compartment_unit(model, compartment):
    return model.compartment_units.get(compartment) or model.units.get("amount", "mg")


def _dose(check, model, key, dose):
    check.keys(key, dose, DOSE_KEYS)
    drug_name = check.string(f"{key}.drug", dose["drug"])
    if drug_name not in model.drugs:
        extra = suggestion(drug_name, model.drugs, "the model's drugs")
        check.fail(f"{key}.drug", f"model {model.name!r} has no drug {drug_name!r}{extra}")
    drug = model.drugs[drug_name]
    compartment = drug["compartment"]
    if "route" in dose:
        routes = drug.get("routes", {})
        route = check.string(f"{key}.route", dose["route"])
        if route not in routes:
            check.fail(f"{key}.route", f"drug {drug_name!r} has routes {', '.join(routes) or 'none'}", value=route)
        compartment = routes[route]
    unit = _compartment_unit(model, compartment)
    time_unit = model.units.get("time", "h")
    if "rate" in dose and "duration" in dose and "amount" in dose:
        check.fail(key, "give an amount with a duration or a rate, not both a rate and a duration")
    if "amount" not in dose and not ("rate" in dose and "duration" in dose):
        check.fail(f"{key}.amount", f"is required ({DOSE_KEYS.required_when['amount']})")

    per_weight = None
    amount = None
    if "amount" in dose:
        amount, per_weight = check.amount(f"{key}.amount", dose["amount"], unit, drug)
    rate = None
    if "rate" in dose:
        rate, rate_per_weight = check.amount(f"{key}.rate", dose["rate"], f"{unit}/{time_unit}", drug, rate=True)
        if per_weight is not None and rate_per_weight != per_weight:
            check.fail(f"{key}.rate", "amount and rate must both be per body weight or neither")
        per_weight = rate_per_weight
    duration = check.magnitude(f"{key}.duration", dose["duration"], time_unit) if "duration" in dose else 0.0
    start = check.magnitude(f"{key}.start", dose["start"], time_unit, positive=False) if "start" in dose else 0.0
    every = check.magnitude(f"{key}.every", dose["every"], time_unit) if "every" in dose else None
    until = check.magnitude(f"{key}.until", dose["until"], time_unit) if "until" in dose else None
    count = check.integer(f"{key}.count", dose.get("count", 1), minimum=1)
    if "count" in dose and "until" in dose:
        check.fail(key, "give count or until, not both")
    if (count > 1 or until is not None) and every is None:
        check.fail(f"{key}.every", f"is required {DOSE_KEYS.required_when['every']}")
    try:
        return Dose(amount=amount, target=compartment, time=start, duration=duration, rate=rate, every=every,
                    count=count, until=until, per_weight=bool(per_weight), label=key, drug=drug_name,
                    written=_written(dose))
    except PkpdError as error:  # a rule of Dose the checks above do not already make (e.g. a finite time)
        check.fail(error.key or key, error.rule, **error.fields())


def _written(dose):
    """'3 g MgSO4·7H2O over 30 min', '0.2 mg/kg/h for 100 h': a dose as the file gives it."""
    parts = [str(dose["amount"])] if "amount" in dose else []
    if "rate" in dose:
        parts.append(f"at {dose['rate']}")
    if "duration" in dose:
        parts.append(f"{'for' if 'rate' in dose else 'over'} {dose['duration']}")
    return " ".join(parts)


def _name_template(check, template, keys):
    """A sweep's name template, checked: only ``{key}`` or ``{key:spec}`` of swept keys.

    Attribute access and indexing (``{amount.__class__}``, ``{amount[0]}``), conversions
    and nested fields are refused: a format string must not reach into Python objects.
    """
    template = check.string("sweep.name", template)
    if not template.isprintable():
        check.fail("sweep.name", "must be printable text on one line (no tabs, line breaks or control "
                                 "characters)", value=template)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:
        check.fail("sweep.name", f"is not a valid name template ({error})", value=template)
    for _, field_name, spec, conversion in fields:
        if field_name is None:
            continue
        if field_name not in keys:
            check.fail("sweep.name", f"{{{field_name}}} is not a swept key (use {{name}} of: "
                                     f"{', '.join(keys)}; no attributes or indexing)", value=template)
        if conversion is not None or not _FORMAT_SPEC.match(spec or ""):
            check.fail("sweep.name", f"{{{field_name}}} may only carry a simple format such as "
                                     f"{{{field_name}:g}} or {{{field_name}:.2f}}", value=template)
    return template


def _sweep(check, model, sweep):
    """One arm per combination of the swept dose keys and parameter values."""
    check.keys("sweep", sweep, SWEEP_KEYS)
    axes = {k: v for k, v in sweep.items() if k in ("amount", "duration", "rate", "every", "count", "until", "start")}
    lists = {k: (v if isinstance(v, list) else [v]) for k, v in axes.items()}
    if lists and "drug" not in sweep:
        check.fail("sweep.drug", f"is required {SWEEP_KEYS.required_when['drug']}")
    parameters = sweep.get("parameters", {})
    if not isinstance(parameters, dict):
        check.fail("sweep.parameters", "must be a table of parameter = [values]", value=parameters)
    for name, values in parameters.items():
        if name not in model.parameters:
            extra = suggestion(str(name), list(model.parameters), "the model's parameters")
            check.fail(f"sweep.parameters.{name}", f"model {model.name!r} has no parameter {name!r}{extra}")
        if name in lists:
            check.fail(f"sweep.parameters.{name}", "a parameter cannot share its name with a swept dose key")
        lists[name] = values if isinstance(values, list) else [values]
    if not lists:
        check.fail("sweep", "sweep at least one dose key (amount, duration, ...) or parameter")
    for k, values in lists.items():
        if not values:
            check.fail(f"sweep.{'parameters.' if k in parameters else ''}{k}", "must not be empty")
    count = math.prod(len(values) for values in lists.values())
    if count > MAX_ARMS:
        sizes = " x ".join(f"{len(values)} {k}" for k, values in lists.items())
        check.fail("sweep", f"gives {count:,} arms ({sizes}); at most {MAX_ARMS:,} arms in one scenario: "
                            f"sweep fewer values, or split the sweep into several scenarios")
    template = _name_template(check, sweep.get("name", " ".join("{" + k + "}" for k in lists)), list(lists))
    extra_doses = sweep.get("with", [])
    arms = []
    keys = list(lists)
    for combination in itertools.product(*(lists[k] for k in keys)):
        chosen = dict(zip(keys, combination))
        label = ", ".join(f"{k}={v}" for k, v in chosen.items())
        try:
            name = template.format(**chosen)
        except (ValueError, TypeError) as error:
            check.fail("sweep.name", f"cannot format {template!r} with {label} ({error})")
        doses = []
        dose_keys = {k: v for k, v in chosen.items() if k not in parameters}
        if dose_keys:
            dose = {"drug": sweep["drug"], **dose_keys}
            if "route" in sweep:
                dose["route"] = sweep["route"]
            doses.append(_dose(check, model, f"sweep[{label}]", dose))
        doses += [_dose(check, model, f"sweep.with[{i}]", d) for i, d in enumerate(extra_doses)]
        arm_model, values = None, {}
        swept = {k: v for k, v in chosen.items() if k in parameters}
        if swept:
            arm_model = _with_parameters(check, model, f"sweep.parameters[{label}]", swept)
            values = {k: arm_model.parameters[k].value for k in swept}
        arms.append(Arm(name=name, regimen=Regimen(doses, name=name), model=arm_model, parameters=values))
    return arms
