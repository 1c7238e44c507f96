"""Continuous exposure metrics for a regimen search: extremes and window attainment between samples.

Nothing here knows about models or the engine: functions take sample times
``times`` (shape ``(n_times,)``), values ``values`` (shape ``(n_subjects,
n_times)``) and the times where the profile has a kink, and return arrays.

Grid independence
-----------------
A window metric ("stays within [low, high] from t0 to t1") is only as good as
the times it looks at. :func:`evaluation_times` therefore builds the times a
metric is evaluated at from three parts:

* the *kinks*: every dose time and every infusion end (where the derivative of
  a concentration jumps, so a peak or trough may sit exactly there) and the
  interval ends, all evaluated exactly, never read off the output grid;
* a dense grid of :data:`POINTS_PER_INTERVAL` steps over each interval;
* the caller's own output times.

Between two kinks the concentration of a model linear in its amounts is a
finite sum of exponentials plus a constant, a smooth function; with ``n``
exponential terms its derivative has at most ``n - 1`` zeros (Descartes' rule
of signs for exponential sums), so each smooth piece has at most ``n - 1``
interior extremes. A concentration that is within the window at two
consecutive evaluation times can only leave it in between through an interior
extreme, and an interior extreme whose neighbouring extremes are more than two
steps away shows as a *discrete extreme* of the samples (a sample no lower, or
no higher, than both neighbours). :func:`extremes` refines every discrete
extreme that is not at a kink by the vertex of the parabola through it and its
two neighbours, which places the extreme value with an error of order
``h**3 * max|c'''|`` (``h`` the step), instead of the order ``h**2 * max|c''|``
of the samples alone. With 120 steps per interval that error is far below any
clinical resolution (the tests check the peak of an oral dose whose true
maximum falls between coarse output times). What is not covered: two extremes
closer than two steps (a wiggle shorter than ``2 h``), and kinks the regimen
does not know of (lag times of the model's own ``[dosing]`` section).

The fraction of the interval spent within the window uses the crossing times of
:func:`pkpd.metrics.exposure_metrics` (linear between samples) on the same dense grid.

Monte Carlo intervals
---------------------
:func:`wilson_interval` for fractions of subjects, :func:`bootstrap_interval`
(percentile bootstrap over subjects, seeded) for every other statistic.
"""

import numpy as np

from .exposure import exposure_metrics

#: Steps of the dense evaluation grid over each metric's interval.
POINTS_PER_INTERVAL = 120
#: Level of the Monte Carlo intervals (two-sided).
LEVEL = 0.95
#: Bootstrap resamples of the subjects.
BOOTSTRAP_RESAMPLES = 1000


def kinks_of(regimen, start, stop):
    """Dose times and infusion ends of `regimen` within [start, stop], sorted and unique.

    Parameters
    ----------
    regimen : Regimen
    start, stop : float
        The span of interest (model time unit).

    Returns
    -------
    ndarray, shape (k,)
    """
    found = []
    for dose in regimen.doses:
        starts = dose.start_times()
        found.append(starts)
        if dose.duration > 0:
            found.append(starts + dose.duration)
    if not found:
        return np.zeros(0)
    times = np.unique(np.concatenate(found))
    return times[(times >= start) & (times <= stop)]


def evaluation_times(times, kinks, intervals, points=POINTS_PER_INTERVAL):
    """The sorted union of output times, kinks, interval ends and a dense grid over each interval.

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output times.
    kinks : array_like
        Dose times and infusion ends (see :func:`kinks_of`).
    intervals : sequence of (float, float)
        Intervals that need the dense grid (window metrics).
    points : int
        Steps of the dense grid over each interval.

    Returns
    -------
    ndarray
        Strictly increasing; values closer than 1e-9 of the span are merged to the first.
    """
    parts = [np.asarray(times, float), np.asarray(kinks, float)]
    for start, stop in intervals:
        parts.append(np.linspace(start, stop, points + 1))
    merged = np.unique(np.concatenate(parts))
    tolerance = 1e-9 * max(1.0, float(merged[-1] - merged[0]))
    keep = np.concatenate([[True], np.diff(merged) > tolerance])
    exact = np.unique(np.concatenate([np.asarray(kinks, float), *(np.asarray(i, float) for i in intervals)]))
    merged = merged[keep]
    # an exact time that was merged away replaces its near twin (kinks and interval ends are exact)
    index = np.clip(np.searchsorted(merged, exact), 0, merged.size - 1)
    left = np.clip(index - 1, 0, merged.size - 1)
    nearest = np.where(np.abs(merged[left] - exact) < np.abs(merged[index] - exact), left, index)
    merged[nearest] = exact
    return merged


def extremes(times, values, start, stop, kinks=()):
    """Minimum and maximum of each subject's profile over [start, stop], refined between samples.

    Parameters
    ----------
    times : ndarray, shape (n_times,)
        Evaluation times, increasing, containing `start`, `stop` and every kink in between.
    values : ndarray, shape (n_subjects, n_times)
    start, stop : float
    kinks : array_like
        Times where the profile may have a corner: no parabola is fitted across them.

    Returns
    -------
    low, high : ndarray, shape (n_subjects,)
        The sampled extremes, extended by the parabolic vertex of every interior discrete
        extreme that is not at a kink (see the module notes).
    """
    first = int(np.searchsorted(times, start - 1e-12 * max(1.0, abs(start)), side="left"))
    last = int(np.searchsorted(times, stop + 1e-12 * max(1.0, abs(stop)), side="right")) - 1
    window = values[:, first:last + 1]
    low, high = window.min(axis=1), window.max(axis=1)
    if last - first < 2:
        return low, high
    t = times[first:last + 1]
    u0 = (t[:-2] - t[1:-1])[None, :]                 # < 0
    u2 = (t[2:] - t[1:-1])[None, :]                  # > 0
    y1 = window[:, 1:-1]
    d0 = window[:, :-2] - y1
    d2 = window[:, 2:] - y1
    smooth = ~np.isin(t[1:-1], np.asarray(kinks, float))[None, :]
    curvature = (d0 / u0 - d2 / u2) / (u0 - u2)      # y = y1 + slope*u + curvature*u**2
    slope = d0 / u0 - curvature * u0
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = y1 - slope * slope / (4.0 * curvature)
    peak = smooth & (d0 <= 0) & (d2 <= 0) & (curvature < 0)
    trough = smooth & (d0 >= 0) & (d2 >= 0) & (curvature > 0)
    high = np.maximum(high, np.where(peak, vertex, -np.inf).max(axis=1))
    low = np.minimum(low, np.where(trough, vertex, np.inf).min(axis=1))
    return low, high


def window_metrics(times, values, low, high, start, stop, kinks=()):
    """Whether each subject stays within [low, high] throughout [start, stop], and the fraction of
    [start, stop] it spends within.

    Parameters
    ----------
    times, values, start, stop, kinks
        As in :func:`extremes` (`times` from :func:`evaluation_times`).
    low, high : float
        The window, in the unit of `values`.

    Returns
    -------
    stays : ndarray of bool, shape (n_subjects,)
    fraction : ndarray, shape (n_subjects,)
        Time within divided by ``stop - start`` (crossings by linear interpolation on `times`).
    """
    lowest, highest = extremes(times, values, start, stop, kinks)
    stays = (lowest >= low) & (highest <= high)
    within = exposure_metrics(times, values, interval=(start, stop), windows=[(low, high)])["time_within"][:, 0]
    return stays, np.clip(within / (stop - start), 0.0, 1.0)


def wilson_interval(successes, trials, level=LEVEL):
    """Wilson score interval of a binomial proportion (Wilson 1927).

    Parameters
    ----------
    successes, trials : int or ndarray
    level : float
        Two-sided coverage.

    Returns
    -------
    low, high : float or ndarray
    """
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    successes = np.asarray(successes, float)
    trials = np.asarray(trials, float)
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / denominator
    half = z * np.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denominator
    low = np.where(successes == 0, 0.0, np.clip(centre - half, 0.0, 1.0))    # exact ends (no rounding residue)
    high = np.where(successes == trials, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def resample_indices(n, seed, resamples=BOOTSTRAP_RESAMPLES):
    """Subject indices of `resamples` bootstrap samples of `n` subjects, shape (resamples, n), seeded.

    One set serves every candidate of a search (common random numbers again), so two
    candidates' intervals differ only by their metrics.
    """
    generator = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EA2C4]))
    return generator.integers(0, n, size=(resamples, n))


def bootstrap_interval(values, statistic, indices, level=LEVEL):
    """Percentile bootstrap interval of ``statistic(values)`` over subjects.

    Parameters
    ----------
    values : ndarray, shape (n_subjects,)
    statistic : callable
        Reduces an array (resamples, n_subjects) along axis 1.
    indices : ndarray, shape (resamples, n_subjects)
        From :func:`resample_indices`.

    Returns
    -------
    low, high : float
    """
    replicates = statistic(values[indices])
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)
