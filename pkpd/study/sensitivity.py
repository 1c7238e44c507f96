"""Sensitivity: which uncertain parameters a result depends on most.

Two analyses over the parameters that have an uncertainty (:mod:`pkpd._uncertainty`):

- **Local, one at a time (tornado)**: each parameter moved alone to the low and the high end
  of its uncertainty (a range's ends; the 2.5 % and 97.5 % quantiles of an SE, a CI or a
  covariance block's marginal, the block's other members kept at their values), every other
  parameter at its value; the swing of each metric.
- **Global (Sobol)**: first-order and total indices of one metric, sampled with SALib's
  Saltelli/Sobol' sequence over the unit hypercube and mapped onto the parameters by their
  inverse CDFs (a covariance block through its Cholesky factor, analysed as one group, since
  Sobol indices need independent inputs), with SALib's bootstrap confidence intervals.
  SALib (Herman and Usher, JOSS 2017) is the well-kept reference implementation of Saltelli
  2010 / Jansen estimators; this module only evaluates the model.

Metrics are population summaries on the scenario's virtual patients (the same patients for
every evaluation, so a swing is the parameter's effect alone): ``"OUTPUT cmax"`` (or ``auc``,
``cavg``, ``cmin``, ``tmax``, ``time_above_L``, ``time_within_L_H``: the median over subjects),
``"OUTPUT ae_rate"`` (an adverse-event probability output: the mean over subjects of each one's
peak, the expected adverse-event rate) and ``"power"`` (the trial's power per comparison and
sample size). A metric is evaluated in every arm where it applies.
"""

from dataclasses import replace

import numpy as np
import pandas as pd

from .draws import run_draws, scenario_context
from .._errors import PkpdError
from ..population import Population
from .._simulate import simulate
from .trial import trial

_EDGE = 2.0 ** -53   # unit-cube points are kept inside (0, 1), as the random streams' uniforms are


def metric_values(metric, evaluation):
    """{where: value} of `metric` in one evaluation (:func:`pkpd.study.draws.evaluate`): where is the arm,
    or for power 'COMPARISON, n=N'."""
    if metric.kind == "power":
        table = evaluation["power"]
        return {f"{row.comparison}, n={row.n_total}": float(row.power) for row in table.itertuples()}
    column = 3 if metric.kind == "ae_rate" else 0        # mean or median over subjects
    return {arm: float(row[column]) for (arm, output, statistic), row in evaluation["statistics"].items()
            if output == metric.output and statistic == metric.statistic}


def _context(scenario, population, options, metrics):
    outputs = tuple(dict.fromkeys(m.output for m in metrics if m.kind != "power"))
    statistics = tuple(dict.fromkeys(m.statistic for m in metrics if m.kind != "power"))
    context = scenario_context(scenario, population, simulate=simulate, profiles=False,
                               trial=trial if any(m.kind == "power" for m in metrics) else None,
                               replicates=options.replicates,
                               outputs=outputs or scenario.variables[:1], metrics=statistics or ("cmax",))
    if not outputs:   # power only: no arm needs simulating for exposure
        context = replace(context, arms=())
    return context


def tornado(scenario, population, options, *, executor=None, progress=True):
    """One-at-a-time sensitivity of every metric of `options` to every uncertain parameter.

    Returns
    -------
    pandas.DataFrame
        One row per metric, place (arm or comparison) and parameter: parameter_low, parameter_high (the
        ends), nominal (all parameters at their values), at_low, at_high, swing = |at_high - at_low|;
        rows sorted by swing within each metric and place.
    """
    uncertainty = scenario.model.uncertainty
    names = list(options.parameters or uncertainty.names)
    ends = uncertainty.ends()
    rows = [{}] + [{name: ends[name][side]} for name in names for side in (0, 1)]
    context = _context(scenario, population, options, options.metrics)
    evaluations = run_draws(context, pd.DataFrame(rows).rename_axis("draw"), executor=executor, progress=progress,
                            label="sensitivity (one at a time)")
    out = []
    for metric in options.metrics:
        nominal = metric_values(metric, evaluations[0])
        for index, name in enumerate(names):
            low = metric_values(metric, evaluations[1 + 2 * index])
            high = metric_values(metric, evaluations[2 + 2 * index])
            for where, value in nominal.items():
                out.append(dict(analysis="tornado", metric=metric.label, where=where, parameter=name,
                                unit=scenario.model.parameters[name].unit, parameter_low=ends[name][0],
                                parameter_high=ends[name][1], nominal=value, at_low=low[where],
                                at_high=high[where], swing=abs(high[where] - low[where])))
    table = pd.DataFrame(out)
    order = {m.label: i for i, m in enumerate(options.metrics)}
    table = table.assign(_order=table["metric"].map(order)).sort_values(
        ["_order", "where", "swing"], ascending=[True, True, False], kind="stable").drop(columns="_order")
    return table.reset_index(drop=True)


def sobol_indices(uncertainty, function, *, samples=64, bootstrap=200, seed=0, level=0.95):
    """First-order and total Sobol indices of ``function`` over the parameters of `uncertainty`.

    Parameters
    ----------
    uncertainty : ParameterUncertainty
    function : callable
        DataFrame of parameter values (one row per point) -> ndarray of the metric, shape (n_points,).
    samples : int
        Base sample size N (a power of 2); ``N * (groups + 2)`` evaluations.
    bootstrap : int
        Bootstrap resamples of the confidence intervals.
    seed : int
        Scrambling of the Sobol' sequence and the bootstrap.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per group (a parameter, or a covariance block's parameters joined by '+'): S1, S1_conf,
        ST, ST_conf (half-widths of the `level` intervals), S1_low/S1_high, ST_low/ST_high.
    """
    try:
        from SALib.analyze import sobol as analyze
        from SALib.sample import sobol as sample
    except ImportError:   # pragma: no cover - depends on the installation
        raise PkpdError("global sensitivity needs SALib: pip install 'pkpd[sensitivity]'") from None
    groups = uncertainty.groups
    inputs = [(label, i) for label, _, size in groups for i in range(size)]
    problem = {"num_vars": len(inputs), "names": [f"{label}[{i}]" for label, i in inputs],
               "bounds": [[0.0, 1.0]] * len(inputs)}
    if any(size > 1 for _, _, size in groups):
        problem["groups"] = [label for label, _ in inputs]
    points = np.clip(sample.sample(problem, samples, calc_second_order=False, seed=seed), _EDGE, 1 - _EDGE)
    values = np.asarray(function(uncertainty.from_unit(points)), dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise PkpdError("the metric is not finite at some sampled parameter values; Sobol indices need it everywhere",
                        key="sensitivity.sobol.metric")
    found = analyze.analyze(problem, values, calc_second_order=False, num_resamples=bootstrap, conf_level=level,
                            seed=seed)
    table = pd.DataFrame({"group": [label for label, _, _ in groups], "S1": found["S1"], "S1_conf": found["S1_conf"],
                          "ST": found["ST"], "ST_conf": found["ST_conf"]})
    for index in ("S1", "ST"):
        table[f"{index}_low"] = table[index] - table[f"{index}_conf"]
        table[f"{index}_high"] = table[index] + table[f"{index}_conf"]
    table.attrs["evaluations"] = len(values)
    return table


def scenario_sobol(scenario, population, options, *, executor=None, progress=True):
    """Sobol indices of the ``[sensitivity.sobol]`` metric of a scenario (in its arm, or for power its first
    comparison at its first sample size unless ``arm`` names another place)."""
    sobol = options.sobol
    uncertainty = scenario.model.uncertainty
    if options.parameters:
        uncertainty = uncertainty.subset(options.parameters)
    context = _context(scenario, population, options, [sobol.metric])
    if sobol.metric.kind != "power":
        arm = sobol.arm or next((a.name for a in scenario.arms if a.regimen.doses), scenario.arms[0].name)
        context = _only_arm(context, arm)
    chosen = []

    def function(frame):
        evaluations = run_draws(context, frame.rename_axis("draw"), executor=executor, progress=progress,
                                label="sensitivity (Sobol)")
        values = [metric_values(sobol.metric, e) for e in evaluations]
        where = sobol.arm if sobol.arm in values[0] else next(iter(values[0]))
        chosen.append(where)
        return [v[where] for v in values]

    table = sobol_indices(uncertainty, function, samples=sobol.samples, bootstrap=sobol.bootstrap, seed=sobol.seed)
    table.insert(0, "where", chosen[0])
    table.insert(0, "metric", sobol.metric.label)
    table.insert(0, "analysis", "sobol")
    return table


def _only_arm(context, arm):
    return replace(context, arms=tuple(a for a in context.arms if a[0] == arm))


def run_sensitivity(scenario, population, *, executor=None, progress=True):
    """The scenario's ``[sensitivity]``: the tornado table and, with ``sobol``, the Sobol table."""
    options = scenario.sensitivity
    if options.n is not None:
        population = Population(options.n, seed=scenario.seed, **scenario.population_spec)
    local = tornado(scenario, population, options, executor=executor, progress=progress)
    sobol = scenario_sobol(scenario, population, options, executor=executor, progress=progress) \
        if options.sobol is not None else None
    return local, sobol


def sensitivity_table(local, sobol):
    """``sensitivity.csv``: the tornado rows, then the Sobol rows (columns of both; empty where not applicable)."""
    frames = [local] + ([sobol.rename(columns={"group": "parameter"})] if sobol is not None else [])
    return pd.concat(frames, ignore_index=True)


def sensitivity_section(scenario, population, *, executor=None, progress=True):
    """For ``pkpd run``: the ``[sensitivity]`` analyses of a scenario.

    Returns
    -------
    sensitivity : (tornado table, Sobol table or None)
    tables : dict of str to DataFrame
        ``sensitivity``: the CSV file to write.
    manifest : dict
        What the manifest records about them.
    """
    model = scenario.model
    tables, manifest = {}, {}
    sensitivity = run_sensitivity(scenario, population, executor=executor, progress=progress)
    tables["sensitivity"] = sensitivity_table(*sensitivity)
    options = scenario.sensitivity
    manifest["sensitivity"] = {
        "metrics": [m.label for m in options.metrics],
        "parameters": list(options.parameters or model.uncertainty.names),
        "subjects": options.n or scenario.n, "replicates": options.replicates,
        "local": "one at a time, each parameter at the ends of its uncertainty (a range's low and high, else "
                 "its 2.5 % and 97.5 % quantiles), the others at their values",
        "sobol": None if options.sobol is None else {
            "metric": options.sobol.metric.label, "samples": options.sobol.samples,
            "evaluations": int(sensitivity[1].attrs.get("evaluations", 0)),
            "bootstrap": options.sobol.bootstrap, "seed": options.sobol.seed,
            "method": "SALib Sobol' sampling (Saltelli) and analysis, first-order and total indices, 95 % "
                      "bootstrap intervals; a covariance block is one group"}}
    return sensitivity, tables, manifest


__all__ = ["tornado", "sobol_indices", "scenario_sobol", "run_sensitivity", "sensitivity_table",
           "sensitivity_section"]
