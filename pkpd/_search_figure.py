"""The figure of a regimen search: the objective over two decision variables, the feasible region marked.

Drawn under the house style of :mod:`pkpd._figures` (Okabe-Ito colours, 7 pt text, one
column wide, data artists labelled ``_...``). With two or more variables it is a heat
map over the first two (rows and columns), the others held at the chosen candidate's
values; with one variable a line of the objective against it.
"""

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ._figures import COLUMN_WIDTH_IN, OKABE_ITO, STYLE

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
    with plt.rc_context(STYLE):  # the house style of pkpd._figures
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
