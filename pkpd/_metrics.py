"""Exposure metrics and percentiles over subjects, as pure array code.

Nothing here knows about models, regimens or the engine: every function takes
a time grid ``times`` (shape ``(n_times,)``) and concentrations ``values``
(shape ``(n_subjects, n_times)``) and returns arrays.

Exposure metrics
----------------
:func:`exposure_metrics` computes, per subject and over an interval
``[start, stop]`` of the time grid, Cmax, Tmax, Cmin, AUC, the average
concentration and the time spent above thresholds or within windows.
:func:`exposure_table` returns the same numbers as a :class:`pandas.DataFrame`
whose ``attrs["units"]`` gives the unit of every column.

Two interpolants are used between samples, each the convention of its metric:

* AUC, the average concentration and values at interval bounds that fall
  between samples use the *linear-up/log-down* interpolant: linear on a
  segment where the concentration rises, stays level, or where either end is
  zero or negative; exponential (log-linear) where it falls between two
  positive values.  AUC is therefore exact for a mono-exponential decline and
  additive over adjacent intervals.
* Crossing times for "time above" and "time within" use *linear*
  interpolation between the two samples of the segment, so a crossing inside
  a sampling interval is placed where the straight line between the samples
  crosses the level (not at a sample).

Percentiles over subjects
-------------------------
:func:`percentiles` is the exact path (identical to ``numpy.percentile`` with
``method="linear"``).  :class:`PercentileAccumulator` is the streaming path: a
per-time logarithmic-bucket sketch (the DDSketch construction of Masson, Rim
and Lee, VLDB 2019) that consumes chunks of subjects, can be merged with
sketches built elsewhere and has a fixed memory footprint.

Bad arguments raise :class:`pkpd.PkpdError` (a :class:`ValueError`) with a
one-line message naming the argument, the rule and the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._errors import PkpdError
from ._jit import jit

__all__ = [
    "exposure_metrics",
    "exposure_settings",
    "ExposureSettings",
    "summarise_output",
    "exposure_table",
    "percentiles",
    "PercentileAccumulator",
]

DEFAULT_QUANTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
"""Percentiles (in %) reported by default."""

METRICS = ("cmax", "tmax", "cmin", "auc", "cavg", "time_above", "time_within")
"""The keys of :func:`exposure_metrics`, in order."""


# --------------------------------------------------------------------------
# Validation (the kernels assume clean, C-contiguous float64 input)
# --------------------------------------------------------------------------


def _number(value) -> str:
    """Format a number compactly for an error message (``150``, ``0.5``)."""
    value = float(value)
    short = f"{value:g}"
    return short if float(short) == value or math.isnan(value) else repr(value)


def _validate_times(times) -> np.ndarray:
    """Return ``times`` as a 1-D float64 array, finite and strictly increasing."""
    times = np.ascontiguousarray(times, dtype=np.float64)
    if times.ndim != 1:
        raise PkpdError(f"times must be 1-D; got shape {times.shape}")
    if times.size < 2:
        raise PkpdError(f"times must hold at least 2 samples; got {times.size}")
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        index = bad[0]
        raise PkpdError(f"times must be finite; got {_number(times[index])} at index {index}")
    steps = np.diff(times)
    bad = np.flatnonzero(steps <= 0.0)
    if bad.size:
        index = bad[0] + 1
        raise PkpdError(
            f"times must be increasing; got {_number(times[index])} after "
            f"{_number(times[index - 1])} at index {index}"
        )
    return times


def _validate_values(values, n_times: int, name: str = "values") -> np.ndarray:
    """Return ``values`` as a finite float64 array of shape (n_subjects, n_times).

    A 1-D array of length ``n_times`` is taken as one subject.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[np.newaxis, :]
    if values.ndim != 2 or values.shape[1] != n_times:
        raise PkpdError(
            f"{name} must have shape (n_subjects, {n_times}) to match times; "
            f"got {np.shape(values)}"
        )
    values = np.ascontiguousarray(values)
    finite = np.isfinite(values)
    if not finite.all():
        subject, time_index = np.argwhere(~finite)[0]
        raise PkpdError(
            f"{name} must be finite; got {_number(values[subject, time_index])} "
            f"at subject {subject}, time index {time_index}"
        )
    return values


def _validate_interval(interval, times: np.ndarray) -> tuple[float, float]:
    """Return ``(start, stop)``: the whole grid by default, else checked bounds."""
    if interval is None:
        return float(times[0]), float(times[-1])
    try:
        start, stop = (float(bound) for bound in interval)
    except (TypeError, ValueError):
        raise PkpdError(
            f"interval must be a (start, stop) pair of times; got {interval!r}"
        ) from None
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise PkpdError(f"interval must be finite; got ({_number(start)}, {_number(stop)})")
    if not start < stop:
        raise PkpdError(f"start ({_number(start)}) must be below stop ({_number(stop)})", key="interval")
    if start < times[0]:
        raise PkpdError(
            f"interval: start ({_number(start)}) must not precede times[0] ({_number(times[0])})"
        )
    if stop > times[-1]:
        raise PkpdError(
            f"interval: stop ({_number(stop)}) must not exceed times[-1] ({_number(times[-1])})"
        )
    return start, stop


def _validate_thresholds(thresholds) -> np.ndarray:
    """Return ``thresholds`` as a 1-D float64 array of distinct finite levels."""
    levels = np.ascontiguousarray(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))
    if levels.ndim != 1:
        raise PkpdError(f"thresholds must be a sequence of numbers; got shape {levels.shape}")
    for index, level in enumerate(levels):
        if not math.isfinite(level):
            raise PkpdError(f"thresholds[{index}] must be finite; got {_number(level)}")
        earlier = np.flatnonzero(levels[:index] == level)
        if earlier.size:
            raise PkpdError(
                f"thresholds[{index}] ({_number(level)}) must be distinct; "
                f"it repeats thresholds[{earlier[0]}]"
            )
    return levels


def _validate_windows(windows) -> tuple[np.ndarray, np.ndarray]:
    """Return the lower and upper bounds of ``windows`` as two float64 arrays."""
    lows, highs = [], []
    for index, window in enumerate(windows):
        try:
            low, high = (float(bound) for bound in window)
        except (TypeError, ValueError):
            raise PkpdError(
                f"windows[{index}] must be a (low, high) pair; got {window!r}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise PkpdError(
                f"windows[{index}] must be finite; got ({_number(low)}, {_number(high)})"
            )
        if not low < high:
            raise PkpdError(
                f"windows[{index}]: low ({_number(low)}) must be below high ({_number(high)})"
            )
        if (low, high) in zip(lows, highs):
            raise PkpdError(
                f"windows[{index}] ({_number(low)}, {_number(high)}) must be distinct; "
                f"it repeats windows[{list(zip(lows, highs)).index((low, high))}]"
            )
        lows.append(low)
        highs.append(high)
    return np.array(lows, dtype=np.float64), np.array(highs, dtype=np.float64)


def _validate_quantiles(quantiles) -> np.ndarray:
    """Return ``quantiles`` (percent) as a 1-D float64 array within [0, 100]."""
    levels = np.ascontiguousarray(np.atleast_1d(np.asarray(quantiles, dtype=np.float64)))
    if levels.ndim != 1 or levels.size == 0:
        raise PkpdError(f"quantiles must be a non-empty sequence of percents; got {quantiles!r}")
    for index, level in enumerate(levels):
        if not 0.0 <= level <= 100.0:
            raise PkpdError(
                f"quantiles[{index}] must be a percent within [0, 100]; got {_number(level)}"
            )
    return levels


# --------------------------------------------------------------------------
# Exposure-metric kernels
# --------------------------------------------------------------------------


@jit
def _interpolate(time, time_1, time_2, value_1, value_2, log_segment):
    """Value at ``time`` on a segment by the linear-up/log-down interpolant."""
    fraction = (time - time_1) / (time_2 - time_1)
    if log_segment:
        return value_1 * math.exp(math.log(value_2 / value_1) * fraction)
    return value_1 + (value_2 - value_1) * fraction


@jit
def _piece_area(width, value_low, value_high, log_segment):
    """Area of one piece: trapezoid, or exact exponential area on log segments.

    The exponential area ``width * (c1 - c2) / log(c1 / c2)`` is written as
    ``width * c1 * expm1(x) / x`` with ``x = log(c2 / c1)``, which stays
    accurate when ``c1`` and ``c2`` are nearly equal.
    """
    if log_segment:
        exponent = math.log(value_high / value_low)
        if exponent == 0.0:
            return width * value_low
        return width * value_low * (math.expm1(exponent) / exponent)
    return 0.5 * width * (value_low + value_high)


@jit
def _time_above_in_piece(threshold, time_1, time_2, value_1, value_2, low, high):
    """Time in ``[low, high]`` where the linear interpolant exceeds ``threshold``."""
    if value_1 == value_2:
        return high - low if value_1 > threshold else 0.0
    crossing = time_1 + (time_2 - time_1) * (threshold - value_1) / (value_2 - value_1)
    if value_2 > value_1:
        return max(0.0, high - max(crossing, low))
    return max(0.0, min(crossing, high) - low)


@jit
def _time_within_in_piece(lower, upper, time_1, time_2, value_1, value_2, low, high):
    """Time in ``[low, high]`` where the linear interpolant is in ``[lower, upper]``."""
    if value_1 == value_2:
        return high - low if lower <= value_1 <= upper else 0.0
    scale = (time_2 - time_1) / (value_2 - value_1)
    crossing_lower = time_1 + (lower - value_1) * scale
    crossing_upper = time_1 + (upper - value_1) * scale
    enter = min(crossing_lower, crossing_upper)
    leave = max(crossing_lower, crossing_upper)
    return max(0.0, min(leave, high) - max(enter, low))


@jit
def _exposure_row(times, row, start, stop, first_segment, end_segment, thresholds, window_lows, window_highs,
                  time_above, time_within):
    """One subject's metrics: returns (cmax, tmax, cmin, auc) and adds its times above
    thresholds and within windows to ``time_above`` (n_thresholds,) and ``time_within``
    (n_windows,), which the caller zeroes. ``row`` (n_times,) may be a strided view.

    Only the first and the last segment can reach outside ``[start, stop]``: the others
    are taken whole, without clipping (the same numbers, fewer operations).
    """
    best_max = -math.inf
    best_min = math.inf
    time_of_max = start
    area = 0.0
    for segment in range(first_segment, end_segment):
        time_1 = times[segment]
        time_2 = times[segment + 1]
        value_1 = row[segment]
        value_2 = row[segment + 1]
        log_segment = value_1 > value_2 > 0.0
        low, high, value_low, value_high = time_1, time_2, value_1, value_2
        if segment == first_segment or segment == end_segment - 1:
            low = max(time_1, start)
            high = min(time_2, stop)
            if low > time_1:
                value_low = _interpolate(low, time_1, time_2, value_1, value_2, log_segment)
            if high < time_2:
                value_high = _interpolate(high, time_1, time_2, value_1, value_2, log_segment)
            if segment == first_segment:
                best_max = value_low
                best_min = value_low
                time_of_max = low
        if value_high > best_max:
            best_max = value_high
            time_of_max = high
        best_min = min(best_min, value_high)
        area += _piece_area(high - low, value_low, value_high, log_segment)
    if thresholds.size or window_lows.size:   # a loop of its own: without them the one above runs faster
        for segment in range(first_segment, end_segment):
            time_1 = times[segment]
            time_2 = times[segment + 1]
            low = max(time_1, start)
            high = min(time_2, stop)
            for index in range(thresholds.size):
                time_above[index] += _time_above_in_piece(
                    thresholds[index], time_1, time_2, row[segment], row[segment + 1], low, high
                )
            for index in range(window_lows.size):
                time_within[index] += _time_within_in_piece(
                    window_lows[index], window_highs[index],
                    time_1, time_2, row[segment], row[segment + 1], low, high,
                )
    return best_max, time_of_max, best_min, area


@jit
def _exposure_kernel(
    times,
    values,
    start,
    stop,
    first_segment,
    end_segment,
    thresholds,
    window_lows,
    window_highs,
    cmax,
    tmax,
    cmin,
    auc,
    time_above,
    time_within,
):
    """Fill the preallocated per-subject outputs (one pass per subject).

    Segments ``first_segment .. end_segment - 1`` (segment ``j`` joins samples
    ``j`` and ``j + 1``) are those overlapping ``[start, stop]``; each is
    clipped to the interval.  ``time_above`` has shape (n_subjects,
    n_thresholds) and ``time_within`` (n_subjects, n_windows).
    """
    for subject in range(values.shape[0]):
        time_above[subject, :] = 0.0
        time_within[subject, :] = 0.0
        cmax[subject], tmax[subject], cmin[subject], auc[subject] = _exposure_row(
            times, values[subject], start, stop, first_segment, end_segment, thresholds, window_lows,
            window_highs, time_above[subject], time_within[subject],
        )


# --------------------------------------------------------------------------
# Exposure metrics: public functions
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposureSettings:
    """What the exposure metrics of a time grid need, checked once (see :func:`exposure_settings`).

    Attributes
    ----------
    times : ndarray, shape (n_times,), h
    start, stop : float, h
        The interval.
    first_segment, end_segment : int
        Segments ``first_segment .. end_segment - 1`` (segment ``j`` joins samples ``j``
        and ``j + 1``) overlap the interval.
    thresholds : ndarray, shape (n_thresholds,), concentration unit
    window_lows, window_highs : ndarray, shape (n_windows,), concentration unit
    """
    times: np.ndarray
    start: float
    stop: float
    first_segment: int
    end_segment: int
    thresholds: np.ndarray
    window_lows: np.ndarray
    window_highs: np.ndarray


def exposure_settings(times, *, interval: tuple[float, float] | None = None, thresholds: Sequence[float] = (),
                      windows: Sequence[tuple[float, float]] = ()) -> ExposureSettings:
    """Check the arguments of :func:`exposure_metrics` other than the values, once for many calls.

    Raises :class:`pkpd.PkpdError` naming the argument, the rule and the value.
    """
    times = _validate_times(times)
    start, stop = _validate_interval(interval, times)
    levels = _validate_thresholds(thresholds)
    window_lows, window_highs = _validate_windows(windows)
    first_segment = min(int(np.searchsorted(times, start, side="right")) - 1, times.size - 2)
    end_segment = int(np.searchsorted(times, stop, side="left"))
    return ExposureSettings(times=times, start=start, stop=stop, first_segment=first_segment,
                            end_segment=end_segment, thresholds=levels, window_lows=window_lows,
                            window_highs=window_highs)


def exposure_metrics(
    times,
    values,
    *,
    interval: tuple[float, float] | None = None,
    thresholds: Sequence[float] = (),
    windows: Sequence[tuple[float, float]] = (),
) -> dict[str, np.ndarray]:
    """Per-subject exposure metrics over an interval of the time grid.

    Parameters
    ----------
    times : array_like, shape (n_times,), h
        Sample times, finite and strictly increasing, at least 2.
    values : array_like, shape (n_subjects, n_times), concentration unit
        Concentrations, finite (zero and negative values are allowed).  A 1-D
        array of length n_times is taken as one subject.
    interval : (float, float), optional, h
        ``(start, stop)`` within ``[times[0], times[-1]]`` with
        ``start < stop``.  Bounds between samples are handled by the
        linear-up/log-down interpolant.  Default: the whole grid.
    thresholds : sequence of float, concentration unit
        Distinct levels for "time above" (strictly above the level).
    windows : sequence of (float, float), concentration unit
        Distinct ``(low, high)`` pairs with ``low < high`` for "time within"
        (``low <= concentration <= high``), e.g. above the analgesic C50 and
        below a psychotomimetic level.

    Returns
    -------
    dict of str to ndarray
        ``"cmax"`` (n_subjects,), concentration unit: maximum over the
        interval.
        ``"tmax"`` (n_subjects,), h: first time at which ``cmax`` is reached.
        ``"cmin"`` (n_subjects,), concentration unit: minimum (trough) over
        the interval.
        ``"auc"`` (n_subjects,), concentration unit * h: area by the
        linear-up/log-down trapezoidal rule.
        ``"cavg"`` (n_subjects,), concentration unit: ``auc / (stop - start)``.
        ``"time_above"`` (n_subjects, n_thresholds), h.
        ``"time_within"`` (n_subjects, n_windows), h.

    Notes
    -----
    On each sampling segment ``[t1, t2]`` with concentrations ``c1, c2``:

    * AUC is ``(t2 - t1) (c1 + c2) / 2`` when ``c2 >= c1`` or either value is
      zero or negative, and ``(t2 - t1) (c1 - c2) / log(c1 / c2)`` when
      ``c1 > c2 > 0``.  The log rule is exact for an exponential decline.
    * Cmax, Tmax and Cmin are taken over the samples inside the interval and
      the interpolated values at its bounds.
    * Crossing times of a threshold or window bound are found by *linear*
      interpolation between ``(t1, c1)`` and ``(t2, c2)``.  For a profile with
      curvature ``c''`` and slope ``c'`` at the crossing, the error in each
      crossing time is at most about ``(t2 - t1)**2 / 8 * max|c''| / |c'|``.
      Where the concentration stays exactly at a level, "above" does not
      count it and "within" does.

    Examples
    --------
    >>> import numpy as np
    >>> times = np.array([0.0, 1.0, 2.0, 3.0])
    >>> values = np.array([[0.0, 4.0, 2.0, 1.0]])
    >>> metrics = exposure_metrics(times, values, thresholds=[3.0])
    >>> float(metrics["cmax"][0]), float(metrics["tmax"][0])
    (4.0, 1.0)
    >>> round(float(metrics["auc"][0]), 4)  # 2 + 2/ln 2 + 1/ln 2
    6.3281
    >>> float(metrics["time_above"][0, 0])  # from 0.75 h to 1.5 h
    0.75
    """
    settings = exposure_settings(times, interval=interval, thresholds=thresholds, windows=windows)
    values = _validate_values(values, settings.times.size)
    n_subjects = values.shape[0]
    metrics = {
        name: np.empty(n_subjects, dtype=np.float64) for name in ("cmax", "tmax", "cmin", "auc")
    }
    metrics["time_above"] = np.empty((n_subjects, settings.thresholds.size), dtype=np.float64)
    metrics["time_within"] = np.empty((n_subjects, settings.window_lows.size), dtype=np.float64)
    _exposure_kernel(
        settings.times, values, settings.start, settings.stop, settings.first_segment, settings.end_segment,
        settings.thresholds, settings.window_lows, settings.window_highs,
        metrics["cmax"], metrics["tmax"], metrics["cmin"], metrics["auc"],
        metrics["time_above"], metrics["time_within"],
    )
    metrics["cavg"] = metrics["auc"] / (settings.stop - settings.start)
    return {name: metrics[name] for name in METRICS}


def _metric_units(concentration_unit: str, time_unit: str) -> dict[str, str]:
    """Unit of each scalar metric, from the concentration and time units."""
    return {
        "cmax": concentration_unit,
        "tmax": time_unit,
        "cmin": concentration_unit,
        "auc": f"{concentration_unit}*{time_unit}",
        "cavg": concentration_unit,
    }


def exposure_table(
    times,
    values,
    *,
    concentration_unit: str,
    time_unit: str = "h",
    interval: tuple[float, float] | None = None,
    thresholds: Sequence[float] = (),
    windows: Sequence[tuple[float, float]] = (),
    subject_ids=None,
) -> pd.DataFrame:
    """Exposure metrics as a table, one row per subject, with units.

    Parameters
    ----------
    times, values, interval, thresholds, windows
        As in :func:`exposure_metrics`.
    concentration_unit : str
        Unit of ``values``, e.g. ``"ng/mL"``.
    time_unit : str, default "h"
        Unit of ``times``.
    subject_ids : array_like, shape (n_subjects,), optional
        Row labels; default ``0 .. n_subjects - 1`` (row numbers of
        ``values``).

    Returns
    -------
    pandas.DataFrame
        Index ``ID``; columns ``cmax, tmax, cmin, auc, cavg``, then
        ``time_above_<level>`` for each threshold and
        ``time_within_<low>_<high>`` for each window (levels formatted with
        ``%g`` in the concentration unit).  ``attrs["units"]`` maps every
        column to its unit (AUC in ``"<concentration>*<time>"``) and
        ``attrs["interval"]`` holds ``(start, stop)``.

    Examples
    --------
    >>> import numpy as np
    >>> table = exposure_table([0.0, 1.0, 2.0], [[0.0, 20.0, 5.0]],
    ...                        concentration_unit="ng/mL", windows=[(10, 150)])
    >>> list(table.columns)
    ['cmax', 'tmax', 'cmin', 'auc', 'cavg', 'time_within_10_150']
    >>> table.attrs["units"]["auc"]
    'ng/mL*h'
    """
    times = _validate_times(times)
    metrics = exposure_metrics(
        times, values, interval=interval, thresholds=thresholds, windows=windows
    )
    units = _metric_units(concentration_unit, time_unit)
    columns = {name: metrics[name] for name in units}
    for index, level in enumerate(_validate_thresholds(thresholds)):
        name = f"time_above_{level:g}"
        columns[name] = metrics["time_above"][:, index]
        units[name] = time_unit
    lows, highs = _validate_windows(windows)
    for index, (low, high) in enumerate(zip(lows, highs)):
        name = f"time_within_{low:g}_{high:g}"
        columns[name] = metrics["time_within"][:, index]
        units[name] = time_unit
    n_subjects = metrics["cmax"].size
    if subject_ids is None:
        subject_ids = np.arange(n_subjects)
    subject_ids = np.asarray(subject_ids)
    if subject_ids.shape != (n_subjects,):
        raise PkpdError(
            f"subject_ids must have shape ({n_subjects},) to match values; got {subject_ids.shape}"
        )
    table = pd.DataFrame(columns, index=pd.Index(subject_ids, name="ID"))
    table.attrs["units"] = units
    table.attrs["interval"] = _validate_interval(interval, times)
    return table


# --------------------------------------------------------------------------
# Percentiles: exact path
# --------------------------------------------------------------------------


def percentiles(values, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> np.ndarray:
    """Exact percentiles over subjects at each time.

    Parameters
    ----------
    values : array_like, shape (n_subjects, n_times), any unit
        Finite values, all held in memory.
    quantiles : sequence of float, %
        Percents within [0, 100].

    Returns
    -------
    ndarray, shape (n_quantiles, n_times), unit of ``values``
        Identical to ``numpy.percentile(values, quantiles, axis=0,
        method="linear")``.

    Examples
    --------
    >>> percentiles([[1.0, 10.0], [3.0, 30.0]], quantiles=[50]).tolist()
    [[2.0, 20.0]]
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise PkpdError(
            f"values must have shape (n_subjects, n_times) with n_subjects >= 1; got {values.shape}"
        )
    values = _validate_values(values, values.shape[1])
    levels = _validate_quantiles(quantiles)
    return np.percentile(values, levels, axis=0, method="linear")


# --------------------------------------------------------------------------
# Percentiles: streaming sketch kernels
# --------------------------------------------------------------------------
#
# A "store" holds, for each time column, counts of bucket keys of |x| for one
# sign.  Key k covers magnitudes (gamma**(k-1), gamma**k].  Column t keeps
# ``max_bins`` counters for keys offset[t] .. offset[t] + max_bins - 1, where
#     offset[t] = max(min_key[t], max_key[t] - max_bins + 1)
# and counter 0 holds every key <= offset[t] (the collapsed, smallest
# magnitudes).  The state is a function of the multiset of keys only, so
# adding chunks in any order, or merging sketches, gives identical arrays.

_EMPTY_MIN_KEY = np.iinfo(np.int64).max
_EMPTY_MAX_KEY = np.iinfo(np.int64).min


@jit
def _bucket_key(value, inverse_log_gamma):
    """Bucket key of a nonzero value: its magnitude lies in (gamma**(key-1), gamma**key]."""
    return np.int64(math.ceil(math.log(abs(value)) * inverse_log_gamma))


@jit
def _sketch_row_keys(row, inverse_log_gamma, keys, chunk_min_keys, chunk_max_keys, zero_counts):
    """:func:`_sketch_keys` for one subject: ``row`` and ``keys`` (n_times,), either may be a strided view."""
    for column in range(row.size):
        value = row[column]
        if value == 0.0:
            zero_counts[column] += 1
            keys[column] = 0
            continue
        sign_row = 0 if value > 0.0 else 1
        key = _bucket_key(value, inverse_log_gamma)
        keys[column] = key
        if key < chunk_min_keys[sign_row, column]:
            chunk_min_keys[sign_row, column] = key
        if key > chunk_max_keys[sign_row, column]:
            chunk_max_keys[sign_row, column] = key


@jit
def _sketch_keys(chunk, inverse_log_gamma, keys, chunk_min_keys, chunk_max_keys, zero_counts):
    """Bucket key of every nonzero value; per-column key range for each sign.

    ``chunk_min_keys`` and ``chunk_max_keys`` have shape (2, n_times): row 0
    for positive values, row 1 for negative values.
    """
    for row in range(chunk.shape[0]):
        _sketch_row_keys(chunk[row], inverse_log_gamma, keys[row], chunk_min_keys, chunk_max_keys, zero_counts)


@jit
def _rebase_column(counts_row, old_offset, new_offset, scratch):
    """Move the counters of one column from ``old_offset`` to ``new_offset``."""
    max_bins = counts_row.size
    scratch[:] = 0
    for old_bin in range(max_bins):
        count = counts_row[old_bin]
        if count != 0:
            new_bin = max(old_offset + old_bin - new_offset, 0)
            scratch[new_bin] += count
    counts_row[:] = scratch


@jit
def _widen_store(counts, offsets, min_keys, max_keys, new_min_keys, new_max_keys):
    """Extend each column's key range to include ``[new_min, new_max]``."""
    n_times, max_bins = counts.shape
    scratch = np.zeros(max_bins, dtype=np.int64)
    for column in range(n_times):
        if new_min_keys[column] > new_max_keys[column]:
            continue  # nothing new in this column
        low = min(min_keys[column], new_min_keys[column])
        high = max(max_keys[column], new_max_keys[column])
        offset = max(low, high - max_bins + 1)
        empty = min_keys[column] > max_keys[column]
        if not empty and offset != offsets[column]:
            _rebase_column(counts[column], offsets[column], offset, scratch)
        offsets[column] = offset
        min_keys[column] = low
        max_keys[column] = high


@jit
def _count_keys(chunk, keys, sign, counts, offsets):
    """Add the keys of the values of sign ``sign`` (+1 or -1) to a store."""
    n_rows, n_times = chunk.shape
    for row in range(n_rows):
        for column in range(n_times):
            value = chunk[row, column]
            if (sign > 0 and value > 0.0) or (sign < 0 and value < 0.0):
                counter = max(keys[row, column] - offsets[column], 0)
                counts[column, counter] += 1


@jit
def _merge_store(counts, offsets, min_keys, max_keys,
                 other_counts, other_offsets, other_min_keys, other_max_keys):
    """Add another store into this one, column by column."""
    n_times, max_bins = counts.shape
    _widen_store(counts, offsets, min_keys, max_keys, other_min_keys, other_max_keys)
    for column in range(n_times):
        if other_min_keys[column] > other_max_keys[column]:
            continue
        for other_bin in range(max_bins):
            count = other_counts[column, other_bin]
            if count != 0:
                counter = max(other_offsets[column] + other_bin - offsets[column], 0)
                counts[column, counter] += count


@jit
def _bucket_value(key, log_gamma, midpoint_factor):
    """Representative magnitude of bucket ``key``: within alpha of all it holds."""
    return math.exp((key - 1) * log_gamma) * midpoint_factor


@jit
def _order_statistic(rank, column, positive_counts, positive_offsets, negative_counts,
                     negative_offsets, zero_counts, log_gamma, midpoint_factor):
    """Estimated value of 0-based order statistic ``rank`` in one column."""
    negative_bins = negative_counts.shape[1]
    cumulative = 0
    for counter in range(negative_bins - 1, -1, -1):  # most negative first
        cumulative += negative_counts[column, counter]
        if rank < cumulative:
            key = negative_offsets[column] + counter
            return -_bucket_value(key, log_gamma, midpoint_factor)
    cumulative += zero_counts[column]
    if rank < cumulative:
        return 0.0
    for counter in range(positive_counts.shape[1]):
        cumulative += positive_counts[column, counter]
        if rank < cumulative:
            key = positive_offsets[column] + counter
            return _bucket_value(key, log_gamma, midpoint_factor)
    return math.nan  # unreachable when rank < number of values


@jit
def _sketch_quantiles(positive_counts, positive_offsets, negative_counts, negative_offsets,
                      zero_counts, n_values, fractions, log_gamma, midpoint_factor, out):
    """Fill ``out`` (n_quantiles, n_times) by linear interpolation of ranks."""
    n_times = positive_counts.shape[0]
    for column in range(n_times):
        for index in range(fractions.size):
            position = fractions[index] * (n_values - 1)
            rank = np.int64(math.floor(position))
            weight = position - rank
            lower = _order_statistic(rank, column, positive_counts, positive_offsets,
                                     negative_counts, negative_offsets, zero_counts,
                                     log_gamma, midpoint_factor)
            value = lower
            if weight > 0.0:
                upper = _order_statistic(rank + 1, column, positive_counts, positive_offsets,
                                         negative_counts, negative_offsets, zero_counts,
                                         log_gamma, midpoint_factor)
                value = lower + weight * (upper - lower)
            out[index, column] = value


# --------------------------------------------------------------------------
# Both in one pass (the streamed summary)
# --------------------------------------------------------------------------


@jit
def _summarise_output(times, values, column, start, stop, first_segment, end_segment, thresholds, window_lows,
                      window_highs, inverse_log_gamma, cmax, tmax, cmin, auc, cavg, time_above, time_within, rows,
                      keys, chunk_min_keys, chunk_max_keys, zero_counts):
    """Exposure metrics and sketch keys of output `column` for every subject of a chunk, in one pass
    (see :func:`summarise_output`).

    Parameters
    ----------
    times : ndarray, shape (n_times,)
    values : ndarray, shape (m * n_times, n_outputs)
        The engine's outputs: subject s at rows ``s * n_times`` to ``(s + 1) * n_times - 1``.
    cmax, tmax, cmin, auc, cavg : ndarray, shape (m,)
    time_above, time_within : ndarray, shape (m, n_thresholds), (m, n_windows)
    rows : ndarray, shape (m, n_times)
        Receives the output's values, subject by subject (contiguous, for the sketch's count).
    keys : ndarray of int64, shape (m, n_times)
    chunk_min_keys, chunk_max_keys, zero_counts
        As :func:`_sketch_keys` takes them (updated in place).

    Returns
    -------
    int
        The row of `values` whose value in `column` is not finite (nothing is written for
        that subject or the next ones), or -1.
    """
    n_times = times.size
    for subject in range(cmax.size):
        row = rows[subject]
        for index in range(n_times):
            row[index] = values[subject * n_times + index, column]
            if not math.isfinite(row[index]):
                return subject * n_times + index
        time_above[subject, :] = 0.0
        time_within[subject, :] = 0.0
        cmax[subject], tmax[subject], cmin[subject], auc[subject] = _exposure_row(
            times, row, start, stop, first_segment, end_segment, thresholds, window_lows, window_highs,
            time_above[subject], time_within[subject])
        cavg[subject] = auc[subject] / (stop - start)
        _sketch_row_keys(row, inverse_log_gamma, keys[subject], chunk_min_keys, chunk_max_keys, zero_counts)
    return -1


# --------------------------------------------------------------------------
# Percentiles: streaming, mergeable accumulator
# --------------------------------------------------------------------------


class _LogStore:
    """Per-time bucket counters for the magnitudes of one sign (see above)."""

    def __init__(self, n_times: int, max_bins: int):
        self.counts = np.zeros((n_times, max_bins), dtype=np.int64)
        self.offsets = np.zeros(n_times, dtype=np.int64)
        self.min_keys = np.full(n_times, _EMPTY_MIN_KEY, dtype=np.int64)
        self.max_keys = np.full(n_times, _EMPTY_MAX_KEY, dtype=np.int64)

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.counts, self.offsets, self.min_keys, self.max_keys

    def add(self, chunk, keys, sign, chunk_min_keys, chunk_max_keys) -> None:
        _widen_store(self.counts, self.offsets, self.min_keys, self.max_keys,
                     chunk_min_keys, chunk_max_keys)
        _count_keys(chunk, keys, sign, self.counts, self.offsets)

    def merge(self, other: _LogStore) -> None:
        _merge_store(*self.arrays(), *other.arrays())

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays())


class PercentileAccumulator:
    """Streaming, mergeable percentiles over subjects at each time.

    A per-time relative-accuracy sketch (DDSketch construction).  Positive
    values are counted in logarithmic buckets of ratio
    ``gamma = (1 + alpha) / (1 - alpha)``, negative values in a mirrored
    store of their magnitudes, and exact zeros in a counter of their own.

    Parameters
    ----------
    n_times : int
        Number of time points (columns of every chunk).
    quantiles : sequence of float, default (5, 25, 50, 75, 95), %
        Percents within [0, 100] reported by :meth:`result`.
    relative_accuracy : float, default 0.005
        ``alpha`` in (0, 1): the relative error bound (0.5 % by default).
    max_bins : int, default 2048
        Counters per time and sign; fixes the memory at
        ``8 * n_times * max_bins`` bytes per sign in use (3.2 MB for 193
        times), whatever the number of subjects.

    Notes
    -----
    *Error bound.*  Each bucket's representative value is within a relative
    ``alpha`` of every value in the bucket, so every estimated order
    statistic ``x^_(k)`` satisfies ``|x^_(k) - x_(k)| <= alpha |x_(k)|``.
    :meth:`result` interpolates ranks exactly as ``numpy.percentile`` with
    ``method="linear"`` does, ``q = (1 - w) x_(k) + w x_(k+1)``, hence
    ``|q^ - q| <= alpha ((1 - w) |x_(k)| + w |x_(k+1)|)``, which is
    ``alpha |q|`` when both order statistics have the same sign (always the
    case for concentrations).  Rounding in ``log`` can move a value lying on
    a bucket edge to the neighbouring bucket, adding a few ulps to the bound.

    *Collapse floor.*  Each time column keeps ``max_bins`` consecutive buckets
    anchored at the largest magnitude seen; magnitudes smaller than
    ``floor = max|x| * gamma**-(max_bins - 1)`` (about ``1.3e-9 * max|x|``
    with the defaults, i.e. 9 decades) share the lowest counter and are
    reported as about ``floor``.  The full bound is therefore
    ``|q^ - q| <= alpha |q| + floor``, with ``floor`` per time given by
    :meth:`collapse_floor` (0 where nothing was collapsed).  This matters only
    for quantiles many decades below the largest value at that time, such as
    the washed-out tail of fast eliminators; raise ``max_bins`` for a wider
    exact range (memory grows linearly with it).

    *Merging.*  The state depends only on the multiset of values added, so
    ``a.merge(b)`` leaves ``a`` in exactly the state one accumulator fed
    with all of ``a``'s and ``b``'s chunks would have, in any order.  The
    object holds only numpy arrays and pickles, so chunks reduced on
    different workers can be merged later.

    Examples
    --------
    >>> import numpy as np
    >>> generator = np.random.default_rng(1)
    >>> first, second = PercentileAccumulator(3), PercentileAccumulator(3)
    >>> first.add(generator.lognormal(size=(500, 3)))
    >>> second.add(generator.lognormal(size=(500, 3)))
    >>> first.merge(second)
    >>> first.n_subjects, first.result().shape
    (1000, (5, 3))
    """

    def __init__(
        self,
        n_times: int,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        relative_accuracy: float = 0.005,
        max_bins: int = 2048,
    ):
        if int(n_times) != n_times or n_times < 1:
            raise PkpdError(f"n_times must be a positive integer; got {n_times!r}")
        if not 0.0 < relative_accuracy < 1.0:
            raise PkpdError(
                f"relative_accuracy must be within (0, 1); got {_number(relative_accuracy)}"
            )
        if int(max_bins) != max_bins or max_bins < 2:
            raise PkpdError(f"max_bins must be an integer >= 2; got {max_bins!r}")
        self.n_times = int(n_times)
        self.quantiles = _validate_quantiles(quantiles)
        self.relative_accuracy = float(relative_accuracy)
        self.max_bins = int(max_bins)
        gamma = (1.0 + self.relative_accuracy) / (1.0 - self.relative_accuracy)
        self._log_gamma = math.log(gamma)
        self._midpoint_factor = 2.0 * gamma / (1.0 + gamma)
        self.n_subjects = 0
        self._zero_counts = np.zeros(self.n_times, dtype=np.int64)
        self._positive = _LogStore(self.n_times, self.max_bins)
        self._negative: _LogStore | None = None  # allocated at the first negative value

    def add(self, chunk) -> None:
        """Add a chunk of subjects.

        Parameters
        ----------
        chunk : array_like, shape (n_chunk, n_times), any unit
            Finite values; a 1-D array of length n_times is one subject.
        """
        chunk = _validate_values(chunk, self.n_times, name="chunk")
        keys = np.empty(chunk.shape, dtype=np.int64)
        chunk_min_keys, chunk_max_keys = self._empty_key_ranges()
        _sketch_keys(chunk, 1.0 / self._log_gamma, keys, chunk_min_keys, chunk_max_keys,
                     self._zero_counts)
        self._add_keys(chunk, keys, chunk_min_keys, chunk_max_keys)

    def _empty_key_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """The (min, max) key arrays, shape (2, n_times) each (positive, negative), of no values."""
        return (np.full((2, self.n_times), _EMPTY_MIN_KEY, dtype=np.int64),
                np.full((2, self.n_times), _EMPTY_MAX_KEY, dtype=np.int64))

    def _add_keys(self, chunk, keys, chunk_min_keys, chunk_max_keys) -> None:
        """Count a chunk whose bucket keys a key pass has already computed (:meth:`add`'s second half).

        Parameters
        ----------
        chunk : ndarray, shape (n_chunk, n_times)
            The finite values; their zeros are already counted.
        keys : ndarray of int64, shape (n_chunk, n_times)
        chunk_min_keys, chunk_max_keys : ndarray of int64, shape (2, n_times)
            Per time, the smallest and largest key of the positive (row 0) and negative (row 1) values.
        """
        self._positive.add(chunk, keys, 1, chunk_min_keys[0], chunk_max_keys[0])
        if (chunk_min_keys[1] <= chunk_max_keys[1]).any():
            if self._negative is None:
                self._negative = _LogStore(self.n_times, self.max_bins)
            self._negative.add(chunk, keys, -1, chunk_min_keys[1], chunk_max_keys[1])
        self.n_subjects += chunk.shape[0]

    def merge(self, other: PercentileAccumulator) -> None:
        """Add the subjects of ``other`` (built with the same settings) to this one."""
        for name in ("n_times", "relative_accuracy", "max_bins"):
            if getattr(other, name) != getattr(self, name):
                raise PkpdError(
                    f"merge: other.{name} ({getattr(other, name)}) must equal "
                    f"this accumulator's {name} ({getattr(self, name)})"
                )
        self._zero_counts += other._zero_counts
        self._positive.merge(other._positive)
        if other._negative is not None:
            if self._negative is None:
                self._negative = _LogStore(self.n_times, self.max_bins)
            self._negative.merge(other._negative)
        self.n_subjects += other.n_subjects

    def result(self) -> np.ndarray:
        """Estimated percentiles.

        Returns
        -------
        ndarray, shape (n_quantiles, n_times), unit of the values added
            Within the bound stated in the class notes of
            ``numpy.percentile(all_values, quantiles, axis=0, method="linear")``.
        """
        if self.n_subjects == 0:
            raise PkpdError("no subjects have been added", key="PercentileAccumulator.result")
        negative = self._negative if self._negative is not None else _LogStore(self.n_times, 1)
        out = np.empty((self.quantiles.size, self.n_times), dtype=np.float64)
        _sketch_quantiles(
            self._positive.counts, self._positive.offsets, negative.counts, negative.offsets,
            self._zero_counts, self.n_subjects, self.quantiles / 100.0,
            self._log_gamma, self._midpoint_factor, out,
        )
        return out

    def collapse_floor(self) -> np.ndarray:
        """Magnitude below which values were collapsed, per time.

        Returns
        -------
        ndarray, shape (n_times,), unit of the values added
            ``gamma**offset`` of the lowest counter where values were
            collapsed into it (for either sign), else 0.  Every result is
            within ``alpha * |q| + floor`` of the exact percentile ``q``.
        """
        floor = np.zeros(self.n_times, dtype=np.float64)
        for store in (self._positive, self._negative):
            if store is None:
                continue
            collapsed = store.min_keys < store.offsets
            store_floor = np.exp(store.offsets * self._log_gamma)
            floor = np.maximum(floor, np.where(collapsed, store_floor, 0.0))
        return floor

    def state(self) -> dict[str, np.ndarray | int | None]:
        """Copy of the full sketch state (for tests and inspection)."""
        return {
            "n_subjects": self.n_subjects,
            "zero_counts": self._zero_counts.copy(),
            "positive": tuple(array.copy() for array in self._positive.arrays()),
            "negative": None if self._negative is None
            else tuple(array.copy() for array in self._negative.arrays()),
        }

    @property
    def nbytes(self) -> int:
        """Bytes held by the sketch state (independent of the number of subjects)."""
        negative = 0 if self._negative is None else self._negative.nbytes
        return self._zero_counts.nbytes + self._positive.nbytes + negative


# --------------------------------------------------------------------------
# Exposure metrics and percentiles of a chunk in one pass (the streamed summary)
# --------------------------------------------------------------------------


def summarise_output(settings: ExposureSettings, values: np.ndarray, column: int, metrics: dict[str, np.ndarray],
                     sketch: PercentileAccumulator, rows: np.ndarray, keys: np.ndarray) -> int:
    """Exposure metrics and percentile sketch of one output of a chunk of subjects, in one compiled pass.

    The numbers are those of :func:`exposure_metrics` with `settings` and of
    ``sketch.add`` on the output's values (the same arithmetic in the same order).

    Parameters
    ----------
    settings : ExposureSettings
    values : ndarray, shape (m * n_times, n_outputs)
        Several outputs side by side, as the engine writes them: subject s at rows
        ``s * n_times`` to ``(s + 1) * n_times - 1``; read in place.
    column : int
        The output's column of `values`.
    metrics : dict of str to ndarray
        The arrays to write the chunk's metrics into: :data:`METRICS` as keys, (m,) for the
        scalar metrics, (m, n_thresholds) and (m, n_windows) for ``time_above`` and
        ``time_within`` (e.g. rows start:stop of a whole population's arrays).
    sketch : PercentileAccumulator
        Receives the chunk's values.
    rows, keys : ndarray, shape (m, n_times), float64 and int64
        Work arrays (reusable from chunk to chunk).

    Returns
    -------
    int
        -1, or the row of `values` whose value in `column` is not finite: then the sketch
        must not be used any more (its zero counts may hold part of the chunk).
    """
    low, high = sketch._empty_key_ranges()
    bad = _summarise_output(
        settings.times, values, column, settings.start, settings.stop, settings.first_segment, settings.end_segment,
        settings.thresholds, settings.window_lows, settings.window_highs, 1.0 / sketch._log_gamma,
        *(metrics[name] for name in METRICS), rows, keys, low, high, sketch._zero_counts)
    if bad < 0:
        sketch._add_keys(rows, keys, low, high)
    return int(bad)
