"""Trial simulation and power: the design-stage what-if in one call.

Every replicate trial draws its own virtual patients (subject ids
``replicate * n_max + i``, each with its own random streams), randomises them to
sequences (crossover) or arms (parallel), simulates every period of a
patient's sequence as one continuous regimen through the PK/PD model (so
carry-over comes from the model itself), adds inter-occasion variability per
period, day-to-day noise on the daily 0-10 NRS and dropout, and analyses each
replicate with the standard linear model. Sample sizes are nested: the first
n patients of each replicate form the trial of size n (common random numbers
make the power curve smooth and monotone in expectation).

The analysis is vectorised over replicates: subject effects are absorbed by
centring within subject (Frisch-Waugh-Lovell), which is exactly the
fixed-subject-effect OLS also when dropout leaves subjects incomplete.
"""

import dataclasses
import itertools

import numpy as np
import pandas as pd
from scipy import stats

from .._errors import ScenarioError
from .._random import subject_uniforms
from ..events.regimen import Dose, Regimen
from .._simulate import simulate
from ..population import Population, add_residual_error


# --- simulation ---------------------------------------------------------------

def _sequence_regimen(scenario, design, sequence):
    arms = {arm.name: arm for arm in scenario.arms}
    doses = []
    for period, arm_index in enumerate(sequence):
        offset = design.baseline + period * (design.period + design.washout)
        for dose in arms[design.arms[arm_index]].regimen.doses:
            doses.append(Dose(amount=dose.amount, target=dose.target, time=dose.time + offset,
                              duration=dose.duration, rate=dose.rate, every=dose.every, count=dose.count,
                              until=None if dose.until is None else dose.until + offset,
                              per_weight=dose.per_weight))
    return Regimen(doses)


def simulate_trial_scores(scenario, design, replicates=None, progress=False, first_replicate=0):
    """Daily scores of every replicate's patients.

    Returns
    -------
    scores : ndarray, shape (replicates, n_max, n_periods, days_per_period)
        Daily scores in each period (rounded and clipped to the scale if one is set).
    baseline : ndarray, shape (replicates, n_max)
        Mean daily score over the baseline days before the first period.
    sequence : ndarray, shape (n_max,)
        Sequence index of each patient position (the same in every replicate).
    stay : ndarray, shape (replicates, n_max, n_periods), bool
        False from the period at which the patient dropped out.
    """
    replicates = design.replicates if replicates is None else replicates
    n_max = max(design.sample_sizes)
    n_sequences = len(design.sequences)
    positions = np.arange(n_max)
    sequence = positions % n_sequences
    days_base = int(round(design.baseline / 24.0))
    per = design.days_per_period
    n_periods = design.n_periods
    times = (np.arange(days_base + n_periods * per) + 0.5) * 24.0
    occasions = np.concatenate([[0.0], design.baseline + np.arange(1, n_periods) * (design.period + design.washout)])
    ids = (first_replicate + np.arange(replicates))[:, None] * n_max + positions[None, :]
    noise = scenario.model.residual.get(design.output, {})
    daily = np.empty((replicates, n_max, times.size))
    for index, order in enumerate(design.sequences):
        mask = sequence == index
        if not mask.any():
            continue
        subject_ids = np.sort(ids[:, mask].ravel())
        population = Population(covariates=scenario.population_spec.get("covariates"),
                                correlations=scenario.population_spec.get("correlations"),
                                csv=scenario.population_spec.get("csv"), seed=scenario.seed,
                                subject_ids=subject_ids)
        result = simulate(scenario.model, _sequence_regimen(scenario, design, order), population, times,
                          method=scenario.solver["method"], rtol=scenario.solver["rtol"],
                          atol=scenario.solver["atol"], variability=scenario.variability, progress=progress,
                          occasions=occasions if n_periods > 1 else None)
        values = result.output(design.output)
        observed = add_residual_error(values, noise.get("additive", 0.0), noise.get("proportional", 0.0),
                                      seed=scenario.seed, subject_ids=subject_ids, stream=f"residual/{design.output}",
                                      variability=scenario.variability)
        lookup = np.searchsorted(subject_ids, ids[:, mask])
        daily[:, mask, :] = observed[lookup]
    if design.scale is not None:
        daily = np.clip(np.round(daily), design.scale[0], design.scale[1])
    baseline = daily[:, :, :days_base].mean(axis=2) if days_base else np.full((replicates, n_max), np.nan)
    scores = daily[:, :, days_base:].reshape(replicates, n_max, n_periods, per)
    stay = np.ones((replicates, n_max, n_periods), bool)
    if design.dropout > 0 and n_periods > 1:
        u = subject_uniforms(scenario.seed, ids.ravel(), "dropout", n_periods).reshape(replicates, n_max, n_periods)
        dropped = np.cumsum(u[:, :, 1:] < design.dropout, axis=2) > 0
        stay[:, :, 1:] = ~dropped
    elif design.dropout > 0:
        u = subject_uniforms(scenario.seed, ids.ravel(), "dropout", 1).reshape(replicates, n_max, 1)
        stay = u >= design.dropout
    return scores, baseline, sequence, stay


def endpoint_values(design, scores, baseline):
    """Per replicate, patient and period: the endpoint (shape (replicates, n_max, n_periods))."""
    first, last = design.days
    window = scores[:, :, :, first - 1:last]
    if design.endpoint == "auc":
        return window.sum(axis=3)  # score x days (one score per day)
    mean = window.mean(axis=3)
    if design.endpoint == "mean":
        return mean
    kind, amount = design.threshold
    reference = baseline[:, :, None]
    if kind == "percent":
        return (mean <= reference * (1 - amount / 100.0)).astype(float)
    return (mean <= reference - amount).astype(float)


# --- analysis -------------------------------------------------------------------

def fit_linear_model(y, mask, treatment, period, n_treatments, n_periods, absorb_subjects=True):
    """OLS of y on period and treatment effects (subject effects absorbed), batched over replicates.

    Parameters
    ----------
    y : ndarray (R, n, P)
        Endpoint per replicate, subject and period.
    mask : ndarray (R, n, P) bool
        Observed values.
    treatment, period : ndarray (R, n, P) int
        Treatment index (0 = reference) and period index of each cell.
    absorb_subjects : bool
        True: subject fixed effects (crossover); False: an intercept (parallel).

    Returns
    -------
    beta : (R, k) treatment effects first (k_t = n_treatments - 1), then periods
    covariance : (R, k, k) unscaled (X'X)^-1
    sigma2 : (R,) residual variance
    df : (R,) residual degrees of freedom
    """
    weights = mask.astype(float)
    columns = [(treatment == t) for t in range(1, n_treatments)] + [(period == p) for p in range(1, n_periods)]
    x = np.stack(columns, axis=-1).astype(float) * weights[..., None]
    yy = y * weights
    if absorb_subjects:
        counts = weights.sum(axis=2)
        safe = np.maximum(counts, 1.0)
        y_mean = yy.sum(axis=2) / safe
        x_mean = x.sum(axis=2) / safe[..., None]
        yy = (yy - y_mean[..., None]) * weights
        x = (x - x_mean[:, :, None, :]) * weights[..., None]
        groups = (counts > 0).sum(axis=1)
    else:
        total = weights.sum(axis=(1, 2))
        y_mean = yy.sum(axis=(1, 2)) / total
        x_mean = x.sum(axis=(1, 2)) / total[:, None]
        yy = (yy - y_mean[:, None, None]) * weights
        x = (x - x_mean[:, None, None, :]) * weights[..., None]
        groups = np.ones(y.shape[0])
    xtx = np.einsum("rnpi,rnpj->rij", x, x)
    xty = np.einsum("rnpi,rnp->ri", x, yy)
    k = xtx.shape[1]
    covariance = np.linalg.pinv(xtx)
    beta = np.einsum("rij,rj->ri", covariance, xty)
    residual = yy - np.einsum("rnpi,ri->rnp", x, beta)
    rss = (residual ** 2 * weights).sum(axis=(1, 2))
    df = weights.sum(axis=(1, 2)) - groups - k
    sigma2 = rss / np.maximum(df, 1)
    return beta, covariance, sigma2, df


def compare(beta, covariance, sigma2, df, a, b, alpha):
    """Estimate, CI and p-value of treatment a minus treatment b (0 = reference)."""
    k = beta.shape[1]
    contrast = np.zeros(k)
    if a > 0:
        contrast[a - 1] += 1.0
    if b > 0:
        contrast[b - 1] -= 1.0
    estimate = beta @ contrast
    se = np.sqrt(sigma2 * np.einsum("i,rij,j->r", contrast, covariance, contrast))
    t = estimate / se
    p = 2 * stats.t.sf(np.abs(t), df)
    half = stats.t.ppf(1 - alpha / 2, df) * se
    return estimate, se, p, estimate - half, estimate + half


def analyse(design, values, sequence, stay, n):
    """Per comparison: estimates, p-values and CIs over replicates for the first n patients."""
    y = values[:, :n]
    mask = stay[:, :n]
    order = np.asarray(design.sequences)[sequence[:n]]            # (n, P) arm index per period
    replicates = y.shape[0]
    treatment = np.broadcast_to(order, (replicates,) + order.shape)
    period = np.broadcast_to(np.arange(order.shape[1]), treatment.shape)
    beta, covariance, sigma2, df = fit_linear_model(
        y, mask, treatment, period, len(design.arms), order.shape[1], absorb_subjects=design.design == "crossover")
    out = {}
    for a, b in design.comparisons:
        out[(a, b)] = compare(beta, covariance, sigma2, df, a, b, design.alpha)
    return out


def clopper_pearson(successes, trials, level=0.95):
    tail = (1 - level) / 2
    low = stats.beta.ppf(tail, successes, trials - successes + 1) if successes > 0 else 0.0
    high = stats.beta.ppf(1 - tail, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)


def power_table(design, values, sequence, stay):
    rows = []
    for n in design.sample_sizes:
        results = analyse(design, values, sequence, stay, n)
        for (a, b), (estimate, se, p, low, high) in results.items():
            valid = np.isfinite(p)
            rejections = int(np.sum(p[valid] < design.alpha))
            total = int(valid.sum())
            power = rejections / total if total else np.nan
            band = clopper_pearson(rejections, total) if total else (np.nan, np.nan)
            rows.append(dict(comparison=f"{design.arms[a]} vs {design.arms[b]}", n_total=n, power=power,
                             power_low=band[0], power_high=band[1], mean_estimate=float(np.nanmean(estimate)),
                             sd_estimate=float(np.nanstd(estimate, ddof=1)) if total > 1 else np.nan,
                             mean_ci_width=float(np.nanmean(high - low)), replicates=total, alpha=design.alpha,
                             endpoint=_endpoint_label(design)))
    return pd.DataFrame(rows)


def _endpoint_label(design):
    first, last = design.days
    if design.endpoint == "auc":
        return f"AUC of daily {design.output} over days {first}-{last} (score x days)"
    if design.endpoint == "mean":
        return f"mean daily {design.output} over days {first}-{last}"
    kind, amount = design.threshold
    unit = "%" if kind == "percent" else " points"
    return f"responder: mean {design.output} over days {first}-{last} at least {amount:g}{unit} below baseline"


def trial(scenario, *, replicates=None, progress=False, executor=None, chunk_replicates=50, uncertainty=None):
    """Simulate and analyse the scenario's trial; return the power table.

    Parameters
    ----------
    scenario : Scenario or str or Path
        A scenario with a ``[trial]`` section (see ``scenarios/pickering2020_power.toml``).
    replicates : int, optional
        Override the number of replicate trials.
    executor : object with a ``map(fn, *iterables)`` method, optional
        Runs chunks of `chunk_replicates` replicate trials elsewhere (a
        :class:`concurrent.futures.Executor`, or :class:`pkpd._distributed.DaskExecutor`);
        only their endpoint arrays come back, and the table is the in-process one.
        With `uncertainty`, it runs the parameter draws instead.
    uncertainty : int or pkpd.UncertaintyOptions, optional
        Parameter uncertainty: this many draws of the model's parameters (or the options),
        each a whole trial of `replicates` replicates on the same virtual patients. Returns a
        :class:`pkpd.study.draws.UncertaintyResult`: ``.power`` per draw, ``.assurance()``
        (assurance = mean power over draws, with the distribution of power).

    Returns
    -------
    pandas.DataFrame
        Per sample size and comparison: power with its Monte Carlo 95 % interval
        (Clopper-Pearson), mean and SD of the estimate, mean CI width.
    """
    from .scenario import load_scenario

    if not hasattr(scenario, "trial"):
        scenario = load_scenario(scenario)
    if scenario.trial is None:
        raise ScenarioError("has no [trial] section", file=scenario.path.name)
    if uncertainty is not None:
        from .draws import trial_with_uncertainty

        return trial_with_uncertainty(trial, scenario, uncertainty, replicates=replicates, executor=executor,
                                      progress=progress)
    tables = []
    for design in scenario.designs:
        if replicates is not None:
            design = dataclasses.replace(design, replicates=replicates)
        tables.append(_design_power(scenario, design, progress, executor, chunk_replicates))
    return pd.concat(tables, ignore_index=True)


def _design_power(scenario, design, progress, executor, chunk_replicates):
    """The power table of one design: its replicates here, or in chunks by `executor`."""
    if executor is None:
        scores, baseline, sequence, stay = simulate_trial_scores(scenario, design, progress=progress)
    else:
        firsts = range(0, design.replicates, chunk_replicates)
        counts = [min(chunk_replicates, design.replicates - first) for first in firsts]
        parts = list(executor.map(replicate_scores, itertools.repeat(scenario, len(counts)),
                                  itertools.repeat(design, len(counts)), firsts, counts))
        scores, baseline, stay = (np.concatenate([part[i] for part in parts]) for i in range(3))
        sequence = np.arange(max(design.sample_sizes)) % len(design.sequences)
    return power_table(design, endpoint_values(design, scores, baseline), sequence, stay)


def replicate_scores(scenario, design, first, count):
    """Scores, baseline and stay (see :func:`simulate_trial_scores`) of replicates `first` to
    `first` + `count` - 1: a pure function of its inputs, for an executor to run anywhere."""
    scores, baseline, _, stay = simulate_trial_scores(scenario, design, replicates=count, first_replicate=first)
    return scores, baseline, stay


def run_trial_section(scenario, progress=False, executor=None):
    """For ``pkpd run``: the power table and what the manifest should record about it."""
    designs = scenario.designs
    table = pd.concat([_design_power(scenario, design, progress, executor, 50) for design in designs],
                      ignore_index=True)
    design = designs[0]
    extra = {"trial": {"design": design.design, "arms": [d.arms for d in designs],
                       "sequences": [[[d.arms[i] for i in s] for s in d.sequences] for d in designs],
                       "period_h": design.period, "washout_h": design.washout, "baseline_h": design.baseline,
                       "sample_sizes": design.sample_sizes, "replicates": design.replicates,
                       "dropout": design.dropout, "endpoint": _endpoint_label(design), "alpha": design.alpha,
                       "analysis": "OLS with subject, period and treatment fixed effects" if design.design == "crossover"
                       else "OLS with treatment effects (parallel groups)",
                       "noise": scenario.model.residual.get(design.output, {}),
                       "note": "power depends on the PK/PD parameters and variability recorded under 'model'"}}
    return table, extra
