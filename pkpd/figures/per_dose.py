"""A repeated regimen dose by dose: one panel per administration, so that a build-up shows."""

import numpy as np

from ..metrics import dose_windows, repeated_dose
from .data import output_label, output_unit, profile_table
from .panels import band_handles, draw_arm, mark_levels, nonzero_arms
from .style import PAGE_WIDTH_IN, band_columns, focus_end, format_time, new_figure, styled, wrapped


@styled
def dose_figure(run, scenario, output):
    """One panel per administration of a repeated regimen (a weekly infusion): median and bands of
    `output` over the same span after each dose's start, one row per arm that repeats a dose, the
    y axis shared, so that a build-up from dose to dose shows.

    Returns
    -------
    matplotlib.figure.Figure
        Axes titled "dose N (at T)"; x data are the time since that administration's start (model
        time unit); artists as in :func:`concentration_figure` (``_band90|ARM``, the median labelled
        ARM). ``fig.pkpd_span`` is the span shown after each dose. None when no arm repeats a dose
        in which `output` moves.
    """
    table, time_column = profile_table(run, scenario, output)
    low, high, _, _, median = band_columns(scenario.quantiles)
    every_arm = list(run.results)
    moving = nonzero_arms(table, every_arm, [low, high, median])
    rows = [(arm, dose_windows(dose, scenario.times)) for arm, dose in
            ((arm, repeated_dose(arm)) for arm in scenario.arms) if dose is not None and arm.name in moving]
    rows = [(arm, windows) for arm, windows in rows if windows]
    if not rows:
        return None
    times = np.sort(table[time_column].unique())
    span = _dose_span(times, table, rows, high)
    columns = max(len(windows) for _, windows in rows)
    fig = new_figure(PAGE_WIDTH_IN, 0.7 + 1.3 * len(rows))
    grid = fig.subplots(len(rows), columns, sharey=True, squeeze=False)
    time_unit = scenario.model.units.get("time", "h")
    for row, (arm, windows) in enumerate(rows):
        index = every_arm.index(arm.name)
        arm_rows = table[table["arm"] == arm.name]
        for column in range(columns):
            ax = grid[row, column]
            if column >= len(windows):
                fig.delaxes(ax)
                continue
            number, start, end = windows[column]
            inside = arm_rows[(arm_rows[time_column] >= start - 1e-9) & (arm_rows[time_column] <= min(end, start + span)
                                                                          + 1e-9)]
            shifted = inside.assign(**{time_column: inside[time_column] - start})
            draw_arm(ax, shifted, time_column, 1.0, arm.name, index, "stacked", scenario.quantiles, False)
            mark_levels(ax, scenario, output, output_unit(scenario, output), labels=False)
            ax.set_xlim(0, span)
            ax.set_title(f"dose {number} (at {format_time(start)})", fontsize=6, pad=2)
            if column == 0:
                ax.set_ylabel(wrapped(arm.name, 24), fontsize=6.5)
    fig.supxlabel(f"Time since the start of the dose ({time_unit})", fontsize=7)
    fig.supylabel(output_label(scenario, output), fontsize=7)
    fig.legend(*zip(*band_handles(scenario.quantiles)), loc="outside upper center", ncols=2)
    fig.pkpd_span = span
    return fig


def _dose_span(times, table, rows, column):
    """The span drawn after each dose: the informative part of the first window of every row (as the
    time-course figures' focus), at most the shortest window."""
    shortest = min(end - start for _, windows in rows for _, start, end in windows)
    ends = []
    for arm, windows in rows:
        _, start, end = windows[0]
        inside = (times >= start) & (times <= end)
        curve = table.loc[table["arm"] == arm.name, column].to_numpy(dtype=float)[inside]
        focus = focus_end(times[inside], [curve], 0.01)
        ends.append((focus if focus is not None else end) - start)
    return float(min(max(ends), shortest))
