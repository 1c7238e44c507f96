"""Concentration (and any output) over time: median and bands over subjects by arm, levels drawn."""

import matplotlib.lines
import numpy as np

from .data import is_concentration, output_label, output_unit, profile_table
from .panels import arm_axes, arm_legend, band_handles, draw_arm, label_panels, mark_levels, nonzero_arms
from .style import COLUMN_WIDTH_IN, MAX_ARMS_ONE_PANEL, band_columns, focus_end, new_figure, styled, time_scale, wrapped

LOG_FLOOR_FRACTION = 1e-3       # log axes start at this fraction of the highest value drawn
PEAK_FRACTION = 0.02            # a peak within the first 2 % of the time axis gets a panel of its own


@styled
def concentration_figure(run, scenario, output, log=False, *, focus=True, ylabel=None, ylim=None,
                         draw_levels=True, panels=None, reference=None, all_arms=False):
    """Median and bands over subjects of one output, by arm, with thresholds and windows drawn.

    Parameters
    ----------
    run : RunResult
    scenario : Scenario
    output : str
        A model output; bands come from ``run.profiles`` (the rows of ``profiles.csv``), or are
        computed from ``run.results`` when the scenario did not request this output.
    log : bool
        Log-scaled y axis (concentrations).
    focus : bool
        Limit the time axis to the informative part of the grid (e.g. the first hours after a
        single infusion followed for weeks); all data are drawn in any case.
    all_arms : bool
        Also draw arms where the output is identically zero (a saline arm's drug concentration),
        which are left out by default.

    Returns
    -------
    matplotlib.figure.Figure
        Bands are ``PolyCollection`` objects labelled ``_band50|ARM`` and ``_band90|ARM``, the
        median a ``Line2D`` labelled with the arm name. Each arm keeps its colour and style of the
        other figures. The legend (single panel) names the arms, says which arm's curve is the same
        as another's, and what the bands are. On a log axis ``fig.pkpd_log_floor`` is the lower limit
        (LOG_FLOOR_FRACTION of the highest value drawn). A fast-then-slow output (every peak within
        the first PEAK_FRACTION of the time axis: magnesium after a 30-min infusion, followed for
        days) gets two axes drawing the same artists: its peak in the model's time unit (up to
        ``fig.pkpd_peak_end``, else None) and its whole course; long axis labels are wrapped.
    """
    unit = output_unit(scenario, output)
    table, time_column = profile_table(run, scenario, output)
    low, high, inner_low, inner_high, median = band_columns(scenario.quantiles)
    every_arm = list(run.results)
    arms = every_arm if all_arms else nonzero_arms(table, every_arm, [low, high, median])
    times = np.sort(table[time_column].unique())
    end = None
    if focus:
        curves = [table.loc[table["arm"] == arm, high].to_numpy() for arm in arms]
        end = focus_end(times, curves, 3e-4 if log else 0.01)
    time_unit = scenario.model.units.get("time", "h")
    peak_end = None
    if focus and (panels or ("single" if len(arms) <= MAX_ARMS_ONE_PANEL else "grid")) == "single":
        peak_end = _peak_end(times, [table.loc[table["arm"] == arm, median].to_numpy(dtype=float) for arm in arms],
                             end or times[-1])
    if peak_end is None:
        fig, axes, panels = arm_axes(len(arms), panels=panels)
        factor, xlabel = time_scale((end or times[-1]) - times[0], time_unit)
        views = [(axes, factor, xlabel, end)]
    else:   # fast, then slow: a panel on the peak in hours beside the whole course
        fig = new_figure(COLUMN_WIDTH_IN, 2.6 + 0.14 * len(arms))
        first, whole = fig.subplots(1, 2, sharey=True, width_ratios=[1, 1.6])
        panels = "single"
        factor, xlabel = time_scale((end or times[-1]) - times[0], time_unit)
        views = [([first] * len(arms), 1.0, f"Time ({time_unit})", peak_end), ([whole] * len(arms), factor, xlabel, end)]
    for axes_of_view, view_factor, _, _ in views:
        for position, arm in enumerate(arms):
            index = every_arm.index(arm)   # the arm's style in every figure
            draw_arm(axes_of_view[position], table[table["arm"] == arm], time_column, view_factor, arm, index, panels,
                      scenario.quantiles, log)
    axes = views[0][0]
    if reference in arms and panels != "single":
        rows = table[table["arm"] == reference]
        for arm, ax in zip(arms, axes):
            if arm == reference:
                continue
            ax.plot(rows[time_column].to_numpy() * factor, rows[median].to_numpy(dtype=float), color="0.4",
                    linewidth=0.8, linestyle=(0, (3, 1.5)), label=f"_reference|{reference}", zorder=1.5)
        handle = matplotlib.lines.Line2D([], [], color="0.4", linewidth=0.8, linestyle=(0, (3, 1.5)))
        fig.legend([handle], [f"median, {reference}"], loc="outside lower center")
    shown = []
    labelled_axes = views[-1][0][0]   # the levels' labels once: on the whole course's (first) axes
    for axes_of_view, view_factor, _, view_end in views:
        for ax in dict.fromkeys(axes_of_view):
            if draw_levels:
                mark_levels(ax, scenario, output, unit, labels=ax is labelled_axes)
            if view_end is not None:
                ax.set_xlim(times[0] * view_factor, view_end * view_factor)
            if ylim is not None:
                ax.set_ylim(*ylim)
            shown.append(ax)
    fig.pkpd_log_floor = None
    if log:
        values = table[[low, high, median]].to_numpy()
        positive = values[values > 0]
        top = positive.max() if positive.size else 1.0
        floor = top * LOG_FLOOR_FRACTION  # a stated fraction of the peak, not the grid's smallest number
        fig.pkpd_log_floor = float(floor)
        for ax in shown:
            ax.set_yscale("log", nonpositive="clip")
            ax.set_ylim(floor, top * 2)
    ylabel = wrapped(ylabel or output_label(scenario, output))
    label_panels(axes, panels, views[0][2], ylabel, arms)
    if peak_end is not None:
        views[1][0][0].set_xlabel(views[1][2])
        views[0][0][0].set_title("peak", fontsize=6.5, pad=2)
        views[1][0][0].set_title("whole course", fontsize=6.5, pad=2)
    arm_legend(fig, axes, panels, arms, texts=_same_curves(table, arms, median),
                extra=band_handles(scenario.quantiles))
    fig.pkpd_focus = (float(times[0]), end, float(times[-1]), 3e-4 if log else 0.01) if end is not None else None
    fig.pkpd_peak_end = peak_end
    return fig


def _same_curves(table, arms, column):
    """{arm: "ARM (same curve as OTHER)"} for each arm whose `column` equals an earlier arm's at every
    time (e.g. magnesium adding nothing to ketamine): such curves overlap exactly on the plot."""
    texts = {}
    curves = {arm: table.loc[table["arm"] == arm, column].to_numpy(dtype=float) for arm in arms}
    for position, arm in enumerate(arms):
        for earlier in arms[:position]:
            if curves[arm].shape == curves[earlier].shape and np.allclose(curves[arm], curves[earlier],
                                                                          rtol=1e-9, atol=0, equal_nan=True):
                texts[arm] = f"{arm} (same curve as {earlier})"
                break
    return texts


def _peak_end(times, curves, end):
    """End of a first panel on the peak of a fast-then-slow output (magnesium: up in 30 min, back
    over days), or None when every curve's peak is plain on one axis.

    A curve's peak is its largest departure from its first value; when every curve that moves
    peaks within the first PEAK_FRACTION of the shown span, the panel reaches until the curves
    have fallen back half-way from their peaks (at least three times the peak time), at most a
    quarter of the span.
    """
    start, reach = float(times[0]), None
    shown = times <= end
    for curve in curves:
        departure = np.abs(curve - curve[0])[shown]
        peak = int(np.argmax(departure))
        if not departure[peak] > 0:
            continue
        peak_time = times[peak]
        if peak_time - start > PEAK_FRACTION * (end - start):
            return None
        fallen = np.flatnonzero((times[shown] > peak_time) & (departure <= 0.5 * departure[peak]))
        half = times[fallen[0]] if fallen.size else end
        reach = max(reach or start, half, start + 3 * (peak_time - start))
    if reach is None:
        return None
    return float(min(reach, start + 0.25 * (end - start)))


def log_useful(run, scenario, output):
    """Log scale is drawn for concentrations that fall towards zero (not those sitting on a baseline)."""
    if not is_concentration(scenario, output):
        return False
    table, _ = profile_table(run, scenario, output)
    median = table[band_columns(scenario.quantiles)[4]].to_numpy()
    top = np.nanmax(median) if median.size else 0.0
    return bool(top > 0 and np.nanmin(median) < 0.01 * top)
