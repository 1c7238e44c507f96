"""Checks of the arguments of the metric functions: the kernels assume clean, C-contiguous float64 input.

Each check returns the cleaned value or raises :class:`pkpd.PkpdError` (a :class:`ValueError`) with a
one-line message naming the argument, the rule and the value.
"""

from __future__ import annotations

import math

import numpy as np

from .._errors import PkpdError


def format_number(value) -> str:
    """Format a number compactly for an error message (``150``, ``0.5``)."""
    value = float(value)
    short = f"{value:g}"
    return short if float(short) == value or math.isnan(value) else repr(value)


def checked_times(times) -> np.ndarray:
    """Return ``times`` as a 1-D float64 array, finite and strictly increasing."""
    times = np.ascontiguousarray(times, dtype=np.float64)
    if times.ndim != 1:
        raise PkpdError(f"times must be 1-D; got shape {times.shape}")
    if times.size < 2:
        raise PkpdError(f"times must hold at least 2 samples; got {times.size}")
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        index = bad[0]
        raise PkpdError(f"times must be finite; got {format_number(times[index])} at index {index}")
    steps = np.diff(times)
    bad = np.flatnonzero(steps <= 0.0)
    if bad.size:
        index = bad[0] + 1
        raise PkpdError(
            f"times must be increasing; got {format_number(times[index])} after "
            f"{format_number(times[index - 1])} at index {index}"
        )
    return times


def checked_values(values, n_times: int, name: str = "values") -> np.ndarray:
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
            f"{name} must be finite; got {format_number(values[subject, time_index])} "
            f"at subject {subject}, time index {time_index}"
        )
    return values


def checked_interval(interval, times: np.ndarray) -> tuple[float, float]:
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
        raise PkpdError(f"interval must be finite; got ({format_number(start)}, {format_number(stop)})")
    if not start < stop:
        raise PkpdError(f"start ({format_number(start)}) must be below stop ({format_number(stop)})", key="interval")
    if start < times[0]:
        raise PkpdError(
            f"interval: start ({format_number(start)}) must not precede times[0] ({format_number(times[0])})"
        )
    if stop > times[-1]:
        raise PkpdError(
            f"interval: stop ({format_number(stop)}) must not exceed times[-1] ({format_number(times[-1])})"
        )
    return start, stop


def checked_thresholds(thresholds) -> np.ndarray:
    """Return ``thresholds`` as a 1-D float64 array of distinct finite levels."""
    levels = np.ascontiguousarray(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))
    if levels.ndim != 1:
        raise PkpdError(f"thresholds must be a sequence of numbers; got shape {levels.shape}")
    for index, level in enumerate(levels):
        if not math.isfinite(level):
            raise PkpdError(f"thresholds[{index}] must be finite; got {format_number(level)}")
        earlier = np.flatnonzero(levels[:index] == level)
        if earlier.size:
            raise PkpdError(
                f"thresholds[{index}] ({format_number(level)}) must be distinct; "
                f"it repeats thresholds[{earlier[0]}]"
            )
    return levels


def checked_windows(windows) -> tuple[np.ndarray, np.ndarray]:
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
                f"windows[{index}] must be finite; got ({format_number(low)}, {format_number(high)})"
            )
        if not low < high:
            raise PkpdError(
                f"windows[{index}]: low ({format_number(low)}) must be below high ({format_number(high)})"
            )
        if (low, high) in zip(lows, highs):
            raise PkpdError(
                f"windows[{index}] ({format_number(low)}, {format_number(high)}) must be distinct; "
                f"it repeats windows[{list(zip(lows, highs)).index((low, high))}]"
            )
        lows.append(low)
        highs.append(high)
    return np.array(lows, dtype=np.float64), np.array(highs, dtype=np.float64)


def checked_quantiles(quantiles) -> np.ndarray:
    """Return ``quantiles`` (percent) as a 1-D float64 array within [0, 100]."""
    levels = np.ascontiguousarray(np.atleast_1d(np.asarray(quantiles, dtype=np.float64)))
    if levels.ndim != 1 or levels.size == 0:
        raise PkpdError(f"quantiles must be a non-empty sequence of percents; got {quantiles!r}")
    for index, level in enumerate(levels):
        if not 0.0 <= level <= 100.0:
            raise PkpdError(
                f"quantiles[{index}] must be a percent within [0, 100]; got {format_number(level)}"
            )
    return levels
