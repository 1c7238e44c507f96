"""Exposure metrics per subject over an interval: Cmax, Tmax, Cmin, AUC, average, time above and within.

See the package's docstring for the interpolants; the kernels are in :mod:`.kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import PkpdError
from .checks import checked_interval, checked_thresholds, checked_times, checked_values, checked_windows
from .kernels import exposure_kernel

METRICS = ("cmax", "tmax", "cmin", "auc", "cavg", "time_above", "time_within")
"""The keys of :func:`exposure_metrics`, in order."""


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
    times = checked_times(times)
    start, stop = checked_interval(interval, times)
    levels = checked_thresholds(thresholds)
    window_lows, window_highs = checked_windows(windows)
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
    values = checked_values(values, settings.times.size)
    n_subjects = values.shape[0]
    metrics = {
        name: np.empty(n_subjects, dtype=np.float64) for name in ("cmax", "tmax", "cmin", "auc")
    }
    metrics["time_above"] = np.empty((n_subjects, settings.thresholds.size), dtype=np.float64)
    metrics["time_within"] = np.empty((n_subjects, settings.window_lows.size), dtype=np.float64)
    exposure_kernel(
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
    times = checked_times(times)
    metrics = exposure_metrics(
        times, values, interval=interval, thresholds=thresholds, windows=windows
    )
    units = _metric_units(concentration_unit, time_unit)
    columns = {name: metrics[name] for name in units}
    for index, level in enumerate(checked_thresholds(thresholds)):
        name = f"time_above_{level:g}"
        columns[name] = metrics["time_above"][:, index]
        units[name] = time_unit
    lows, highs = checked_windows(windows)
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
    table.attrs["interval"] = checked_interval(interval, times)
    return table

