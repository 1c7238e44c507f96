"""The compiled kernels of the metrics: exposure metrics per subject, the percentile sketch, both in one pass.

Pure functions over flat float64/int64 arrays that write into preallocated outputs; the arguments
are checked before (:mod:`.checks`) and the public functions are in :mod:`.exposure` and
:mod:`.sketch`.

They are one module because Numba's disk cache keys a kernel on its own source file only: a
kernel that calls kernels of another module is not recompiled when that module changes, so
:func:`summary_kernel` (which calls the exposure and the sketch kernels) stays beside them.
"""

import math

import numpy as np

from .._jit import jit

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
def exposure_kernel(
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


@jit
def _bucket_key(value, inverse_log_gamma):
    """Bucket key of a nonzero value: its magnitude lies in (gamma**(key-1), gamma**key]."""
    return np.int64(math.ceil(math.log(abs(value)) * inverse_log_gamma))


@jit
def _sketch_row_keys(row, inverse_log_gamma, keys, chunk_min_keys, chunk_max_keys, zero_counts):
    """:func:`sketch_keys` for one subject: ``row`` and ``keys`` (n_times,), either may be a strided view."""
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
def sketch_keys(chunk, inverse_log_gamma, keys, chunk_min_keys, chunk_max_keys, zero_counts):
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
def widen_store(counts, offsets, min_keys, max_keys, new_min_keys, new_max_keys):
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
def count_keys(chunk, keys, sign, counts, offsets):
    """Add the keys of the values of sign ``sign`` (+1 or -1) to a store."""
    n_rows, n_times = chunk.shape
    for row in range(n_rows):
        for column in range(n_times):
            value = chunk[row, column]
            if (sign > 0 and value > 0.0) or (sign < 0 and value < 0.0):
                counter = max(keys[row, column] - offsets[column], 0)
                counts[column, counter] += 1


@jit
def merge_store(counts, offsets, min_keys, max_keys,
                 other_counts, other_offsets, other_min_keys, other_max_keys):
    """Add another store into this one, column by column."""
    n_times, max_bins = counts.shape
    widen_store(counts, offsets, min_keys, max_keys, other_min_keys, other_max_keys)
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
def sketch_quantiles(positive_counts, positive_offsets, negative_counts, negative_offsets,
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
def summary_kernel(times, values, column, start, stop, first_segment, end_segment, thresholds, window_lows,
                      window_highs, inverse_log_gamma, cmax, tmax, cmin, auc, cavg, time_above, time_within, rows,
                      keys, chunk_min_keys, chunk_max_keys, zero_counts):
    """Exposure metrics and sketch keys of output `column` for every subject of a chunk, in one pass
    (see :func:`.sketch.summarise_output`).

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
        As :func:`sketch_keys` takes them (updated in place).

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

