"""Percentiles over subjects at each time: exact, and the streaming, mergeable sketch.

:func:`percentiles` is the exact path; :class:`PercentileAccumulator` the streaming one (see the
package's docstring). :func:`summarise_output` fills an accumulator and the exposure metrics of a
chunk in one compiled pass; it lives here because it writes the accumulator's state directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._errors import PkpdError
from .checks import checked_quantiles, checked_values, format_number
from .exposure import METRICS, ExposureSettings
from .kernels import count_keys, merge_store, sketch_keys, sketch_quantiles, summary_kernel, widen_store

DEFAULT_QUANTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
"""Percentiles (in %) reported by default."""


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
    values = checked_values(values, values.shape[1])
    levels = checked_quantiles(quantiles)
    return np.percentile(values, levels, axis=0, method="linear")



# the key range of a store that holds no value yet (the stores are described in kernels.py)
_EMPTY_MIN_KEY = np.iinfo(np.int64).max
_EMPTY_MAX_KEY = np.iinfo(np.int64).min


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
        widen_store(self.counts, self.offsets, self.min_keys, self.max_keys,
                     chunk_min_keys, chunk_max_keys)
        count_keys(chunk, keys, sign, self.counts, self.offsets)

    def merge(self, other: _LogStore) -> None:
        merge_store(*self.arrays(), *other.arrays())

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
                f"relative_accuracy must be within (0, 1); got {format_number(relative_accuracy)}"
            )
        if int(max_bins) != max_bins or max_bins < 2:
            raise PkpdError(f"max_bins must be an integer >= 2; got {max_bins!r}")
        self.n_times = int(n_times)
        self.quantiles = checked_quantiles(quantiles)
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
        chunk = checked_values(chunk, self.n_times, name="chunk")
        keys = np.empty(chunk.shape, dtype=np.int64)
        chunk_min_keys, chunk_max_keys = self._empty_key_ranges()
        sketch_keys(chunk, 1.0 / self._log_gamma, keys, chunk_min_keys, chunk_max_keys,
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
        sketch_quantiles(
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
    bad = summary_kernel(
        settings.times, values, column, settings.start, settings.stop, settings.first_segment, settings.end_segment,
        settings.thresholds, settings.window_lows, settings.window_highs, 1.0 / sketch._log_gamma,
        *(metrics[name] for name in METRICS), rows, keys, low, high, sketch._zero_counts)
    if bad < 0:
        sketch._add_keys(rows, keys, low, high)
    return int(bad)

