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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._errors import PkpdError, ScenarioError, suggestion
from ._random import subject_uniforms
from ._regimen import Dose, Regimen
from ._simulate import simulate
from ._units import magnitude_in, parse_quantity
from .population import Population, add_residual_error

TRIAL_KEYS = ["design", "arms", "sequences", "period", "washout", "baseline", "n", "replicates", "dropout",
              "endpoint", "alpha", "comparisons", "analysis", "scale", "versus"]
ENDPOINT_KEYS = ["type", "output", "days", "threshold"]
ENDPOINTS = ["auc", "mean", "responder"]


@dataclass(frozen=True)
class TrialDesign:
    """A checked ``[trial]`` section (times in the model's unit, h); frozen: derive a changed
    one with :func:`dataclasses.replace`."""
    design: str
    arms: list
    sequences: list          # crossover: arm indices per period, per sequence
    period: float
    washout: float
    baseline: float
    sample_sizes: list
    replicates: int
    dropout: float
    endpoint: str
    output: str
    days: tuple
    threshold: tuple | None  # ("percent", 30.0) or ("points", 2.0)
    alpha: float
    comparisons: list        # (arm index a, arm index b): estimate of a - b
    scale: tuple | None      # (low, high) integer scale of daily scores, or None

    @property
    def n_periods(self):
        return len(self.sequences[0]) if self.design == "crossover" else 1

    @property
    def days_per_period(self):
        return int(round((self.period + self.washout) / 24.0))


def williams_sequences(count):
    """Williams design: balanced for first-order carry-over (2 Latin squares when `count` is odd)."""
    first = [0]
    low, high = 1, count - 1
    for index in range(1, count):
        if index % 2:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    square = [[(value + shift) % count for value in first] for shift in range(count)]
    if count % 2:
        square += [list(reversed(row)) for row in square]
    return square


def _fail(scenario, key, rule, **found):
    """Raise ScenarioError at ``trial.key``; ``value=`` is written as its repr, unless ``got=`` says how."""
    if "value" in found:
        found.setdefault("got", repr(found["value"]))
    raise ScenarioError(rule, file=scenario.path.name, key=f"trial.{key}", **found)


def _time(scenario, key, text):
    try:
        return magnitude_in(parse_quantity(text, f"trial.{key}", positive=False), scenario.model.units.get("time", "h"),
                            f"trial.{key}")
    except PkpdError as error:
        _fail(scenario, key, error.rule, **error.fields())


def parse_trial(scenario, raw=None):
    """Check a ``[trial]`` table (by default the scenario's) against the scenario; return a TrialDesign."""
    raw = scenario.trial if raw is None else raw
    for key in raw:
        if key not in TRIAL_KEYS:
            extra = suggestion(key, TRIAL_KEYS, "allowed")
            _fail(scenario, key, f"unknown key{extra}")
    design = raw.get("design", "crossover")
    if design not in ("crossover", "parallel"):
        _fail(scenario, "design", "must be 'crossover' or 'parallel'", value=design)
    names = [arm.name for arm in scenario.arms]
    arms = raw.get("arms", names)
    for index, name in enumerate(arms):
        if name not in names:
            _fail(scenario, f"arms[{index}]", f"no arm named {name!r} (arms: {', '.join(names)})")
    if len(arms) < 2:
        _fail(scenario, "arms", "a trial needs at least 2 arms")
    for arm in scenario.arms:
        if arm.name in arms and arm.own_model is not None:
            raise ScenarioError(f"arm {arm.name!r}: a trial arm cannot name a model of its own (model "
                                f"{arm.own_model.name}, the scenario's {scenario.model.name}): a patient keeps "
                                f"one model across periods", file=scenario.path.name, key="trial.arms")
        if arm.name in arms and arm.model is not None:
            raise ScenarioError(f"arm {arm.name!r}: a trial arm cannot set model parameters of its own (a patient "
                                f"keeps one model across periods); set them for the whole scenario in [parameters] "
                                f"instead", file=scenario.path.name)
    count = len(arms)
    sequences = raw.get("sequences", "williams")
    if design == "parallel":
        sequences = [[i] for i in range(count)]
    elif sequences == "williams":
        sequences = williams_sequences(count)
    elif sequences == "all":
        sequences = [list(p) for p in itertools.permutations(range(count))]
    elif isinstance(sequences, list) and sequences and all(isinstance(s, list) for s in sequences):
        converted = []
        for i, sequence in enumerate(sequences):
            row = []
            for j, name in enumerate(sequence):
                if name not in arms:
                    _fail(scenario, f"sequences[{i}][{j}]", f"{name!r} is not a trial arm")
                row.append(arms.index(name))
            converted.append(row)
        if len({len(r) for r in converted}) != 1:
            _fail(scenario, "sequences", "every sequence must have the same number of periods")
        sequences = converted
    else:
        _fail(scenario, "sequences", "must be 'williams', 'all' or a list of lists of arm names", value=sequences)
    period = _time(scenario, "period", raw.get("period", "35 d"))
    washout = _time(scenario, "washout", raw.get("washout", "0 d"))
    baseline = _time(scenario, "baseline", raw.get("baseline", "14 d"))
    if not period > 0:
        _fail(scenario, "period", "must be positive", value=raw.get('period'))
    for key, value in (("period", period + washout), ("baseline", baseline)):
        if abs(value / 24.0 - round(value / 24.0)) > 1e-9:
            _fail(scenario, key, "must be a whole number of days (daily pain scores)")
    sizes = raw.get("n", [20])
    sizes = sizes if isinstance(sizes, list) else [sizes]
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            _fail(scenario, f"n[{i}]", "must be an integer >= 2", value=n)
    replicates = raw.get("replicates", 200)
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        _fail(scenario, "replicates", "must be a positive integer", value=replicates)
    dropout = raw.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        _fail(scenario, "dropout", "must be a probability in [0, 1)", value=dropout)
    alpha = raw.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        _fail(scenario, "alpha", "must be in (0, 1)", value=alpha)
    endpoint = raw.get("endpoint", {"type": "auc"})
    if not isinstance(endpoint, dict):
        _fail(scenario, "endpoint", "must be a table", value=endpoint)
    for key in endpoint:
        if key not in ENDPOINT_KEYS:
            _fail(scenario, f"endpoint.{key}", f"unknown key; allowed: {', '.join(ENDPOINT_KEYS)}")
    kind = endpoint.get("type", "auc")
    if kind not in ENDPOINTS:
        _fail(scenario, "endpoint.type", f"must be one of {', '.join(ENDPOINTS)}", value=kind)
    pain_scores = [name for name, spec in scenario.model.outputs.items() if spec.role == "pain_score"]
    if "output" not in endpoint and not pain_scores:
        _fail(scenario, "endpoint.output", f"is required: model {scenario.model.name!r} has no output of role "
                                           f"pain_score (the default)")
    output = endpoint.get("output", pain_scores[0] if pain_scores else None)
    if output not in scenario.model.outputs:
        _fail(scenario, "endpoint.output", f"model {scenario.model.name!r} has no output {output!r}")
    days_per_period = int(round(period / 24.0))
    days = endpoint.get("days", [1, days_per_period])
    if not (isinstance(days, list) and len(days) == 2 and all(isinstance(d, int) for d in days)
            and 1 <= days[0] <= days[1] <= days_per_period):
        _fail(scenario, "endpoint.days", f"must be [first, last] days within the period (1..{days_per_period})",
              value=days)
    threshold = None
    if kind == "responder":
        text = str(endpoint.get("threshold", "30 %")).strip()
        if text.endswith("%"):
            threshold = ("percent", float(text[:-1]))
        elif text.endswith("points") or text.endswith("point"):
            threshold = ("points", float(text.split()[0]))
        else:
            _fail(scenario, "endpoint.threshold", "must be like '30 %' or '2 points'", value=text)
    comparisons = raw.get("comparisons", [[arms[i], arms[0]] for i in range(1, count)])
    pairs = []
    for i, pair in enumerate(comparisons):
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in arms for p in pair) and pair[0] != pair[1]):
            _fail(scenario, f"comparisons[{i}]", "must be [arm, other arm] among the trial arms", value=pair)
        pairs.append((arms.index(pair[0]), arms.index(pair[1])))
    scale = raw.get("scale", [0, 10])
    if scale is not False and not (isinstance(scale, list) and len(scale) == 2 and scale[0] < scale[1]):
        _fail(scenario, "scale", "must be [low, high] of the integer score scale, or false", value=scale)
    analysis = raw.get("analysis", "fixed")
    if analysis != "fixed":
        _fail(scenario, "analysis", "only 'fixed' (subject, period and treatment fixed effects) is available",
              value=analysis)
    return TrialDesign(design=design, arms=list(arms), sequences=sequences, period=period, washout=washout,
                       baseline=baseline, sample_sizes=sorted(sizes), replicates=replicates, dropout=float(dropout),
                       endpoint=kind, output=output, days=tuple(days), threshold=threshold, alpha=float(alpha),
                       comparisons=pairs, scale=tuple(scale) if scale is not False else None)


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


def designs_of(scenario):
    """The trial designs a scenario asks for: one, or with ``versus`` one 2-arm design per other arm."""
    raw = scenario.trial
    versus = raw.get("versus")
    if versus is None:
        return [parse_trial(scenario)]
    names = [arm.name for arm in scenario.arms]
    if versus not in names:
        _fail(scenario, "versus", f"no arm named {versus!r} (arms: {', '.join(names)})")
    if "arms" in raw or "comparisons" in raw or isinstance(raw.get("sequences"), list):
        _fail(scenario, "versus", "give either versus or arms/comparisons/explicit sequences, not both")
    common = {k: v for k, v in raw.items() if k != "versus"}
    return [parse_trial(scenario, common | {"arms": [versus, name]}) for name in names if name != versus]


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
        :class:`pkpd._draws.UncertaintyResult`: ``.power`` per draw, ``.assurance()``
        (assurance = mean power over draws, with the distribution of power).

    Returns
    -------
    pandas.DataFrame
        Per sample size and comparison: power with its Monte Carlo 95 % interval
        (Clopper-Pearson), mean and SD of the estimate, mean CI width.
    """
    from ._scenario import load_scenario

    if not hasattr(scenario, "trial"):
        scenario = load_scenario(scenario)
    if scenario.trial is None:
        raise ScenarioError("has no [trial] section", file=scenario.path.name)
    if uncertainty is not None:
        from ._draws import trial_with_uncertainty

        return trial_with_uncertainty(scenario, uncertainty, replicates=replicates, executor=executor,
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
