"""Exposure metrics and percentiles over subjects, as pure array code.

One module per concept: ``exposure`` (exposure metrics per subject), ``sketch`` (percentiles over
subjects, exact and streamed, and the exposure metrics and sketch of a chunk in one pass),
``kernels`` (the compiled code of both, one module for Numba's disk cache), ``checks`` (the
arguments), ``summary`` (the streamed summary of a population, chunk by chunk), ``window``
(continuous window metrics and Monte Carlo intervals of a regimen search) and ``per_dose`` (the
windows and exposure of each administration of a repeated dose).

Nothing in ``exposure`` and ``sketch`` knows about models, regimens or the engine: every function takes
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

from .exposure import METRICS, ExposureSettings, exposure_metrics, exposure_settings, exposure_table
from .per_dose import MAX_DOSES_SHOWN, dose_windows, per_dose_exposure, repeated_dose
from .sketch import DEFAULT_QUANTILES, PercentileAccumulator, percentiles, summarise_output
from .summary import SummaryReducer, summarise_chunk

__all__ = ["METRICS", "DEFAULT_QUANTILES", "ExposureSettings", "exposure_settings", "exposure_metrics",
           "exposure_table", "percentiles", "PercentileAccumulator", "summarise_output", "SummaryReducer", "summarise_chunk",
           "MAX_DOSES_SHOWN", "repeated_dose", "dose_windows", "per_dose_exposure"]
