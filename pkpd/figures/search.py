"""The figures of a regimen search: the objective over two decision variables, and the trade-off.

Drawn under the house style of :mod:`pkpd.figures.style` (Okabe-Ito colours, 7 pt text, one
column wide, data artists labelled ``_...``). :func:`search_figure`: with two or more
variables a heat map over the first two (rows and columns), the others held at the chosen
candidate's values; with one variable a line of the objective against it.
:func:`tradeoff_figure`: every candidate's attainment against its adverse-event rate, the
region the limits on those two metrics allow shaded, the chosen candidate marked.
"""

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .style import COLUMN_WIDTH_IN, OKABE_ITO, STYLE

INFEASIBLE = "0.82"        # grey of the candidates that miss a limit
MAX_ANNOTATED = 12         # values are written in the cells up to this many rows and columns


def _grid_of(result, variable):
    return np.array([variable.shown(i) for i in range(variable.values.size)])


def _axis_label(variable):
    return f"{variable.name} ({variable.unit})" if variable.unit else variable.name


def search_figure(result):
    """The objective over the searched grid, infeasible candidates grey, the chosen one outlined.

    Parameters
    ----------
    result : SearchResult

    Returns
    -------
    matplotlib.figure.Figure
        Heat map: an ``AxesImage`` labelled ``_objective`` whose array ``[i, j]`` is the objective at
        row value ``i`` and column value ``j`` of the first two variables (NaN where not evaluated or
        infeasible), an ``AxesImage`` ``_infeasible`` (1 where a candidate misses a limit) and a
        ``Rectangle`` ``_chosen``. One variable: lines ``_feasible`` and ``_infeasible`` and a marker
        ``_chosen``.
    """
    with plt.rc_context(STYLE):  # the house style of pkpd.figures.style
        return _draw(result)


def _draw(result):
    spec, table = result.spec, result.table
    objective = spec.objective
    value_column = objective.column
    scale = 100.0 if objective.unit == "1" else 1.0
    label = textwrap.fill(f"{'Minimise' if spec.sense > 0 else 'Maximise'}: {objective.label}"
                          + (" (%)" if scale == 100 else ""), 70)
    chosen = table.iloc[result.closest]
    if len(spec.variables) == 1:
        return _line(result, spec.variables[0], value_column, scale, label, chosen)
    rows_var, cols_var = spec.variables[:2]
    held = spec.variables[2:]
    mask = np.ones(len(table), bool)
    for variable in held:
        mask &= np.isclose(table[variable.column], chosen[variable.column])
    rows, cols = _grid_of(result, rows_var), _grid_of(result, cols_var)
    values = np.full((rows.size, cols.size), np.nan)
    infeasible = np.full((rows.size, cols.size), np.nan)
    for _, row in table[mask].iterrows():
        i = int(np.argmin(np.abs(rows - row[rows_var.column])))
        j = int(np.argmin(np.abs(cols - row[cols_var.column])))
        if row["feasible"]:
            values[i, j] = scale * row[value_column]
        else:
            infeasible[i, j] = 1.0
    fig = Figure(layout="constrained", figsize=(COLUMN_WIDTH_IN, 3.2))
    ax = fig.add_subplot()
    extent = (-0.5, cols.size - 0.5, -0.5, rows.size - 0.5)
    ax.imshow(np.ma.masked_invalid(infeasible), cmap=_grey(), vmin=0, vmax=1, origin="lower", aspect="auto",
              extent=extent, label="_infeasible", interpolation="nearest")
    image = ax.imshow(np.ma.masked_invalid(values), cmap="cividis_r" if spec.sense > 0 else "cividis",
                      origin="lower", aspect="auto", extent=extent, label="_objective", interpolation="nearest")
    if rows.size <= MAX_ANNOTATED and cols.size <= MAX_ANNOTATED:
        for i, j in zip(*np.nonzero(np.isfinite(values))):
            ax.text(j, i, f"{values[i, j]:.3g}", ha="center", va="center", fontsize=5, color="white")
    i = int(np.argmin(np.abs(rows - chosen[rows_var.column])))
    j = int(np.argmin(np.abs(cols - chosen[cols_var.column])))
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=OKABE_ITO[1], linewidth=1.4,
                           label="_chosen"))
    _ticks(ax.set_yticks, rows)
    _ticks(ax.set_xticks, cols)
    ax.set_ylabel(_axis_label(rows_var))
    ax.set_xlabel(_axis_label(cols_var))
    title = "chosen" if result.feasible else "closest (misses the limits)"
    held_text = ", ".join(f"{v.name} {chosen[v.column]:g} {v.unit}".strip() for v in held)
    ax.set_title(f"grey: misses a limit; outlined: {title}" + (f"; at {held_text}" if held_text else ""),
                 fontsize=6)
    bar = fig.colorbar(image, ax=ax, location="bottom", shrink=0.9, aspect=30, pad=0.02)
    bar.set_label(label, fontsize=6.5)
    bar.ax.tick_params(labelsize=6)
    return fig


def _ticks(setter, values, most=8):
    """Tick labels at about `most` of the grid values (every value for a short grid)."""
    every = max(1, int(np.ceil(values.size / most)))
    positions = np.arange(0, values.size, every)
    setter(positions, [f"{values[p]:g}" for p in positions])


def _grey():
    from matplotlib.colors import ListedColormap

    return ListedColormap([INFEASIBLE])


def _line(result, variable, value_column, scale, label, chosen):
    table = result.table.sort_values(variable.column)
    fig = Figure(layout="constrained", figsize=(COLUMN_WIDTH_IN, 2.4))
    ax = fig.add_subplot()
    x = table[variable.column].to_numpy(float)
    y = scale * table[value_column].to_numpy(float)
    feasible = table["feasible"].to_numpy(bool)
    ax.plot(x[feasible], y[feasible], "o", color=OKABE_ITO[0], markersize=3.5, label="_feasible")
    ax.plot(x[~feasible], y[~feasible], "o", color=INFEASIBLE, markerfacecolor="white", markersize=3.5,
            label="_infeasible")
    ax.plot([chosen[variable.column]], [scale * chosen[value_column]], "s", markersize=7, markerfacecolor="none",
            color=OKABE_ITO[1], label="_chosen")
    ax.set_xlabel(_axis_label(variable))
    ax.set_ylabel(label, fontsize=6.5)
    ax.set_title("filled: within the limits; hollow: misses a limit; square: "
                 + ("chosen" if result.feasible else "closest"), fontsize=6)
    return fig


def search_caption(result):
    """The caption of :func:`search_figure`."""
    spec = result.spec
    limits = "; ".join(c.text() for c in spec.constraints) or "none"
    return (f"Regimen search over {' x '.join(v.name for v in spec.variables)}: "
            f"{'minimise' if spec.sense > 0 else 'maximise'} {spec.objective.label} under the limits: {limits}. "
            f"{len(result.table)} candidates evaluated ({result.strategy}), each in the same {result.subjects} "
            f"virtual patients. Answer: {result.message}")


def tradeoff_metrics(spec):
    """(adverse-event metric, attainment metric) of a search, or None when it has no trade-off to draw.

    The adverse-event metric is the first ``adverse_event_rate``; the attainment the first window
    metric (``fraction_within``, ``time_within``), else the objective, else the first other metric.
    """
    events = [m for m in spec.metrics if m.kind == "adverse_event_rate"]
    others = [m for m in spec.metrics if m.kind != "adverse_event_rate"]
    if not events or not others:
        return None
    windows = [m for m in others if m.kind in ("fraction_within", "time_within")]
    attainment = windows[0] if windows else (spec.objective if spec.objective in others else others[0])
    return events[0], attainment


def _limits(spec, metric):
    """(at_least, at_most) of `metric` over the constraints (None where it has none)."""
    low = high = None
    for constraint in spec.constraints:
        if constraint.metric.name == metric.name:
            low = constraint.at_least if constraint.at_least is not None else low
            high = constraint.at_most if constraint.at_most is not None else high
    return low, high


def tradeoff_figure(result):
    """Attainment against adverse-event rate for every candidate; the feasible region and the choice marked.

    Parameters
    ----------
    result : SearchResult
        A search with an ``adverse_event_rate`` metric and at least one other metric
        (see :func:`tradeoff_metrics`).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when the search has no such pair. Otherwise one axes with the lines ``_feasible``
        (candidates within every limit, filled) and ``_infeasible`` (hollow, grey), x the adverse-event
        rate and y the attainment (fractions in %), a ``Rectangle`` ``_feasible_region`` spanning what
        the limits on these two metrics allow (to the axes' ends where a side has no limit; other
        limits can still exclude a candidate inside it), the marker ``_chosen`` (the chosen, or the
        closest, candidate), each point's value written beside it when one variable is searched
        (up to ``MAX_ANNOTATED`` candidates) and, when computed, its 95 % Monte Carlo intervals as the lines
        ``_chosen_interval_x`` and ``_chosen_interval_y``.
    """
    pair = tradeoff_metrics(result.spec)
    if pair is None:
        return None
    with plt.rc_context(STYLE):  # the house style of pkpd.figures.style
        return _draw_tradeoff(result, *pair)


def _draw_tradeoff(result, event, attainment):
    from matplotlib.patches import Rectangle

    table, spec = result.table, result.spec
    x_scale = 100.0
    y_scale = 100.0 if attainment.unit == "1" else 1.0
    x = x_scale * table[event.column].to_numpy(float)
    y = y_scale * table[attainment.column].to_numpy(float)
    feasible = table["feasible"].to_numpy(bool)
    fig = Figure(layout="constrained", figsize=(COLUMN_WIDTH_IN, 2.8))
    ax = fig.add_subplot()
    ax.plot(x[feasible], y[feasible], "o", color=OKABE_ITO[0], markersize=3.5, label="_feasible")
    ax.plot(x[~feasible], y[~feasible], "o", color=INFEASIBLE, markerfacecolor="white", markersize=3.5,
            label="_infeasible")
    chosen = table.iloc[result.closest]
    for name, scale, axis in ((event.name, x_scale, "x"), (attainment.name, y_scale, "y")):
        low, high = chosen[f"{name} low"], chosen[f"{name} high"]
        if np.isfinite(low) and np.isfinite(high):
            centre = (x_scale * chosen[event.column], y_scale * chosen[attainment.column])
            span = [scale * low, scale * high]
            xs, ys = (span, [centre[1]] * 2) if axis == "x" else ([centre[0]] * 2, span)
            ax.plot(xs, ys, "-", color=OKABE_ITO[1], linewidth=0.8, label=f"_chosen_interval_{axis}")
    ax.plot([x_scale * chosen[event.column]], [y_scale * chosen[attainment.column]], "s", markersize=7,
            markerfacecolor="none", color=OKABE_ITO[1], label="_chosen")
    ax.margins(0.08)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    x_low, x_high = _span(_limits(spec, event), x_scale, (x0, x1))
    y_low, y_high = _span(_limits(spec, attainment), y_scale, (y0, y1))
    ax.add_patch(Rectangle((x_low, y_low), x_high - x_low, y_high - y_low, facecolor=OKABE_ITO[2], alpha=0.12,
                           edgecolor=OKABE_ITO[2], linewidth=0.8, linestyle="--", label="_feasible_region",
                           zorder=0))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(textwrap.fill(f"{event.label} (%)", 60))
    ax.set_ylabel(textwrap.fill(_metric_label(attainment, y_scale), 45), fontsize=6.5)
    title = "chosen" if result.feasible else "closest (misses the limits)"
    ax.set_title(textwrap.fill(f"filled: within every limit; hollow: misses one; shaded: allowed by the limits on "
                               f"these two; square: {title}", 65), fontsize=6)
    if len(spec.variables) == 1 and len(table) <= MAX_ANNOTATED:   # each point named by its value
        variable = spec.variables[0]
        for x_value, y_value, value in zip(x, y, table[variable.column]):
            ax.annotate(f"{value:g}", (x_value, y_value), textcoords="offset points", xytext=(3, 3), fontsize=5)
    return fig


def _span(limits, scale, ends):
    """The limits (at_least, at_most) on the plotted scale, an axis end where a side has none."""
    low, high = limits
    return (ends[0] if low is None else scale * low, ends[1] if high is None else scale * high)


def _metric_label(metric, scale):
    if scale == 100.0:
        return f"{metric.label} (%)"
    return f"{metric.label} ({metric.unit})"


def tradeoff_caption(result):
    """The caption of :func:`tradeoff_figure`."""
    event, attainment = tradeoff_metrics(result.spec)
    return (f"Trade-off of the regimen search: {attainment.label} against {event.label}, for each of the "
            f"{len(result.table)} candidates in the same {result.subjects} virtual patients. Shaded: what the limits "
            f"on these two metrics allow; filled points meet every limit. Square: "
            f"{'the chosen regimen' if result.feasible else 'the closest regimen (no candidate meets the limits)'}, "
            f"with its 95 % Monte Carlo intervals where computed. Answer: {result.message}")
