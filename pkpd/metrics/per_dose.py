"""Repeated regimens dose by dose: each administration's window and the exposure in it.

A weekly infusion followed for eight weeks is, on one time axis, five spikes a few pixels wide;
its console line of one Cmax over the whole run hides whether the peaks build up. Here a
repeated dose (given more than once) is cut into windows, one per administration, from its
start to the next one's start (the last: one dosing interval, within the output grid), so that
the figures can draw one panel per dose and the console can give Cmax and AUC per dose.
"""

import numpy as np
import pandas as pd

MAX_DOSES_SHOWN = 6     # more administrations: the first MAX_DOSES_SHOWN - 1 and the last are shown


def repeated_dose(arm):
    """The arm's dose instruction given most often, if it is given more than once; else None."""
    repeated = [dose for dose in arm.regimen.doses if dose.administrations() > 1]
    return max(repeated, key=lambda dose: dose.administrations()) if repeated else None


def dose_windows(dose, times):
    """[(number, start, end)] of each administration of `dose` that starts inside the grid `times`
    (number 1-based; end the next start, or one interval after the last, at most the grid's end);
    with more than MAX_DOSES_SHOWN, the first MAX_DOSES_SHOWN - 1 and the last."""
    starts = dose.start_times()
    starts = starts[(starts >= times[0]) & (starts < times[-1])]
    ends = np.minimum(np.append(starts[1:], starts[-1] + dose.every) if starts.size else starts, times[-1])
    windows = [(number, float(start), float(end)) for number, (start, end) in enumerate(zip(starts, ends), 1)]
    if len(windows) > MAX_DOSES_SHOWN:
        windows = windows[:MAX_DOSES_SHOWN - 1] + windows[-1:]
    return windows


def per_dose_exposure(result, output, windows, metrics=("cmax", "auc")):
    """Exposure of `output` in each window, over subjects.

    Parameters
    ----------
    result : SimulationResult
    output : str
    windows : list of (int, float, float)
        As :func:`dose_windows` gives them (model time unit).
    metrics : sequence of str
        Metrics of :meth:`SimulationResult.exposure` (the AUC of an output with a baseline above it).

    Returns
    -------
    pandas.DataFrame
        Columns dose, start, end, metric, median, p5, p95, unit: a row per window and metric.
    """
    rows = []
    for number, start, end in windows:
        table = result.exposure(output, interval=(start, end))
        for metric in metrics:
            values = table[metric].to_numpy(dtype=float)
            low, median, high = np.percentile(values, [5, 50, 95])
            rows.append({"dose": number, "start": start, "end": end, "metric": metric, "median": median, "p5": low,
                         "p95": high, "unit": table.attrs["units"][metric]})
    return pd.DataFrame(rows, columns=["dose", "start", "end", "metric", "median", "p5", "p95", "unit"])
