"""Simulation with parameter uncertainty: an outer loop of parameter draws around the population.

Each draw is a set of parameter values from the model's uncertainty
(:mod:`pkpd._uncertainty`); the model of a draw is ``model.with_parameters(values)``, which
shares the compiled module (values are engine inputs, never constants of the generated code),
so a run of 200 draws compiles nothing. Every draw simulates the SAME virtual patients (the
population's seed and subject ids are those of the ordinary run): common random numbers, so
the spread over draws is the parameter uncertainty alone, not a new sample of patients each
time, and with every uncertainty zero each draw reproduces the ordinary run exactly.

Each draw is reduced where it runs to what the tables need (percentiles over subjects per
time, and each exposure metric's median, 5th and 95th percentiles and mean over subjects;
with a trial, the power of every comparison and sample size), so memory does not grow with
the number of draws' trajectories. Draws run one after another here, or by an executor
(``executor.map``, e.g. :class:`pkpd._distributed.DaskExecutor`); a draw's numbers depend only
on (seed, draw index), never on threads, chunks or workers.

Intervals over draws are percentiles (by default the 90 % interval, 5th to 95th): e.g. "the
90 % interval of the median" of a concentration at a time is the 5th-95th percentile over
draws of the median over subjects.
"""

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._errors import PkpdError, ScenarioError, suggestion
from .._keys import Keys
from ..metrics import percentiles as percentiles_over_subjects
from .._random import MAX_SEED
from ..model import linear_specialisation

STATISTICS = ("median", "p5", "p95", "mean")
UNCERTAINTY_KEYS = Keys(["draws", "seed", "parameters", "level", "replicates"], required=["draws"])


@dataclass(frozen=True)
class UncertaintyOptions:
    """How to draw: `draws` parameter sets (seed: the scenario's or population's when None), of
    `parameters` (None: every parameter with an uncertainty), intervals over draws at `level` %,
    and, for a trial, `replicates` replicate trials per draw (None: the trial's own)."""
    draws: int
    seed: int | None = None
    parameters: tuple | None = None
    level: float = 90.0
    replicates: int | None = None


def as_options(uncertainty) -> UncertaintyOptions:
    """`uncertainty=` of simulate()/trial(): a number of draws or UncertaintyOptions."""
    if isinstance(uncertainty, UncertaintyOptions):
        return uncertainty
    if isinstance(uncertainty, bool) or not isinstance(uncertainty, int) or uncertainty < 1:
        raise PkpdError("must be a positive number of draws or pkpd.UncertaintyOptions", key="uncertainty",
                        value=uncertainty, got=repr(uncertainty))
    return UncertaintyOptions(draws=uncertainty)


def uncertain_parameters(check, section, model, names):
    """The `parameters` list of an [uncertainty] or [sensitivity] section, checked against the parameters
    the model gives an uncertainty (a tuple; None when the section names none: every such parameter)."""
    known = model.uncertainty.names
    if not known:
        check.fail(section, f"model {model.name!r} gives no parameter an uncertainty (a parameter's "
                            f"`uncertainty` key in the model file), or the scenario sets all of them")
    if names is None:
        return None
    if not (isinstance(names, list) and names):
        check.fail(f"{section}.parameters", "must be a non-empty list of parameter names", value=names)
    for index, name in enumerate(names):
        if name not in known:
            why = " (the scenario sets it)" if name in model.parameters else ""
            check.fail(f"{section}.parameters[{index}]", f"{name!r} has no uncertainty in model "
                                                         f"{model.name!r}{why}{suggestion(str(name), known)}")
    return tuple(names)


def parse_section(check, raw, model, arms):
    """The checked ``[uncertainty]`` table of a scenario (`check`: the scenario's checker)."""
    check.keys("uncertainty", raw, UNCERTAINTY_KEYS)
    draws = check.integer("uncertainty.draws", raw["draws"], minimum=1)
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        check.fail("uncertainty.seed", "must be an integer in [0, 2**64 - 1]", value=seed)
    names = uncertain_parameters(check, "uncertainty", model, raw.get("parameters"))
    for arm in arms:
        if arm.own_model is not None:
            check.fail("uncertainty", f"arm {arm.name!r} names a model of its own; parameter draws need the "
                                      f"scenario's one model")
        clash = set(arm.parameters) & set(names or ())
        if clash:
            check.fail("uncertainty.parameters", f"arm {arm.name!r} sets {', '.join(sorted(clash))} itself; "
                                                 f"a drawn parameter cannot also be set by an arm")
    level = raw.get("level", 90.0)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 100:
        check.fail("uncertainty.level", "must be a percentage in (0, 100)", value=level)
    replicates = raw.get("replicates")
    if replicates is not None:
        replicates = check.integer("uncertainty.replicates", replicates, minimum=1)
    return UncertaintyOptions(draws=draws, seed=seed, parameters=names, level=float(level), replicates=replicates)


# --- models of draws ---------------------------------------------------------------------------------

def specialised(model):
    """What :func:`pkpd.simulate` runs for `model` (its linear specialisation when folding zero-valued
    switches makes it linear), with the compiled module loaded once and shared by every draw."""
    return linear_specialisation(model, load=True)


def derive(model, values, origin):
    """`model` with parameter `values` (a mapping), specialised as simulate would."""
    if specialised(model) is model:
        model.module  # loaded once: the derived copies (with_parameters) share it
    return specialised(model.with_parameters(values, origin=origin) if values else model)


def draw_names(model, options, arms=()):
    """The parameters drawn: `options.parameters`, or every parameter with an uncertainty that no arm sets."""
    if options.parameters is not None:   # less any the user has set since (--set): a set value is known
        return [n for n in options.parameters if n in model.uncertainty.names]
    set_by_arms = set().union(*(arm.parameters for arm in arms)) if arms else set()
    return [n for n in model.uncertainty.names if n not in set_by_arms]


def sample_draws(model, options, seed, arms=()):
    """DataFrame (draw x parameter) of the draws."""
    names = draw_names(model, options, arms)
    if not names:
        raise PkpdError(f"model {model.name!r} gives no parameter an uncertainty; nothing to draw",
                        key="uncertainty")
    return model.uncertainty.subset(names).sample(options.draws, options.seed if options.seed is not None else seed)


def scenario_with(scenario, values, origin):
    """The scenario with other parameter values in its model and in every arm's model (an arm's own
    settings win), each specialised as simulate would specialise it."""
    values = dict(values)
    arms = [dataclasses.replace(arm, model=derive(arm.model, {k: v for k, v in values.items()
                                                              if k not in arm.parameters}, origin))
            if arm.model is not None else arm for arm in scenario.arms]
    return dataclasses.replace(scenario, model=derive(scenario.model, values, origin), arms=arms)


# --- reduction of one simulation ----------------------------------------------------------------------

def summarise(result, outputs, quantiles, interval=None, thresholds=None, windows=None, metrics=None):
    """A simulation reduced to (percentiles, statistics).

    Returns
    -------
    percentiles : dict of output -> ndarray, shape (n_quantiles, n_times)
        Percentiles over subjects at each time.
    statistics : dict of (output, metric) -> (median, p5, p95, mean, unit)
        Exposure metrics (those of :func:`pkpd.metrics.exposure_table`, or only `metrics` and the
        times above thresholds and within windows) over subjects.
    """
    thresholds, windows = thresholds or {}, windows or {}
    percentiles, statistics = {}, {}
    for output in outputs:
        values = result.output(output)
        percentiles[output] = percentiles_over_subjects(values, quantiles)
        table = result.exposure(output, interval=interval, thresholds=thresholds.get(output, ()),
                                windows=windows.get(output, ()))   # an AUC above the baseline, as the run's
        for metric in table.columns:
            if metrics is not None and metric not in metrics and not metric.startswith("time_"):
                continue
            column = table[metric].to_numpy()
            low, median, high = np.percentile(column, [5, 50, 95])
            statistics[(output, metric)] = (median, low, high, column.mean(), table.attrs["units"][metric])
    return percentiles, statistics


@dataclass(frozen=True)
class DrawContext:
    """Everything a draw needs besides its parameter values (sent once per task to an executor).

    `simulate` is :func:`pkpd.simulate` and `trial` :func:`pkpd.trial` (when each draw runs the
    scenario's trial, else None), passed in by their callers: the draws sit below both."""
    scenario: object          # a Scenario, or None for simulate(uncertainty=)
    arms: tuple               # (arm name, model, regimen) per arm
    population: object
    times: np.ndarray
    outputs: tuple
    quantiles: tuple
    interval: tuple | None
    thresholds: dict
    windows: dict
    metrics: tuple | None
    solver: dict
    variability: bool
    simulate: Callable
    trial_replicates: int | None = None
    profiles: bool = True
    trial: Callable | None = None


def evaluate(context, values, origin="uncertainty draw"):
    """One draw: every arm simulated with parameter `values` (mapping) and reduced.

    Returns
    -------
    dict with keys ``percentiles`` ({(arm, output): (n_quantiles, n_times)}), ``statistics``
    ({(arm, output, metric): (median, p5, p95, mean, unit)}) and ``power`` (the power table of the
    scenario's trial, or None).
    """
    percentiles, statistics = {}, {}
    for name, model, regimen in context.arms:
        result = context.simulate(derive(model, values, origin), regimen, context.population, context.times,
                          variability=context.variability, progress=False, **context.solver)
        arm_percentiles, arm_statistics = summarise(result, context.outputs, context.quantiles, context.interval,
                                                    context.thresholds, context.windows, context.metrics)
        if context.profiles:
            percentiles.update({(name, output): table for output, table in arm_percentiles.items()})
        statistics.update({(name,) + key: row for key, row in arm_statistics.items()})
    power = None
    if context.trial is not None:
        power = context.trial(scenario_with(context.scenario, values, origin), replicates=context.trial_replicates)
    return {"percentiles": percentiles, "statistics": statistics, "power": power}


def scenario_context(scenario, population, *, simulate, trial=None, profiles=True, replicates=None, n=None,
                     outputs=None, metrics=None):
    """The DrawContext of a scenario's arms, simulated by `simulate` (:func:`pkpd.simulate`), and of its
    trial when `trial` (:func:`pkpd.trial`) is given."""
    arms = tuple((arm.name, arm.model or scenario.model, arm.regimen) for arm in scenario.arms)
    return DrawContext(scenario=scenario, arms=arms, population=population, times=scenario.times,
                       outputs=tuple(outputs or scenario.variables), quantiles=tuple(scenario.quantiles),
                       interval=scenario.interval, thresholds=scenario.thresholds, windows=scenario.windows,
                       metrics=tuple(metrics or scenario.metrics), solver=dict(scenario.solver),
                       variability=scenario.variability, simulate=simulate, trial_replicates=replicates,
                       profiles=profiles, trial=trial)


def run_draws(context, draws, *, executor=None, progress=True, label="parameter draws"):
    """`evaluate` for every row of `draws` (DataFrame draw x parameter): here, or by `executor.map`."""
    rows = [{k: v for k, v in row.items() if v == v} for _, row in draws.iterrows()]  # NaN: not set in this row
    origins = [f"uncertainty draw {d}" for d in draws.index]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(rows), unit="draw", delay=2.0, disable=not progress, leave=False, desc=label)
    try:
        if executor is None:
            results = []
            for row, origin in zip(rows, origins):
                results.append(evaluate(context, row, origin))
                bar.update(1)
        else:
            results = []
            for result in executor.map(evaluate, itertools.repeat(context, len(rows)), rows, origins):
                results.append(result)
                bar.update(1)
    finally:
        bar.close()
    return results


# --- results -------------------------------------------------------------------------------------------

@dataclass
class UncertaintyResult:
    """Outputs of a simulation with parameter uncertainty.

    Attributes
    ----------
    draws : pandas.DataFrame
        Parameter values of each draw (index ``draw``), in the parameters' units.
    times : ndarray, shape (n_times,)
    quantiles : tuple of float
        Percentiles over subjects kept per draw and time.
    percentiles : dict of (arm, output) -> ndarray, shape (n_draws, n_quantiles, n_times)
    statistics : pandas.DataFrame
        One row per draw, arm, output and exposure metric: median, p5, p95 and mean over subjects, unit.
    power : pandas.DataFrame or None
        With a trial: one row per draw, comparison and total sample size: power (and its columns).
    level : float
        Intervals over draws are the central `level` % (5th-95th percentile for 90).
    seed : int
    units : dict
        Output -> unit, and "TIME".
    """
    draws: pd.DataFrame
    times: np.ndarray
    quantiles: tuple
    percentiles: dict
    statistics: pd.DataFrame
    power: pd.DataFrame | None
    level: float
    seed: int
    units: dict = field(default_factory=dict)

    @property
    def bounds(self):
        """Percentiles over draws of the interval's ends, e.g. (5, 95)."""
        return (50 - self.level / 2, 50 + self.level / 2)

    def profile_intervals(self) -> pd.DataFrame:
        """Per arm, output, time and percentile over subjects: median and interval over draws."""
        frames = []
        low, high = self.bounds
        for (arm, output), table in self.percentiles.items():
            over = np.percentile(table, [low, 50, high], axis=0)       # (3, n_quantiles, n_times)
            for index, q in enumerate(self.quantiles):
                frames.append(pd.DataFrame({"arm": arm, "output": output, "unit": self.units.get(output, ""),
                                            "TIME": self.times, "percentile": q, "median": over[1, index],
                                            "low": over[0, index], "high": over[2, index]}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary_intervals(self) -> pd.DataFrame:
        """Per arm, output, metric and statistic over subjects: median, interval and mean over draws."""
        low, high = self.bounds
        long = self.statistics.melt(id_vars=["draw", "arm", "output", "metric", "unit"], value_vars=list(STATISTICS),
                                    var_name="statistic")
        grouped = long.groupby(["arm", "output", "metric", "statistic", "unit"], sort=False)["value"]
        table = grouped.agg(median="median", low=lambda v: np.percentile(v, low),
                            high=lambda v: np.percentile(v, high), mean="mean", draws="size").reset_index()
        return table[["arm", "output", "metric", "statistic", "median", "low", "high", "mean", "draws", "unit"]]

    def assurance(self) -> pd.DataFrame | None:
        """Per comparison and sample size: assurance (mean power over draws), the median and interval of
        power over draws, the fraction of draws with power >= 80 %, and the draws counted."""
        if self.power is None:
            return None
        low, high = self.bounds
        grouped = self.power.groupby(["comparison", "n_total"], sort=False)["power"]
        table = grouped.agg(assurance="mean", power_median="median", power_low=lambda v: np.percentile(v, low),
                            power_high=lambda v: np.percentile(v, high),
                            fraction_power_80=lambda v: float(np.mean(v >= 0.8)), draws="size").reset_index()
        table["level"] = self.level
        return table


def collect(results, draws, times, quantiles, level, seed, units):
    """An UncertaintyResult from the evaluations of `draws` (their order)."""
    percentiles = {}
    if results and results[0]["percentiles"]:
        percentiles = {key: np.stack([r["percentiles"][key] for r in results]) for key in results[0]["percentiles"]}
    rows = [(draw, arm, output, metric, *row) for draw, result in zip(draws.index, results)
            for (arm, output, metric), row in result["statistics"].items()]
    statistics = pd.DataFrame(rows, columns=["draw", "arm", "output", "metric", *STATISTICS, "unit"])
    power = None
    if results and results[0]["power"] is not None:
        power = pd.concat([r["power"].assign(draw=draw) for draw, r in zip(draws.index, results)], ignore_index=True)
        power = power[["draw"] + [c for c in power.columns if c != "draw"]]
    return UncertaintyResult(draws=draws, times=np.asarray(times), quantiles=tuple(quantiles),
                             percentiles=percentiles, statistics=statistics, power=power, level=level, seed=seed,
                             units=units)


def simulate_with_uncertainty(simulate, model, regimen, population, times, uncertainty, *, outputs=None,
                              quantiles=(5, 50, 95), interval=None, thresholds=None, windows=None,
                              method="auto", rtol=None, atol=None, variability=True, progress=None,
                              executor=None):
    """:func:`pkpd.simulate` with ``uncertainty=``: see there (`simulate`: :func:`pkpd.simulate` itself)."""
    from ..model import load_model
    from .._options import DEFAULT
    from ..population import Population
    from ..events.regimen import Regimen

    model = load_model(model)
    options = as_options(uncertainty)
    if not isinstance(regimen, Regimen):
        regimen = Regimen(list(regimen))
    if isinstance(population, int):
        population = Population(population, seed=0)
    for name in options.parameters or ():
        if name not in model.uncertainty.names:
            raise PkpdError(f"{name!r} has no uncertainty in model {model.name!r}", key="uncertainty.parameters")
    draws = sample_draws(model, options, population.seed)
    outputs = tuple(outputs or model.outputs)
    solver = dict(method=method, rtol=DEFAULT.rtol if rtol is None else rtol,
                  atol=DEFAULT.atol if atol is None else atol)
    arm = regimen.name or "regimen"
    context = DrawContext(scenario=None, arms=((arm, model, regimen),), population=population,
                          times=np.asarray(times, dtype=np.float64), outputs=outputs, quantiles=tuple(quantiles),
                          interval=interval, thresholds={o: thresholds for o in outputs} if thresholds else {},
                          windows={o: windows for o in outputs} if windows else {}, metrics=None, solver=solver,
                          variability=variability, simulate=simulate)
    results = run_draws(context, draws, executor=executor, progress=progress is not False)
    units = {"TIME": model.units.get("time", "h"), **{o: model.outputs[o].unit for o in outputs}}
    return collect(results, draws, context.times, quantiles, options.level, options.seed
                   if options.seed is not None else population.seed, units)


def scenario_with_uncertainty(scenario, population, options=None, *, simulate, trial, executor=None, progress=True):
    """The draws of a scenario (`options`: its ``[uncertainty]`` by default): an UncertaintyResult; `simulate`
    and `trial` are :func:`pkpd.simulate` and :func:`pkpd.trial` (the trial runs when the scenario has one)."""
    options = options or scenario.uncertainty
    if options is None:
        raise ScenarioError("has no [uncertainty] section", file=scenario.path.name)
    draws = sample_draws(scenario.model, options, scenario.seed, scenario.arms)
    context = scenario_context(scenario, population, simulate=simulate,
                               trial=trial if scenario.trial is not None else None, replicates=options.replicates)
    results = run_draws(context, draws, executor=executor, progress=progress)
    units = {"TIME": scenario.model.units.get("time", "h"),
             **{o: scenario.model.outputs[o].unit for o in scenario.variables}}
    seed = options.seed if options.seed is not None else scenario.seed
    return collect(results, draws, scenario.times, scenario.quantiles, options.level, seed, units)


def trial_with_uncertainty(trial, scenario, uncertainty, *, replicates=None, executor=None, progress=False):
    """:func:`pkpd.trial` with ``uncertainty=``: the power of every draw (no profiles kept; `trial`:
    :func:`pkpd.trial` itself)."""
    options = as_options(uncertainty)
    if replicates is not None:
        options = dataclasses.replace(options, replicates=replicates)
    draws = sample_draws(scenario.model, options, scenario.seed, scenario.arms)
    context = dataclasses.replace(scenario_context(scenario, None, simulate=None, trial=trial, profiles=False,
                                                   replicates=options.replicates), arms=())
    results = run_draws(context, draws, executor=executor, progress=progress, label="trial draws")
    seed = options.seed if options.seed is not None else scenario.seed
    return collect(results, draws, scenario.times, scenario.quantiles, options.level, seed, {})


def interval_text(level):
    """'90 % interval over draws (5th-95th percentile)'."""
    low, high = 50 - level / 2, 50 + level / 2
    return f"{level:g} % interval over parameter draws ({low:g}th-{high:g}th percentile)"



def uncertainty_section(scenario, population, *, simulate, trial, executor=None, progress=True):
    """For ``pkpd run``: the ``[uncertainty]`` draws of a scenario (`simulate`, `trial`: as for
    :func:`scenario_with_uncertainty`).

    Returns
    -------
    uncertainty : UncertaintyResult
    tables : dict of str to DataFrame
        The CSV files to write: ``uncertainty_draws``, ``uncertainty_profiles``, ``uncertainty_summary``,
        with a trial ``power_draws`` and ``assurance``.
    manifest : dict
        What the manifest records about them.
    """
    model = scenario.model
    options = scenario.uncertainty
    uncertainty = scenario_with_uncertainty(scenario, population, simulate=simulate, trial=trial, executor=executor,
                                            progress=progress)
    tables = {"uncertainty_draws": uncertainty.draws.reset_index(),
              "uncertainty_profiles": uncertainty.profile_intervals().rename(
                  columns={"TIME": f"TIME ({model.units.get('time', 'h')})"}),
              "uncertainty_summary": uncertainty.summary_intervals()}
    if uncertainty.power is not None:
        tables["power_draws"] = uncertainty.power
        tables["assurance"] = uncertainty.assurance()
    names = list(uncertainty.draws.columns)
    manifest = {"uncertainty": {
        "draws": options.draws, "seed": uncertainty.seed, "level_percent": options.level,
        "interval": interval_text(options.level),
        "replicates_per_draw": options.replicates,
        "parameters": model.uncertainty.subset(names).table(),
        "not_drawn": [n for n in model.uncertainty.names if n not in names],
        "populations": "common random numbers: every draw simulates the same virtual subjects (seed and ids of "
                       "the ordinary run), so the spread over draws is parameter uncertainty alone"}}
    return uncertainty, tables, manifest


def uncertainty_lines(run, scenario):
    """Console lines of ``pkpd run``: the uncertainty of the first outputs' median Cmax and AUC, the
    assurance of each comparison and sample size, and the three parameters each tornado metric
    depends on most."""
    lines = []
    result = run.uncertainty
    if result is not None:
        intervals = result.summary_intervals()
        lines.append(f"  parameter uncertainty: {len(result.draws)} draws of {', '.join(result.draws.columns)}; "
                     f"median over subjects, {interval_text(result.level)}")
        chosen = intervals[(intervals["statistic"] == "median") & intervals["metric"].isin(["cmax", "auc"])
                           & intervals["output"].isin(scenario.variables[:3])]
        for row in chosen.itertuples():
            lines.append(f"  {row.arm[:40]:40s} {row.output:12s} {row.metric:5s} median {row.median:.4g} "
                         f"({row.low:.4g}-{row.high:.4g}) {row.unit}")
        assurance = result.assurance()
        for row in (assurance.itertuples() if assurance is not None else ()):
            lines.append(f"  assurance {row.comparison:36s} n={int(row.n_total):4d}: {row.assurance:.3f} (power over "
                         f"draws: median {row.power_median:.3f}, {row.level:g} % {row.power_low:.3f}-"
                         f"{row.power_high:.3f}; P(power >= 0.8) {row.fraction_power_80:.2f})")
    if run.sensitivity is not None:
        local, sobol = run.sensitivity
        for (metric, where), rows in local.groupby(["metric", "where"], sort=False):
            if not rows["swing"].gt(0).any():
                continue
            top = ", ".join(f"{r.parameter} {r.at_low:.3g}/{r.at_high:.3g}" for r in rows.head(3).itertuples())
            lines.append(f"  sensitivity {metric} [{where}] nominal {rows['nominal'].iloc[0]:.4g}; "
                         f"at low/high ends: {top}")
        if sobol is not None:
            ranked = sobol.sort_values("ST", ascending=False).head(3)
            lines.append(f"  Sobol {sobol['metric'].iloc[0]} [{sobol['where'].iloc[0]}]: " + ", ".join(
                f"{r.group} S1 {r.S1:.2f} ST {r.ST:.2f}" for r in ranked.itertuples()))
    return lines
