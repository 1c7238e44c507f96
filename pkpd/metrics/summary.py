"""The streamed summary of a population: percentile sketches and exposure metrics, chunk by chunk.

:func:`pkpd.simulate_summary` hands each chunk of subjects, as the engine wrote it
(values, shape (m * n_times, n_outputs)), to a :class:`SummaryReducer`. The design
choice: one compiled pass per output and chunk reads the engine's array in place
(:func:`pkpd.metrics.summarise_output`: no Python per subject or metric) and,
subject by subject while its trajectory is in the L1 cache, computes its exposure
metrics and the bucket keys of the percentile sketch; the keys are then counted into
the sketch of the thread that ran the chunk. Each thread keeps one sketch per output
for the whole run (merged at the end); the exposure metrics go straight into the run's
arrays, rows ``start:stop``.

Invariants: the numbers are those of :func:`pkpd.metrics.exposure_metrics` and
:meth:`pkpd.metrics.PercentileAccumulator.add` on the same values (the same
arithmetic, in the same order), whatever the thread count, chunking or executor: a
sketch's state depends only on the multiset of values added to it, so the threads'
sketches merged in any order are the sketch of one thread, and every exposure row is
written once, by the chunk that holds the subject.
"""

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import SimulationError
from .exposure import METRICS, exposure_metrics, exposure_settings
from .sketch import PercentileAccumulator, summarise_output


def _exposure_arrays(n, settings):
    """Empty arrays for the metrics of n subjects: (n,) each, (n, k) for the times above and within."""
    widths = {"time_above": (settings.thresholds.size,), "time_within": (settings.window_lows.size,)}
    return {name: np.empty((n, *widths.get(name, ()))) for name in METRICS}


class SummaryReducer:
    """Percentile sketches and exposure metrics of `n` subjects, fed chunk by chunk from any threads.

    Parameters
    ----------
    n : int
        Subjects of the run (exposure arrays have n rows).
    times : ndarray, shape (n_times,), h
    columns : dict of str to int
        Output name -> its column in the engine's values.
    quantiles, relative_accuracy
        As :class:`pkpd.metrics.PercentileAccumulator` takes them.
    interval, thresholds, windows
        As :func:`pkpd.metrics.exposure_metrics` takes them (thresholds and windows:
        dict of output -> levels or pairs); checked here, once.
    subject_ids : ndarray, shape (n,), optional
        The subjects' IDs, to name a subject with a non-finite output (default: row numbers).
    time_unit : str
        The unit of `times`, for that message.
    baselines : dict of str to ndarray, shape (n,), optional
        Each subject's baseline of the outputs that have one (an endogenous substance such as
        magnesium): their AUC is taken above it, as :meth:`pkpd.SimulationResult.exposure`
        takes it (:func:`pkpd.metrics.exposure_metrics` of the excess, the same numbers); the
        other metrics stay those of the output itself.

    Attributes
    ----------
    exposure : dict of output -> dict of metric -> ndarray
        (n,) for the scalar metrics, (n, k) for ``time_above`` and ``time_within``.
    """

    def __init__(self, n: int, times: np.ndarray, columns: Mapping[str, int], *, quantiles: Sequence[float],
                 relative_accuracy: float, interval: tuple[float, float] | None = None,
                 thresholds: Mapping[str, Any] | None = None, windows: Mapping[str, Any] | None = None,
                 subject_ids: np.ndarray | None = None, time_unit: str = "h",
                 baselines: Mapping[str, np.ndarray] | None = None) -> None:
        self.columns = dict(columns)
        self.times = exposure_settings(times, interval=interval).times
        self.interval = interval
        self.baselines = {output: np.asarray(values, dtype=float) for output, values in (baselines or {}).items()}
        thresholds, windows = thresholds or {}, windows or {}
        self.settings = {o: exposure_settings(self.times, interval=interval, thresholds=thresholds.get(o, ()),
                                              windows=windows.get(o, ())) for o in self.columns}
        self.quantiles, self.relative_accuracy = tuple(quantiles), relative_accuracy
        # the quantiles and the accuracy checked now, before any chunk runs
        PercentileAccumulator(self.times.size, self.quantiles, relative_accuracy, max_bins=2)
        self.subject_ids, self.time_unit = subject_ids, time_unit
        self.exposure = {o: _exposure_arrays(n, self.settings[o]) for o in self.columns}
        self._sketches: list[dict[str, PercentileAccumulator]] = []   # one dict per thread (or part)
        self._lock = threading.Lock()
        self._local = threading.local()

    def _new_sketches(self):
        return {o: PercentileAccumulator(self.times.size, quantiles=self.quantiles,
                                         relative_accuracy=self.relative_accuracy) for o in self.columns}

    def _thread_sketches(self):
        """This thread's sketch per output, made (and registered) at its first chunk."""
        sketches = getattr(self._local, "sketches", None)
        if sketches is None:
            sketches = self._local.sketches = self._new_sketches()
            with self._lock:
                self._sketches.append(sketches)
        return sketches

    def _buffers(self, m):
        """This thread's (rows, keys) arrays, shape (m, n_times) each, reused from chunk to chunk."""
        buffers = getattr(self._local, "buffers", None)
        if buffers is None or buffers[0].shape[0] < m:
            buffers = self._local.buffers = (np.empty((m, self.times.size)),
                                             np.empty((m, self.times.size), dtype=np.int64))
        return buffers[0][:m], buffers[1][:m]

    def add(self, start: int, stop: int, values: np.ndarray) -> None:
        """Reduce subjects `start` to `stop` - 1, whose outputs are `values` (shape ((stop - start) * n_times,
        n_outputs), as the engine writes them); callable from several threads at once for different chunks."""
        m = stop - start
        sketches, (rows, keys) = self._thread_sketches(), self._buffers(m)
        for output, column in self.columns.items():
            chunk_rows = {name: array[start:stop] for name, array in self.exposure[output].items()}
            bad = summarise_output(self.settings[output], values, column, chunk_rows, sketches[output], rows, keys)
            if bad >= 0:
                self._raise_not_finite(output, start, bad, values[bad, column])
            if output in self.baselines:
                excess = values[:, column].reshape(m, self.times.size) - self.baselines[output][start:stop, None]
                chunk_rows["auc"][:] = exposure_metrics(self.times, excess, interval=self.interval)["auc"]

    def _raise_not_finite(self, output, start, row, value):
        subject, time = divmod(int(row), self.times.size)
        ids = self.subject_ids
        name = ids[start + subject].item() if ids is not None else start + subject
        raise SimulationError({name: f"output {output} must be finite; got {value} at time {self.times[time]:g} "
                                     f"{self.time_unit}"})

    def merge(self, start: int, stop: int, part: tuple[dict, dict]) -> None:
        """Take in the (sketches, exposure) of a chunk reduced elsewhere (:func:`summarise_chunk`)."""
        sketches, exposure = part
        for output in self.columns:
            for name, array in exposure[output].items():
                self.exposure[output][name][start:stop] = array
        with self._lock:
            self._sketches.append(sketches)

    def sketches(self) -> dict[str, PercentileAccumulator]:
        """Every chunk's sketch per output, merged (in any order: the state is the same)."""
        merged = self._new_sketches()
        for part in self._sketches:
            for output, sketch in part.items():
                merged[output].merge(sketch)
        return merged

    def percentiles(self) -> pd.DataFrame:
        """Long table: output, TIME, then one column per quantile (P5, ...)."""
        frames = []
        for output, sketch in self.sketches().items():
            frame = pd.DataFrame({"output": output, "TIME": self.times})
            for q, row in zip(self.quantiles, sketch.result()):
                frame[f"P{q:g}"] = row
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def summarise_chunk(values, *, times, columns, subject_ids=None, baselines=None, **options):
    """A chunk's sketches and exposure metrics, reduced where the chunk ran (an executor's task).

    Parameters
    ----------
    values : ndarray, shape (m * n_times, n_outputs)
    times, columns, **options
        As :class:`SummaryReducer` takes them.
    subject_ids : ndarray, shape (m,), optional
    baselines : dict of str to ndarray, shape (m,), optional
        The chunk's subjects' baselines (see :class:`SummaryReducer`).

    Returns
    -------
    (dict of output -> PercentileAccumulator, dict of output -> dict of metric -> ndarray (m,) or (m, k)),
    what :meth:`SummaryReducer.merge` takes.
    """
    m = values.shape[0] // np.asarray(times).size
    reducer = SummaryReducer(m, times, columns, subject_ids=subject_ids, baselines=baselines, **options)
    reducer.add(0, m, values)
    return reducer.sketches(), reducer.exposure
