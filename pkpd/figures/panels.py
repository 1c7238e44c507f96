"""Layout and drawing shared by the time-course figures: one axes or one panel per arm, arm lines
and bands, legends, windows and thresholds.

Artists that carry data have labels starting with ``_`` (hidden from legends) that name what they
show: ``_band90|ARM``, ``_band50|ARM``, ``_window``, ``_threshold``; median lines carry the arm's name.
"""

import matplotlib.patches
import numpy as np

from .style import (COLUMN_WIDTH_IN, HATCHES, MAX_ARMS_ONE_PANEL, PAGE_WIDTH_IN, arm_style, band_columns, new_figure,
                    wrapped)

NEAR_LEVEL = 0.1                # a threshold within 10 % of a window edge is drawn once (the threshold)


def arm_axes(n_arms, height_single=2.6, panels=None):
    """A figure and one axes per arm.

    panels: "single" (all arms on one axes; the default up to MAX_ARMS_ONE_PANEL arms),
    "stacked" (one row per arm, one column wide) or "grid" (three columns, page wide; the default
    above MAX_ARMS_ONE_PANEL arms).
    """
    panels = panels or ("single" if n_arms <= MAX_ARMS_ONE_PANEL else "grid")
    if panels == "single":
        fig = new_figure(COLUMN_WIDTH_IN, height_single + 0.14 * n_arms)
        ax = fig.add_subplot()
        return fig, [ax] * n_arms, panels
    ncols = 1 if panels == "stacked" else 3
    nrows = -(-n_arms // ncols)
    if panels == "stacked":
        fig = new_figure(COLUMN_WIDTH_IN, 0.5 + 1.15 * nrows)
    else:
        fig = new_figure(PAGE_WIDTH_IN, 0.4 + 1.35 * nrows)
    grid = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n_arms:]:
        fig.delaxes(ax)
    return fig, axes[:n_arms], panels


def label_panels(axes, panels, xlabel, ylabel, arms):
    """Axis labels (one per figure for a grid: ``fig.supxlabel``/``fig.supylabel``) and arm titles."""
    if panels == "single":
        axes[0].set_xlabel(xlabel)
        axes[0].set_ylabel(ylabel)
        return
    ncols = 1 if panels == "stacked" else 3
    for index, (ax, arm) in enumerate(zip(axes, arms)):
        ax.set_title(arm, fontsize=6.5 if panels == "stacked" else 6, pad=2)
        if index + ncols >= len(axes):
            ax.xaxis.set_tick_params(labelbottom=True)
            if panels == "stacked":
                ax.set_xlabel(xlabel)
        if panels == "stacked":
            ax.set_ylabel(ylabel)
    if panels == "grid":
        figure = axes[0].figure
        figure.supxlabel(xlabel, fontsize=7)
        figure.supylabel(ylabel, fontsize=7)


def box_look(index, n_arms):
    """(style, hatch) of an arm's box or bar; many arms share one look (tick labels name them)."""
    if n_arms > MAX_ARMS_ONE_PANEL:
        return arm_style(0) | {"marker": "o"}, ""
    return arm_style(index), HATCHES[index % len(HATCHES)]


def arm_legend(fig, axes, panels, arms, title=None, texts=None, extra=()):
    """Legend below the plot naming every arm (single-panel figures; panels carry titles otherwise).

    `texts` ({arm: legend text}) replaces an arm's name in the legend only (the artists keep it);
    `extra` adds (handle, text) entries after the arms, e.g. what the bands are."""
    if panels != "single":
        return
    handles, labels = axes[0].get_legend_handles_labels()
    order = [labels.index(arm) for arm in arms if arm in labels]
    texts = texts or {}
    fig.legend([handles[i] for i in order] + [h for h, _ in extra],
               [wrapped(texts.get(labels[i], labels[i]), 56) for i in order] + [t for _, t in extra],
               loc="outside lower center", ncols=1, handlelength=3.2, title=title)


def band_handles(quantiles):
    """Legend entries that say what the bands are (grey patches of the bands' two shades)."""
    low, high, inner_low, inner_high, _ = band_columns(quantiles)
    entries = []
    if inner_low:
        entries.append((matplotlib.patches.Patch(color="0.45", alpha=0.45, linewidth=0),
                        f"{inner_low[1:]}th-{inner_high[1:]}th percentiles"))
    entries.append((matplotlib.patches.Patch(color="0.45", alpha=0.18, linewidth=0),
                    f"{low[1:]}th-{high[1:]}th percentiles"))
    return entries


def nonzero_arms(table, arms, columns):
    """The arms whose output is not identically zero (a saline arm has no drug); all arms if none is."""
    kept = [arm for arm in arms if np.any(table.loc[table["arm"] == arm, columns].to_numpy(dtype=float) != 0)]
    return kept or list(arms)


def _arm_color(index, panels):
    """Arm colour; in a grid of many panels every panel uses the first colour (titles name the arms)."""
    return arm_style(index if panels != "grid" else 0)["color"]


def draw_line(ax, x, y, arm, index, n_points, panels="single"):
    """An arm's line labelled ARM, in its colour (and, on a single panel, its line style and markers)."""
    if panels != "single":
        ax.plot(x, y, label=arm, color=_arm_color(index, panels), linewidth=1.0)
        return
    style = arm_style(index)
    finite = int(np.count_nonzero(np.isfinite(y)))
    # markers spaced along the drawn line, offset per arm so that overlapping arms stay visible
    every = (0.04 + 0.11 * (index % 8), 0.3) if finite > 12 else (max(1, n_points // 6) if finite else None)
    ax.plot(x, y, label=arm, color=style["color"], linestyle=style["linestyle"], marker=style["marker"],
            markevery=every, markersize=3.2,
            markerfacecolor="white", markeredgewidth=0.8)


def draw_arm(ax, rows, time_column, factor, arm, index, panels, quantiles, log):
    """One arm's bands (``_band90|ARM``, ``_band50|ARM``) and median line (labelled ARM) on `ax`."""
    low, high, inner_low, inner_high, median = band_columns(quantiles)
    x = rows[time_column].to_numpy() * factor
    color = _arm_color(index, panels)
    ax.fill_between(x, rows[low], rows[high], color=color, alpha=0.13, linewidth=0, label=f"_band90|{arm}")
    if inner_low:
        ax.fill_between(x, rows[inner_low], rows[inner_high], color=color, alpha=0.3, linewidth=0,
                        label=f"_band50|{arm}")
    y = rows[median].to_numpy(dtype=float)
    if log:  # a line through zeros would drop to the axis floor; break it there instead
        y = np.where(y > 0, y, np.nan)
    draw_line(ax, x, y, arm, index, len(x), panels)


def mark_levels(ax, scenario, output, unit, labels=True):
    """Windows (shaded, edges drawn) and thresholds (dashed); a window edge within NEAR_LEVEL of a
    threshold is not drawn, so that the two nearly coinciding lines read as one."""
    thresholds = scenario.thresholds.get(output, ())
    for low, high in scenario.windows.get(output, ()):
        ax.axhspan(low, high, color="0.92", zorder=0, linewidth=0, label="_window")
        for bound in (low, high):
            if any(abs(bound - level) <= NEAR_LEVEL * max(abs(level), abs(bound)) for level in thresholds):
                continue
            ax.axhline(bound, color="0.6", linewidth=0.5, zorder=0.5, label="_window_bound")
        if not labels:
            continue
        ax.annotate(f"window {low:g}-{high:g} {unit}", (0.01, high), xycoords=("axes fraction", "data"),
                    xytext=(0, 1.5), textcoords="offset points", fontsize=5.5, ha="left", va="bottom",
                    color="0.25")
    for level in thresholds:
        ax.axhline(level, color="0.25", linewidth=0.7, linestyle=(0, (2, 2)), zorder=1, label="_threshold")
        if not labels:
            continue
        ax.annotate(f"{level:g} {unit}", (1.0, level), xycoords=("axes fraction", "data"), xytext=(0, 1.5),
                    textcoords="offset points", fontsize=5.5, ha="right", va="bottom", color="0.25")
