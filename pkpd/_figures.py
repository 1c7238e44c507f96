"""Figures for protocols: drawn headless with matplotlib, PNG (300 dpi) and SVG.

Every figure is built by a function that returns a :class:`matplotlib.figure.Figure`
(so it can be inspected, restyled or saved elsewhere) and :func:`write_figures`
saves the set that applies to a run:

====================================  ===========================================================
function                              figure
====================================  ===========================================================
:func:`concentration_figure`          median and 50 %/90 % bands of an output by arm, levels drawn
:func:`regimen_figure`                dosing timeline of each arm (infusion bars, bolus ticks)
:func:`dose_figure`                   an output after each dose of a repeated regimen, one panel per dose
:func:`exposure_figure`               Cmax and AUC by arm (box plots, points for small n)
:func:`attainment_figure`             % of subjects within a window / above a threshold over time
:func:`pain_figure`                   daily pain (NRS) by arm, median and bands
:func:`adverse_event_figure`          expected adverse-event incidence by arm (bar chart)
:func:`sweep_figure`                  heat map of a summary metric over a [sweep] grid
:func:`power_figure`                  trial power against the number of subjects
``SearchResult.figures``              a regimen search: objective over two variables, feasible region
====================================  ===========================================================

:func:`figure_set` yields ``(stem, figure, caption)`` for every figure that applies to a run
(the pain figure only when the model has an output of role ``pain_score``, an adverse-event figure
for each output of role ``adverse_event_probability``, heat maps only with a ``[sweep]``, the power
curve only when ``run.power`` is set) and :func:`write_figures` saves them. Figures choose outputs by
the role the model file declares, never by name, and name them on their axes by their label (for a
concentration its analyte and matrix: "Ketamine, racemic, arterial plasma (ng/mL)").

Colours are the Okabe-Ito palette (safe for colour blindness) and every arm also
has its own line style and marker, so figures survive greyscale printing. Text
is 6.5-7 pt at one column width (3.5 in); arms are named exactly as in the
scenario. Captions (model, n, seed, package version) are written into each
file's metadata and into ``captions.md``.

Artists that carry data have labels starting with ``_`` (hidden from legends)
that name what they show, e.g. ``_band50|saline``, ``_median|saline``,
``_dose|saline|0``: tests and users can find them without reading pixels.
"""

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.patches  # noqa: E402
import matplotlib.transforms  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ._errors import PkpdError  # noqa: E402
from ._per_dose import MAX_DOSES_SHOWN  # noqa: E402

if TYPE_CHECKING:  # _run loads _figures on demand
    from ._run import RunResult
    from ._scenario import Scenario

# Okabe & Ito (2008); yellow last because it is faint on white.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
HATCHES = ["", "////", "....", "xxxx", "\\\\\\\\", "++", "oo", "--"]
COLUMN_WIDTH_IN = 3.5
PAGE_WIDTH_IN = 7.0
MAX_ARMS_ONE_PANEL = 6          # above this, time courses are drawn as one panel per arm
SMALL_N = 50                    # exposure box plots show every subject up to this n
LOG_FLOOR_FRACTION = 1e-3       # log axes start at this fraction of the highest value drawn
NEAR_LEVEL = 0.1                # a threshold within 10 % of a window edge is drawn once (the threshold)
PEAK_FRACTION = 0.02            # a peak within the first 2 % of the time axis gets a panel of its own
SWEPT_KEYS = ("amount", "duration", "rate", "every", "count", "until", "start")
SWEEP_AXIS_PRIORITY = ("amount", "rate", "duration", "every", "count", "until", "start")
SWEEP_KEY_LABELS = {"amount": "Dose", "duration": "Infusion duration", "rate": "Infusion rate",
                    "every": "Every", "count": "Number of doses", "until": "Until", "start": "Start"}
METRIC_LABELS = {"cmax": "Cmax", "tmax": "Tmax", "cmin": "Cmin", "auc": "AUC", "cavg": "Cavg"}

STYLE: dict[Any, Any] = {
    "font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5, "legend.fontsize": 6.5, "figure.titlesize": 7,
    "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "xtick.major.size": 2.5, "ytick.major.size": 2.5, "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
    "svg.fonttype": "none", "figure.dpi": 100, "savefig.dpi": 300, "hatch.linewidth": 0.5,
}


REPRODUCIBLE = {"svg.hashsalt": "pkpd"}   # SVG ids from a fixed salt, not a random one


def arm_style(index):
    """Colour, line style and marker of the arm at `index` (the same in every figure)."""
    return dict(color=OKABE_ITO[index % len(OKABE_ITO)], linestyle=LINESTYLES[index % len(LINESTYLES)],
                marker=MARKERS[index % len(MARKERS)])


def _styled(function):
    """Build the figure under the house style (font sizes, spines, SVG text as text)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return function(*args, **kwargs)
    return wrapper


def _new_figure(width, height):
    # Figure() (not pyplot.figure) so that building many figures keeps no global state
    return Figure(figsize=(width, height), layout="constrained")


# ---------------------------------------------------------------------------
# Time axes
# ---------------------------------------------------------------------------


def _time_scale(span, time_unit="h"):
    """(factor from model time, axis label) for a span in model time units."""
    if time_unit == "h" and span > 72:
        return 1.0 / 24.0, "Time (d)"
    return 1.0, f"Time ({time_unit})"


def _focus_end(times, curves, fraction):
    """End of the informative part of the grid, or None to show it all.

    The informative part ends shortly after the last time any curve differs from
    its final value by more than `fraction` of its largest such difference; a
    single 2-h infusion followed for 35 days is then shown over its first hours.
    """
    curves = [np.asarray(c, dtype=float) for c in curves if len(c)]
    if not curves:
        return None
    deviation = np.nanmax([np.abs(c - c[-1]) for c in curves], axis=0)
    top = np.nanmax(deviation)
    if not np.isfinite(top) or top <= 0:
        return None
    last = times[np.flatnonzero(deviation > fraction * top)[-1]]
    end = times[0] + 1.25 * (last - times[0])
    end = max(end, times[min(len(times) - 1, 4)])
    if end >= times[0] + 0.5 * (times[-1] - times[0]):
        return None
    return float(end)


def _format_time(value):
    """Hours as short text: 40 min, 2 h, 7 d."""
    if value == 0:
        return "0 h"
    if value < 1:
        return f"{value * 60:.3g} min"
    if value >= 24 and abs(value / 24 - round(value / 24)) < 1e-9:
        return f"{value / 24:g} d"
    return f"{value:.3g} h"


def _pretty_unit(unit):
    return str(unit).replace("*", "·")


# ---------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------


def caption_base(run, scenario):
    """Model, n, seed and package version, for every caption."""
    info = run.manifest
    return (f"Model {info['model']['name']}, n = {info['n']} virtual subjects per arm (the same subjects in "
            f"every arm), seed {info['seed']}, pkpd {info['versions'].get('pkpd')}, scenario "
            f"{info['scenario']['file']}")


def _band_columns(quantiles):
    """(outer low, outer high, inner low, inner high, median) percentile columns; inner may be None."""
    names = [f"P{q:g}" for q in quantiles]
    median = "P50" if "P50" in names else names[len(names) // 2]
    inner = (names[1], names[-2]) if len(names) >= 5 else (None, None)
    return names[0], names[-1], inner[0], inner[1], median


def _band_text(quantiles):
    low, high, inner_low, inner_high, median = _band_columns(quantiles)
    median_text = "median" if median == "P50" else f"{median[1:]}th percentile"
    text = f"{median_text} (line)"
    if inner_low:
        text += f", {inner_low[1:]}th-{inner_high[1:]}th percentiles (dark band)"
    if low != median:
        text += f", {low[1:]}th-{high[1:]}th percentiles (light band) over subjects"
    return text


# ---------------------------------------------------------------------------
# Data access
# ---------------------------------------------------------------------------


def _profiles(run, scenario, output):
    """Percentile table of one output (arm, TIME, P..), from run.profiles or computed from the results."""
    profiles = run.profiles
    time_column = next(c for c in profiles.columns if str(c).startswith("TIME"))
    table = profiles[profiles["output"] == output]
    if table.empty:
        frames = []
        for arm, result in run.results.items():
            frame = result.percentiles(scenario.quantiles, outputs=[output])
            frame.insert(0, "arm", arm)
            frames.append(frame.rename(columns={"TIME": time_column}))
        table = pd.concat(frames, ignore_index=True)
    return table, time_column


def _unit(scenario, output):
    return scenario.model.outputs[output].unit


def _label(scenario, output):
    """The output's label ("Ketamine, racemic, arterial plasma (ng/mL)"); where arms of models of their
    own measure it as another analyte or in another matrix, each distinct label, joined by " / "."""
    models = [scenario.model] + [arm.model for arm in getattr(scenario, "arms", ()) if arm.model is not None]
    return " / ".join(dict.fromkeys(model.outputs[output].label for model in models))


def _is_concentration(scenario, output):
    return scenario.model.outputs[output].role == "concentration"


def outputs_with_role(model, role):
    """Names of the model's outputs of `role` (``models/README.md``, "Outputs"), in file order."""
    return [name for name, output in model.outputs.items() if output.role == role]


def _first_with_role(model, role):
    names = outputs_with_role(model, role)
    if not names:
        raise PkpdError(f"model {model.name!r} has no output of role {role}")
    return names[0]


def adverse_event_incidence(run, output=None):
    """Expected incidence by arm, %: the mean over subjects of each subject's maximum probability.

    Parameters
    ----------
    run : RunResult
    output : str, optional
        An output of role ``adverse_event_probability``; by default the model's first.

    Returns
    -------
    pandas.DataFrame
        Index arm; columns ``incidence`` (%), ``low`` and ``high`` (normal 95 % interval of the mean, %).
    """
    if output is None:
        output = _first_with_role(next(iter(run.results.values())).model, "adverse_event_probability")
    rows = {}
    for arm, result in run.results.items():
        peak = result.output(output).max(axis=1)
        mean = float(np.mean(peak))
        half = 1.96 * float(np.std(peak, ddof=1)) / np.sqrt(peak.size) if peak.size > 1 else 0.0
        rows[arm] = {"incidence": 100 * mean, "low": 100 * max(mean - half, 0.0), "high": 100 * min(mean + half, 1.0)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("arm")


def _attainment_values(values, kind, bounds):
    if kind == "within":
        low, high = bounds
        inside = (values >= low) & (values <= high)
    else:
        inside = values >= bounds[0]
    return 100.0 * inside.mean(axis=0)


def attainment_percent(run, output, level):
    """{arm: % of subjects satisfying `level` at each output time}; level = ("within", low, high) or
    ("above", threshold), in the output's unit."""
    kind, *bounds = level
    return {arm: _attainment_values(result.output(output), kind, bounds) for arm, result in run.results.items()}


def _levels(scenario, output):
    levels = [("within", low, high) for low, high in scenario.windows.get(output, ())]
    levels += [("above", level) for level in scenario.thresholds.get(output, ())]
    return levels


def _level_text(level, unit):
    if level[0] == "within":
        return f"within {level[1]:g}-{level[2]:g} {unit}"
    return f"at or above {level[1]:g} {unit}"


def _level_stem(level):
    return "_".join([level[0]] + [f"{v:g}" for v in level[1:]])


# ---------------------------------------------------------------------------
# Layout helpers
# ---------------------------------------------------------------------------


def _arm_axes(n_arms, height_single=2.6, panels=None):
    """A figure and one axes per arm.

    panels: "single" (all arms on one axes; the default up to MAX_ARMS_ONE_PANEL arms),
    "stacked" (one row per arm, one column wide) or "grid" (three columns, page wide; the default
    above MAX_ARMS_ONE_PANEL arms).
    """
    panels = panels or ("single" if n_arms <= MAX_ARMS_ONE_PANEL else "grid")
    if panels == "single":
        fig = _new_figure(COLUMN_WIDTH_IN, height_single + 0.14 * n_arms)
        ax = fig.add_subplot()
        return fig, [ax] * n_arms, panels
    ncols = 1 if panels == "stacked" else 3
    nrows = -(-n_arms // ncols)
    if panels == "stacked":
        fig = _new_figure(COLUMN_WIDTH_IN, 0.5 + 1.15 * nrows)
    else:
        fig = _new_figure(PAGE_WIDTH_IN, 0.4 + 1.35 * nrows)
    grid = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n_arms:]:
        fig.delaxes(ax)
    return fig, axes[:n_arms], panels


def _label_panels(axes, panels, xlabel, ylabel, arms):
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


def _box_look(index, n_arms):
    """(style, hatch) of an arm's box or bar; many arms share one look (tick labels name them)."""
    if n_arms > MAX_ARMS_ONE_PANEL:
        return arm_style(0) | {"marker": "o"}, ""
    return arm_style(index), HATCHES[index % len(HATCHES)]


def _arm_legend(fig, axes, panels, arms, title=None, texts=None, extra=()):
    """Legend below the plot naming every arm (single-panel figures; panels carry titles otherwise).

    `texts` ({arm: legend text}) replaces an arm's name in the legend only (the artists keep it);
    `extra` adds (handle, text) entries after the arms, e.g. what the bands are."""
    if panels != "single":
        return
    handles, labels = axes[0].get_legend_handles_labels()
    order = [labels.index(arm) for arm in arms if arm in labels]
    texts = texts or {}
    fig.legend([handles[i] for i in order] + [h for h, _ in extra],
               [_wrapped(texts.get(labels[i], labels[i]), 56) for i in order] + [t for _, t in extra],
               loc="outside lower center", ncols=1, handlelength=3.2, title=title)


def _band_handles(quantiles):
    """Legend entries that say what the bands are (grey patches of the bands' two shades)."""
    low, high, inner_low, inner_high, _ = _band_columns(quantiles)
    entries = []
    if inner_low:
        entries.append((matplotlib.patches.Patch(color="0.45", alpha=0.45, linewidth=0),
                        f"{inner_low[1:]}th-{inner_high[1:]}th percentiles"))
    entries.append((matplotlib.patches.Patch(color="0.45", alpha=0.18, linewidth=0),
                    f"{low[1:]}th-{high[1:]}th percentiles"))
    return entries


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


def _nonzero_arms(table, arms, columns):
    """The arms whose output is not identically zero (a saline arm has no drug); all arms if none is."""
    kept = [arm for arm in arms if np.any(table.loc[table["arm"] == arm, columns].to_numpy(dtype=float) != 0)]
    return kept or list(arms)


def _arm_color(index, panels):
    """Arm colour; in a grid of many panels every panel uses the first colour (titles name the arms)."""
    return arm_style(index if panels != "grid" else 0)["color"]


def _line(ax, x, y, arm, index, n_points, panels="single"):
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


# ---------------------------------------------------------------------------
# 1. Concentration (and any output) over time
# ---------------------------------------------------------------------------


@_styled
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
    unit = _unit(scenario, output)
    table, time_column = _profiles(run, scenario, output)
    low, high, inner_low, inner_high, median = _band_columns(scenario.quantiles)
    every_arm = list(run.results)
    arms = every_arm if all_arms else _nonzero_arms(table, every_arm, [low, high, median])
    times = np.sort(table[time_column].unique())
    end = None
    if focus:
        curves = [table.loc[table["arm"] == arm, high].to_numpy() for arm in arms]
        end = _focus_end(times, curves, 3e-4 if log else 0.01)
    time_unit = scenario.model.units.get("time", "h")
    peak_end = None
    if focus and (panels or ("single" if len(arms) <= MAX_ARMS_ONE_PANEL else "grid")) == "single":
        peak_end = _peak_end(times, [table.loc[table["arm"] == arm, median].to_numpy(dtype=float) for arm in arms],
                             end or times[-1])
    if peak_end is None:
        fig, axes, panels = _arm_axes(len(arms), panels=panels)
        factor, xlabel = _time_scale((end or times[-1]) - times[0], time_unit)
        views = [(axes, factor, xlabel, end)]
    else:   # fast, then slow: a panel on the peak in hours beside the whole course
        fig = _new_figure(COLUMN_WIDTH_IN, 2.6 + 0.14 * len(arms))
        first, whole = fig.subplots(1, 2, sharey=True, width_ratios=[1, 1.6])
        panels = "single"
        factor, xlabel = _time_scale((end or times[-1]) - times[0], time_unit)
        views = [([first] * len(arms), 1.0, f"Time ({time_unit})", peak_end), ([whole] * len(arms), factor, xlabel, end)]
    for axes_of_view, view_factor, _, _ in views:
        for position, arm in enumerate(arms):
            index = every_arm.index(arm)   # the arm's style in every figure
            _draw_arm(axes_of_view[position], table[table["arm"] == arm], time_column, view_factor, arm, index, panels,
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
                _draw_levels(ax, scenario, output, unit, labels=ax is labelled_axes)
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
    ylabel = _wrapped(ylabel or _label(scenario, output))
    _label_panels(axes, panels, views[0][2], ylabel, arms)
    if peak_end is not None:
        views[1][0][0].set_xlabel(views[1][2])
        views[0][0][0].set_title("peak", fontsize=6.5, pad=2)
        views[1][0][0].set_title("whole course", fontsize=6.5, pad=2)
    _arm_legend(fig, axes, panels, arms, texts=_same_curves(table, arms, median),
                extra=_band_handles(scenario.quantiles))
    fig.pkpd_focus = (float(times[0]), end, float(times[-1]), 3e-4 if log else 0.01) if end is not None else None
    fig.pkpd_peak_end = peak_end
    return fig


def _draw_arm(ax, rows, time_column, factor, arm, index, panels, quantiles, log):
    """One arm's bands (``_band90|ARM``, ``_band50|ARM``) and median line (labelled ARM) on `ax`."""
    low, high, inner_low, inner_high, median = _band_columns(quantiles)
    x = rows[time_column].to_numpy() * factor
    color = _arm_color(index, panels)
    ax.fill_between(x, rows[low], rows[high], color=color, alpha=0.13, linewidth=0, label=f"_band90|{arm}")
    if inner_low:
        ax.fill_between(x, rows[inner_low], rows[inner_high], color=color, alpha=0.3, linewidth=0,
                        label=f"_band50|{arm}")
    y = rows[median].to_numpy(dtype=float)
    if log:  # a line through zeros would drop to the axis floor; break it there instead
        y = np.where(y > 0, y, np.nan)
    _line(ax, x, y, arm, index, len(x), panels)


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


def _wrapped(label, width=32):
    """An axis label on two lines when it is longer than `width` characters (so that a long label,
    "Probability of psychotomimetic adverse event (solicited)", stays beside its axis)."""
    import textwrap

    return "\n".join(textwrap.wrap(label, width)) if len(label) > width else label


def _draw_levels(ax, scenario, output, unit, labels=True):
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


def _log_useful(run, scenario, output):
    """Log scale is drawn for concentrations that fall towards zero (not those sitting on a baseline)."""
    if not _is_concentration(scenario, output):
        return False
    table, _ = _profiles(run, scenario, output)
    median = table[_band_columns(scenario.quantiles)[4]].to_numpy()
    top = np.nanmax(median) if median.size else 0.0
    return bool(top > 0 and np.nanmin(median) < 0.01 * top)


@_styled
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
    from ._per_dose import dose_windows, repeated_dose

    table, time_column = _profiles(run, scenario, output)
    low, high, _, _, median = _band_columns(scenario.quantiles)
    every_arm = list(run.results)
    moving = _nonzero_arms(table, every_arm, [low, high, median])
    rows = [(arm, dose_windows(dose, scenario.times)) for arm, dose in
            ((arm, repeated_dose(arm)) for arm in scenario.arms) if dose is not None and arm.name in moving]
    rows = [(arm, windows) for arm, windows in rows if windows]
    if not rows:
        return None
    times = np.sort(table[time_column].unique())
    span = _dose_span(times, table, rows, high)
    columns = max(len(windows) for _, windows in rows)
    fig = _new_figure(PAGE_WIDTH_IN, 0.7 + 1.3 * len(rows))
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
            _draw_arm(ax, shifted, time_column, 1.0, arm.name, index, "stacked", scenario.quantiles, False)
            _draw_levels(ax, scenario, output, _unit(scenario, output), labels=False)
            ax.set_xlim(0, span)
            ax.set_title(f"dose {number} (at {_format_time(start)})", fontsize=6, pad=2)
            if column == 0:
                ax.set_ylabel(_wrapped(arm.name, 24), fontsize=6.5)
    fig.supxlabel(f"Time since the start of the dose ({time_unit})", fontsize=7)
    fig.supylabel(_label(scenario, output), fontsize=7)
    fig.legend(*zip(*_band_handles(scenario.quantiles)), loc="outside upper center", ncols=2)
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
        focus = _focus_end(times[inside], [curve], 0.01)
        ends.append((focus if focus is not None else end) - start)
    return float(min(max(ends), shortest))


# ---------------------------------------------------------------------------
# 2. Regimen schematic
# ---------------------------------------------------------------------------


@dataclass
class SweepLayout:
    """How the arms of a ``[sweep]`` map to its grid.

    Attributes
    ----------
    keys : list of str
        Swept keys in file order (``amount``, ``duration``, ``every``, ...).
    values : dict of str to list
        Values of each key in file order, as written (``"0.5 mg/kg"``).
    cells : list of (str, dict)
        (arm name, {key: value}) for every combination, in arm order.
    """
    keys: list
    values: dict
    cells: list

    @property
    def varying(self):
        return [k for k in self.keys if len(self.values[k]) > 1]

    @property
    def fixed(self):
        return {k: self.values[k][0] for k in self.keys if len(self.values[k]) == 1}

    def axes(self):
        """(row key, column key or None, facet keys): the first two varying keys in the order dose,
        rate, duration, every, count, until, start, then swept model parameters in file order."""
        ordered = sorted(self.varying, key=lambda k: (SWEEP_AXIS_PRIORITY.index(k) if k in SWEEP_AXIS_PRIORITY
                                                      else len(SWEEP_AXIS_PRIORITY) + self.keys.index(k)))
        if not ordered:
            return None, None, []
        return ordered[0], (ordered[1] if len(ordered) > 1 else None), ordered[2:]


def sweep_layout(scenario):
    """The :class:`SweepLayout` of a scenario's ``[sweep]``; None when it has none, or when its last
    arms are not the sweep's grid in order (then no sweep figure is drawn rather than a wrong one)."""
    sweep = scenario.raw.get("sweep")
    if not sweep:
        return None
    keys = [k for k in sweep if k in SWEPT_KEYS]
    values = {k: (sweep[k] if isinstance(sweep[k], list) else [sweep[k]]) for k in keys}
    for name, swept in (sweep.get("parameters") or {}).items():   # swept model parameters, after the dose keys
        keys.append(name)
        values[name] = swept if isinstance(swept, list) else [swept]
    combinations = [dict(zip(keys, combo)) for combo in itertools.product(*(values[k] for k in keys))]
    arms = scenario.arms[len(scenario.arms) - len(combinations):]
    template = sweep.get("name", " ".join("{" + k + "}" for k in keys))
    cells = []
    for arm, combination in zip(arms, combinations):
        try:
            if template.format(**combination) != arm.name:
                return None
        except (KeyError, IndexError, ValueError):
            return None
        cells.append((arm.name, combination))
    return SweepLayout(keys=keys, values=values, cells=cells)


def _raw_doses(scenario):
    """{arm name: [dose table as written in the file]} where the file's text is available."""
    raw = scenario.raw or {}
    found = {}
    for arm in raw.get("arms", []):
        if isinstance(arm, dict) and "name" in arm:
            found[arm["name"]] = list(arm.get("doses", []))
    layout = sweep_layout(scenario)
    if layout is not None:
        sweep = raw["sweep"]
        parameters = sweep.get("parameters") or {}
        for name, combination in layout.cells:
            dose_keys = {k: v for k, v in combination.items() if k not in parameters}
            doses = []
            if dose_keys:
                doses.append({"drug": sweep["drug"], **dose_keys})
                if "route" in sweep:
                    doses[0]["route"] = sweep["route"]
            found[name] = doses + list(sweep.get("with", []))
    return found


def _raw_dose_label(dose):
    drug = dose.get("drug", "")
    amount, rate, duration = dose.get("amount"), dose.get("rate"), dose.get("duration")
    if rate is not None and amount is None:
        text = f"{drug} {rate}" + (f" for {duration}" if duration else "")
    elif rate is not None:
        text = f"{drug} {amount} at {rate}"
    elif duration:
        text = f"{drug} {amount} over {duration}"
    else:
        text = f"{drug} {amount} bolus"
    if dose.get("every"):
        if dose.get("until"):
            text += f", every {dose['every']} until {dose['until']}"
        elif int(dose.get("count", 1)) > 1:
            text += f", every {dose['every']} ×{dose['count']}"
    if dose.get("route") and dose["route"] != "intravenous":
        text += f" ({dose['route']})"
    return text


def _infusion_duration(dose):
    """Duration of each administration (0 for a bolus); amount / rate for an infusion given by both."""
    if dose.duration:
        return float(dose.duration)
    if dose.rate and dose.amount:
        return float(dose.amount) / float(dose.rate)
    return 0.0


def _drug_of(model, dose):
    for name, drug in model.drugs.items():
        if dose.target == drug.get("compartment") or dose.target in drug.get("routes", {}).values():
            return name
    return dose.target


def _dose_label(model, dose):
    """Label from the Dose object (model units) when the file's text is not available."""
    drug = _drug_of(model, dose)
    unit = model.compartment_units.get(dose.target) or model.units.get("amount", "mg")
    per = "/kg" if dose.per_weight else ""
    if dose.rate is not None and dose.amount is None:
        text = f"{drug} {dose.rate:g} {unit}{per}/h for {_format_time(dose.duration)}"
    elif dose.rate is not None:
        text = f"{drug} {dose.amount:g} {unit}{per} at {dose.rate:g} {unit}{per}/h"
    elif dose.duration:
        text = f"{drug} {dose.amount:g} {unit}{per} over {_format_time(dose.duration)}"
    else:
        text = f"{drug} {dose.amount:g} {unit}{per} bolus"
    if dose.every and (dose.count > 1 or dose.until is not None):
        repeat = f"until {_format_time(dose.until)}" if dose.until is not None else f"×{dose.count}"
        text += f", every {_format_time(dose.every)} {repeat}"
    return text


def regimen_labels(scenario):
    """{arm name: [label of each dose]}: the file's own words ("ketamine 0.5 mg/kg over 2 h") when
    available, else built from the Dose objects in model units."""
    raw = _raw_doses(scenario)
    labels = {}
    for arm in scenario.arms:
        doses = arm.regimen.doses
        written = raw.get(arm.name)
        if written is not None and len(written) == len(doses) and all(isinstance(d, dict) for d in written):
            labels[arm.name] = [_raw_dose_label(d) for d in written]
        else:
            labels[arm.name] = [_dose_label(scenario.model, d) for d in doses]
    return labels


@_styled
def regimen_figure(scenario):
    """Dosing timeline of each arm: infusion bars (length = duration) and bolus ticks.

    Up to six arms, each arm has its name in bold and one lane per dose instruction, labelled with
    drug, dose and duration as written in the scenario ("ketamine 0.5 mg/kg over 2 h"). With more
    arms (a sweep), each arm is one row named by its y tick label, drugs told apart by a legend.

    Returns
    -------
    matplotlib.figure.Figure
        Each lane's bars are a ``PolyCollection`` labelled ``_dose|ARM|INDEX`` (x data in the
        displayed time unit, see the axis label), boluses a ``Line2D`` labelled
        ``_bolus|ARM|INDEX``. ``fig.pkpd_widened`` is True when some bars were drawn wider than
        their duration to stay visible.
    """
    model = scenario.model
    time_unit = model.units.get("time", "h")
    labels = regimen_labels(scenario)
    arms = scenario.arms
    starts = {arm.name: [d.start_times() for d in arm.regimen.doses] for arm in arms}
    pairs = [(d, t) for arm in arms for d, t in zip(arm.regimen.doses, starts[arm.name]) if t.size]
    first = min([0.0] + [t.min() for _, t in pairs])
    last = max([1.0] + [t.max() + _infusion_duration(d) for d, t in pairs])
    for dose, times in pairs:  # show one interval after a repeated dose's last start, within the grid
        if dose.every:
            last = max(last, min(times.max() + dose.every, float(scenario.times[-1])))
    factor, xlabel = _time_scale(last - first, time_unit)
    span = (last - first) * factor
    min_width = 0.006 * span
    drugs = list(model.drugs)
    compact = len(arms) > MAX_ARMS_ONE_PANEL
    n_lanes = sum(max(1, len(arm.regimen.doses)) for arm in arms)
    unit_in = 0.16 if compact else 0.25
    rows = len(arms) * 1.0 if compact else n_lanes * 0.9 + len(arms) * 1.1
    fig = _new_figure(COLUMN_WIDTH_IN, 0.75 + unit_in * rows)
    ax = fig.add_subplot()
    widened = False
    drawn_drugs = {}
    y = 0.0
    ticks = []
    for arm in arms:
        doses = arm.regimen.doses
        if compact:
            ticks.append((y, arm.name))
            lane_height = 0.7 / max(1, len(doses))
            lane_y = [y + 0.35 - lane_height * (j + 0.5) for j in range(len(doses))]
        else:
            ax.text(first * factor, y, arm.name, fontweight="bold", fontsize=6.5, va="center", ha="left")
            lane_height = 0.36
            lane_y = [y - 0.95 - 0.9 * j for j in range(len(doses))]
            if not doses:
                ax.text(first * factor, y - 0.75, "no drug", fontsize=6, va="center", ha="left", color="0.35",
                        style="italic")
        for index, (dose, times) in enumerate(zip(doses, starts[arm.name])):
            written = labels[arm.name][index]
            drug = next((name for name in drugs if written.startswith(name + " ")), _drug_of(model, dose))
            colour_index = drugs.index(drug) if drug in drugs else 0
            color = OKABE_ITO[colour_index % len(OKABE_ITO)]
            hatch = HATCHES[colour_index % len(HATCHES)]
            x = times * factor
            center = lane_y[index]
            if _infusion_duration(dose) > 0:
                widths = np.full(x.size, _infusion_duration(dose) * factor)
                widened |= bool(np.any(widths < min_width))
                bars = ax.broken_barh(list(zip(x, np.maximum(widths, min_width))), (center - lane_height / 2, lane_height),
                                      facecolors=color, edgecolors="black", linewidth=0.5, hatch=hatch,
                                      label=f"_dose|{arm.name}|{index}")
                drawn_drugs.setdefault(drug, bars)
            else:
                marker = ax.plot(x, np.full(x.size, center), linestyle="none", marker="|",
                                 markersize=8 if not compact else 5, markeredgewidth=1.5, color=color,
                                 label=f"_bolus|{arm.name}|{index}")[0]
                drawn_drugs.setdefault(drug, marker)
            if not compact:
                ax.text(x[0] if x.size else first * factor, center + lane_height / 2 + 0.04, written, fontsize=6,
                        va="bottom", ha="left")
        if compact:
            y -= 1.0
        else:
            y -= 0.95 + 0.9 * max(1, len(doses)) - 0.45 + 0.55
    if compact:
        ax.set_yticks([t for t, _ in ticks], [name for _, name in ticks], fontsize=6)
        ax.set_ylim(y + 0.45, 0.55)
        ax.tick_params(axis="y", length=0)
        if drawn_drugs:
            fig.legend(list(drawn_drugs.values()), list(drawn_drugs), loc="outside lower center",
                       ncols=len(drawn_drugs))
    else:
        ax.set_yticks([])
        ax.set_ylim(y + 0.3, 0.45)
    ax.set_xlim(first * factor - 0.02 * span, last * factor + 0.03 * span)
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(xlabel)
    ax.set_title("Dosing regimen by arm", fontsize=7)
    fig.pkpd_widened = widened
    return fig


# ---------------------------------------------------------------------------
# 3. Exposure distributions
# ---------------------------------------------------------------------------


@_styled
def exposure_figure(run, scenario, output, metrics=("cmax", "auc")):
    """Distribution over subjects of exposure metrics of one output, by arm (box plots; every
    subject drawn as a point up to 50 subjects).

    Boxes span the quartiles with the median marked; whiskers reach the 5th and 95th
    percentiles. Values come from ``run.exposure`` (long format: arm, ID, output, metric,
    value, unit).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric; y tick labels are the arm names (first arm on top); median lines
        are labelled ``_median|ARM``, points ``_points|ARM``.
    """
    exposure = run.exposure[run.exposure["output"] == output]
    metrics = [m for m in metrics if (exposure["metric"] == m).any()]
    if not metrics:
        raise PkpdError(f"exposure figure: run.exposure has none of the metrics for output {output!r}")
    arms = list(run.results)
    n = int(exposure.groupby(["arm", "metric"]).size().max())
    fig = _new_figure(COLUMN_WIDTH_IN, 0.45 + len(metrics) * (0.45 + 0.2 * len(arms)))
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    positions = np.arange(len(arms))[::-1].astype(float)
    rng = np.random.default_rng(0)
    for ax, metric in zip(axes, metrics):
        rows = exposure[exposure["metric"] == metric]
        data = [rows.loc[rows["arm"] == arm, "value"].to_numpy(dtype=float) for arm in arms]
        unit = rows["unit"].iloc[0]
        parts = ax.boxplot(data, positions=positions, orientation="horizontal", whis=(5, 95), widths=0.55,
                           patch_artist=True, showfliers=n > SMALL_N, manage_ticks=False,
                           flierprops=dict(marker=".", markersize=2, alpha=0.5),
                           medianprops=dict(color="black", linewidth=1.2))
        for index, arm in enumerate(arms):
            style, hatch = _box_look(index, len(arms))
            box = parts["boxes"][index]
            box.set_facecolor(matplotlib.colors.to_rgba(style["color"], 0.35))
            box.set_edgecolor(style["color"])
            box.set_hatch(hatch)
            parts["medians"][index].set_label(f"_median|{arm}")
            if n <= SMALL_N:
                jitter = rng.uniform(-0.16, 0.16, data[index].size)
                ax.plot(data[index], positions[index] + jitter, linestyle="none", marker=style["marker"],
                        markersize=2.6, markerfacecolor="white", markeredgecolor=style["color"],
                        markeredgewidth=0.6, label=f"_points|{arm}", zorder=3)
        ax.set_yticks(positions, arms)
        ax.set_ylim(-0.6, len(arms) - 0.4)
        name = METRIC_LABELS.get(metric, metric)
        if metric == "auc" and scenario.interval is not None:
            a, b = scenario.interval
            name = f"AUC {_format_time(a)}-{_format_time(b)}"
        if metric == "auc" and scenario.model.outputs[output].baseline:   # an endogenous substance
            name += " above baseline"
        ax.set_xlabel(f"{scenario.model.outputs[output].title}: {name} ({_pretty_unit(unit)})")
        ax.set_xlim(left=min(0, ax.get_xlim()[0]))
    _fit_xlabels(fig)
    return fig


def _fit_xlabels(fig):
    """Wrap each x axis label that is wider than its axes (laid out as when saved) to the axes' width."""
    fig.draw_without_rendering()
    for ax in fig.axes:
        label = ax.xaxis.label
        text = label.get_text()
        width, room = label.get_window_extent().width, ax.get_window_extent().width
        if text and width > room:
            ax.set_xlabel(_wrapped(text, max(12, int(len(text) * room / width) - 2)))


# ---------------------------------------------------------------------------
# 4. Target attainment
# ---------------------------------------------------------------------------


@_styled
def attainment_figure(run, scenario, output, level):
    """Percentage of subjects within a window, or at or above a threshold, at each time, by arm.

    Parameters
    ----------
    level : tuple
        ``("within", low, high)`` or ``("above", threshold)`` in the output's unit (the
        scenario's ``windows`` and ``thresholds``).

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled with the arm names; y data in %.
    """
    unit = _unit(scenario, output)
    percent = attainment_percent(run, output, level)
    arms = list(run.results)
    times = next(iter(run.results.values())).times
    fig, axes, panels = _arm_axes(len(arms), height_single=2.3)
    end = _focus_end(times, list(percent.values()), 0.01)
    factor, xlabel = _time_scale((end or times[-1]) - times[0], scenario.model.units.get("time", "h"))
    for index, arm in enumerate(arms):
        _line(axes[index], times * factor, percent[arm], arm, index, times.size, panels)
    for ax in dict.fromkeys(axes):
        ax.set_ylim(-2, 102)
        if end is not None:
            ax.set_xlim(times[0] * factor, end * factor)
    ylabel = f"Subjects {_level_text(level, unit)} (%)"
    _label_panels(axes, panels, xlabel, ylabel, arms)
    if panels == "single":
        axes[0].set_title(scenario.model.outputs[output].title, fontsize=7)
    _arm_legend(fig, axes, panels, arms)
    fig.pkpd_focus = (float(times[0]), end, float(times[-1]), 0.01) if end is not None else None
    return fig


# ---------------------------------------------------------------------------
# 5. Effects: pain and adverse events
# ---------------------------------------------------------------------------


def pain_figure(run, scenario, output=None):
    """Daily pain (NRS 0-10) over time, one panel per arm: median and bands over subjects, whole
    follow-up (the bands of different arms overlap too much to share one axes); the median of the
    placebo arm (the first arm without doses), if any, is repeated in the other panels.

    Parameters
    ----------
    output : str, optional
        An output of role ``pain_score``; by default the model's first.

    Returns
    -------
    matplotlib.figure.Figure
        As :func:`concentration_figure`.
    """
    output = output or _first_with_role(scenario.model, "pain_score")
    unit = _unit(scenario, output)
    placebo = next((arm.name for arm in scenario.arms if not arm.regimen.doses and arm.name in run.results), None)
    return concentration_figure(run, scenario, output, focus=False, ylabel=f"Daily pain ({unit})",
                                ylim=(0, 10) if "0-10" in unit else None, draw_levels=False,
                                panels="stacked" if len(run.results) <= MAX_ARMS_ONE_PANEL else "grid",
                                reference=placebo)


@_styled
def adverse_event_figure(run, scenario, output=None):
    """Expected incidence of the adverse event by arm (%): the mean over subjects of each subject's
    maximum probability over time, with a 95 % interval of the mean.

    Parameters
    ----------
    output : str, optional
        An output of role ``adverse_event_probability``; by default the model's first.

    Returns
    -------
    matplotlib.figure.Figure
        Bars (``Rectangle``) labelled ``_incidence|ARM``, width = incidence in %.
    """
    output = output or _first_with_role(scenario.model, "adverse_event_probability")
    table = adverse_event_incidence(run, output)
    arms = list(run.results)
    fig = _new_figure(COLUMN_WIDTH_IN, 0.8 + 0.22 * len(arms))
    ax = fig.add_subplot()
    positions = np.arange(len(arms))[::-1].astype(float)
    top = max(float(table["high"].max()), 1.0)
    for index, arm in enumerate(arms):
        style, hatch = _box_look(index, len(arms))
        value = table.loc[arm, "incidence"]
        bars = ax.barh(positions[index], value, height=0.6, color=matplotlib.colors.to_rgba(style["color"], 0.6),
                       edgecolor=style["color"], hatch=hatch, linewidth=0.7)
        bars.patches[0].set_label(f"_incidence|{arm}")
        ax.errorbar(value, positions[index], xerr=[[value - table.loc[arm, "low"]], [table.loc[arm, "high"] - value]],
                    color="black", linewidth=0.7, capsize=2, label="_ci")
        ax.text(table.loc[arm, "high"] + 0.02 * top, positions[index], f"{value:.1f} %", va="center", fontsize=6)
    ax.set_yticks(positions, arms)
    ax.set_xlim(0, top * 1.25)
    event = scenario.model.outputs[output].event
    ax.set_xlabel(f"{event[:1].upper()}{event[1:]}\n(expected % of subjects)\nerror bars: Monte Carlo 95 % interval "
                  f"of the mean over {len(run.results[arms[0]].subject_ids)} virtual subjects")
    return fig


# ---------------------------------------------------------------------------
# 6. Sweep heat map
# ---------------------------------------------------------------------------


def sweep_values(run, scenario, output, metric):
    """{arm: value} of one sweep metric, and its label with unit.

    `metric` is a metric of ``run.summary`` (its median over subjects, e.g. ``"auc"`` or
    ``"time_within_10.5_150"``), or ``"incidence"`` for the expected adverse-event incidence (%)
    of :func:`adverse_event_incidence`.
    """
    if metric == "incidence":
        table = adverse_event_incidence(run, output)
        return table["incidence"].to_dict(), "Expected adverse-event incidence (%)"
    rows = run.summary[(run.summary["output"] == output) & (run.summary["metric"] == metric)]
    if rows.empty:
        raise PkpdError(f"sweep figure: run.summary has no metric {metric!r} for output {output!r}")
    values = dict(zip(rows["arm"], rows["median"].astype(float)))
    unit = _pretty_unit(rows["unit"].iloc[0])
    concentration_unit = _unit(scenario, output)
    name = scenario.model.outputs[output].title
    if metric.startswith("time_within_"):
        low, high = metric[len("time_within_"):].split("_")
        label = f"Median time with {name} within {low}-{high} {concentration_unit} ({unit})"
    elif metric.startswith("time_above_"):
        label = f"Median time with {name} above {metric[len('time_above_'):]} {concentration_unit} ({unit})"
    elif metric.startswith("fraction_"):
        label = f"{name} {metric.replace('_', ' ')} (fraction of subjects)"
    else:
        label = f"Median {name} {METRIC_LABELS.get(metric, metric)} ({unit})"
    return values, label


@_styled
def sweep_figure(run, scenario, output, metric):
    """Heat map of one metric over the sweep grid: dose (rows) x duration (columns), one panel per
    value of the remaining swept keys (e.g. frequency), sharing one colour scale.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel; each holds one ``AxesImage`` whose array ``[i, j]`` is the value for
        row value ``i`` and column value ``j`` (rows and columns in file order), written in the
        cell as text.
    """
    layout = sweep_layout(scenario)
    if layout is None:
        raise PkpdError("sweep figure needs a [sweep] section", file=scenario.path.name)
    row_key, col_key, facet_keys = layout.axes()
    if row_key is None:
        raise PkpdError("sweep figure needs at least one swept key with two values", file=scenario.path.name)
    values, label = sweep_values(run, scenario, output, metric)
    rows = layout.values[row_key]
    cols = layout.values[col_key] if col_key else [None]
    facets = list(itertools.product(*(layout.values[k] for k in facet_keys))) or [()]
    lookup = {}
    for arm, combination in layout.cells:
        key = (combination[row_key], combination[col_key] if col_key else None,
               tuple(combination[k] for k in facet_keys))
        lookup[key] = values.get(arm, np.nan)
    matrices = [np.array([[lookup.get((r, c, facet), np.nan) for c in cols] for r in rows], dtype=float)
                for facet in facets]
    finite = np.concatenate([m.ravel() for m in matrices])
    finite = finite[np.isfinite(finite)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmax - vmin <= 1e-6 * max(abs(vmin), abs(vmax), 1.0):
        # equal to display precision (e.g. exact and Runge-Kutta arms): one colour, no 1e-7 scale
        vmax = vmin + max(abs(vmin), 1.0)
    width = COLUMN_WIDTH_IN if len(facets) <= 2 else PAGE_WIDTH_IN
    fig = _new_figure(width, 1.0 + 0.32 * len(rows) + 0.5)
    axes = fig.subplots(1, len(facets), squeeze=False, sharey=True)[0]
    cmap = matplotlib.colormaps["cividis"]
    image = None
    for ax, facet, matrix in zip(axes, facets, matrices):
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                          aspect="auto")
        for i, j in itertools.product(range(len(rows)), range(len(cols))):
            value = matrix[i, j]
            shade = (value - vmin) / (vmax - vmin) if np.isfinite(value) else 1.0
            ax.text(j, i, f"{value:.3g}" if np.isfinite(value) else "–", ha="center", va="center", fontsize=5.5,
                    color="white" if shade < 0.55 else "black")
        ax.set_xticks(range(len(cols)), [str(c) if c is not None else "" for c in cols])
        ax.set_yticks(range(len(rows)), [str(r) for r in rows])
        ax.set_xlabel(SWEEP_KEY_LABELS.get(col_key, col_key) if col_key else "")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if facet_keys:
            ax.set_title(", ".join(f"{SWEEP_KEY_LABELS.get(k, k).lower()} {v}" for k, v in zip(facet_keys, facet)),
                         fontsize=6.5)
    axes[0].set_ylabel(SWEEP_KEY_LABELS.get(row_key, row_key))
    bar = fig.colorbar(image, ax=list(axes), location="bottom", shrink=0.9, aspect=30, pad=0.02)
    bar.set_label(label, fontsize=6.5)
    bar.ax.tick_params(labelsize=6)
    return fig


def _sweep_metrics(run, scenario):
    """(output, metric) pairs drawn as sweep heat maps: time within each window, AUC of the first
    concentration output, and the incidence of each adverse event the model has."""
    chosen = []
    summary = run.summary
    for output in scenario.variables:
        for low, high in scenario.windows.get(output, ()):
            metric = f"time_within_{low:g}_{high:g}"
            if ((summary["output"] == output) & (summary["metric"] == metric)).any():
                chosen.append((output, metric))
    first = next((o for o in scenario.variables if _is_concentration(scenario, o)
                  and ((summary["output"] == o) & (summary["metric"] == "auc")).any()), None)
    if first is not None:
        chosen.append((first, "auc"))
    chosen += [(output, "incidence") for output in outputs_with_role(scenario.model, "adverse_event_probability")]
    return chosen


# ---------------------------------------------------------------------------
# 7. Trial power
# ---------------------------------------------------------------------------

POWER_COLUMNS = ["comparison", "n_total", "power", "power_low", "power_high", "mean_estimate", "sd_estimate",
                 "replicates"]


@_styled
def power_figure(power, target=0.8):
    """Power against the total number of subjects, one line per comparison, with Monte Carlo 95 %
    intervals (error bars) and the target power drawn.

    Parameters
    ----------
    power : pandas.DataFrame
        Columns comparison, n_total, power, power_low, power_high (fractions 0-1), mean_estimate,
        sd_estimate, replicates (``run.power``).
    target : float
        Target power, drawn as a dotted line.

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled with the comparison names; y data in %. The smallest n reaching `target`
        is a vertical line labelled ``_needed|COMPARISON``; comparisons that never reach it are
        counted in one text "80 % not reached in the grid (k of m comparisons)", gid ``not_reached``.
    """
    missing = [c for c in ("comparison", "n_total", "power", "power_low", "power_high") if c not in power]
    if missing:
        raise PkpdError(f"power table: missing column(s) {', '.join(missing)}; has {', '.join(power.columns)}")
    comparisons = list(dict.fromkeys(power["comparison"]))
    fig = _new_figure(COLUMN_WIDTH_IN, 2.5 + 0.14 * len(comparisons))
    ax = fig.add_subplot()
    for index, comparison in enumerate(comparisons):
        rows = power[power["comparison"] == comparison].sort_values("n_total")
        style = arm_style(index)
        y = 100 * rows["power"].to_numpy(dtype=float)
        error = [y - 100 * rows["power_low"].to_numpy(dtype=float), 100 * rows["power_high"].to_numpy(dtype=float) - y]
        # comparisons side by side (a few points apart on screen) so that their intervals do not hide each
        # other; the data stay at the true n
        shift = matplotlib.transforms.ScaledTranslation((index - (len(comparisons) - 1) / 2) * 2.5 / 72, 0,
                                                        fig.dpi_scale_trans)
        ax.errorbar(rows["n_total"].to_numpy(dtype=float), y, yerr=error, label=str(comparison), color=style["color"],
                    linestyle=style["linestyle"], marker=style["marker"], markersize=3.5, markerfacecolor="white",
                    capsize=2, elinewidth=0.7, linewidth=1.1, transform=ax.transData + shift)
    sizes = np.unique(power["n_total"].to_numpy(dtype=float))
    pad = 0.1 * (sizes[-1] - sizes[0]) if sizes[-1] > sizes[0] else max(1.0, 0.1 * sizes[0])
    ax.set_xlim(sizes[0] - pad, sizes[-1] + pad)  # dodged artists do not take part in autoscaling
    if sizes.size <= 10:
        ax.set_xticks(sizes, [f"{v:g}" for v in sizes])
    needed_n = sample_size_for_power(power, target)
    for index, (comparison, needed) in enumerate(needed_n.items()):
        if needed is not None:   # the smallest total n of the grid that reaches the target: marked on the axis
            color = arm_style(index)["color"]
            ax.axvline(needed, color=color, linewidth=0.6, linestyle=(0, (1, 1.5)), label=f"_needed|{comparison}")
            ax.annotate(f"n = {needed:g}", (needed, 100 * target), xytext=(2, -8 - 7 * index),
                        textcoords="offset points", fontsize=5.5, color=color, ha="left", va="top")
    missing = [comparison for comparison, needed in needed_n.items() if needed is None]
    if missing:   # one line above the target, clear of the curves below it (the caption names the comparisons)
        which = "" if len(needed_n) == 1 else f" ({len(missing)} of {len(needed_n)} comparisons)"
        ax.annotate(f"{100 * target:g} % not reached in the grid{which}", (0.99, 100 * target),
                    xycoords=("axes fraction", "data"), xytext=(0, 1.5), textcoords="offset points", ha="right",
                    va="bottom", fontsize=5.5, color="0.15", gid="not_reached")
    ax.axhline(100 * target, color="0.3", linewidth=0.7, linestyle=(0, (1, 2)), label="_target")
    ax.annotate(f"{100 * target:g} % power", (0.01, 100 * target), xycoords=("axes fraction", "data"),
                xytext=(0, 1.5), textcoords="offset points", ha="left", va="bottom", fontsize=5.5, color="0.3")
    ax.set_ylim(0, 102)
    ax.set_xlabel("Number of subjects (total)")
    ax.set_ylabel("Power (%)")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=1, handlelength=3.2)
    return fig


def sample_size_for_power(power, target=0.8):
    """{comparison: the smallest total n of the grid whose estimated power reaches `target`, or None}."""
    needed = {}
    for comparison in dict.fromkeys(power["comparison"]):
        rows = power[(power["comparison"] == comparison) & (power["power"] >= target)]
        needed[comparison] = float(rows["n_total"].min()) if len(rows) else None
    return needed


# ---------------------------------------------------------------------------
# The set for a run
# ---------------------------------------------------------------------------


def _legend_arms(fig, run):
    """The arms a time-course figure draws (their median lines carry the arm's name)."""
    return {line.get_label() for ax in fig.axes for line in ax.lines} & set(run.results)


def _focus_text(fig):
    focus = getattr(fig, "pkpd_focus", None)
    if not focus:
        return ""
    start, end, stop, fraction = focus
    return (f" The time axis shows {_format_time(start)} to {_format_time(end)} of the {_format_time(stop - start)} "
            f"simulated; later the curves move by less than {100 * fraction:g} % of their range.")


def figure_set(run: "RunResult", scenario: "Scenario") -> Iterator[tuple[str, Figure, str]]:
    """Yield ``(stem, figure, caption)`` for every figure that applies to a run, one at a time."""
    base = caption_base(run, scenario)
    model = scenario.model
    n_arms = len(run.results)
    panels = "" if n_arms <= MAX_ARMS_ONE_PANEL else " One panel per arm."

    fig = regimen_figure(scenario)
    note = " Bars shorter than 0.6 % of the axis are drawn at that width." if fig.pkpd_widened else ""
    yield "regimen", fig, (f"Dosing regimen of each arm: infusion bars (length = duration) and bolus ticks, "
                           f"labelled with drug, dose and duration as written in the scenario.{note} {base}.")

    pain = outputs_with_role(model, "pain_score")[:1]   # the daily-pain figure shows the first pain score
    bands = _band_text(scenario.quantiles)
    for output in scenario.variables:
        if output in pain:
            continue
        unit = _unit(scenario, output)
        label = _label(scenario, output)
        levels = []
        for low, high in scenario.windows.get(output, ()):
            levels.append(f"shaded: window {low:g}-{high:g} {unit}")
        for level in scenario.thresholds.get(output, ()):
            levels.append(f"dashed: {level:g} {unit}")
        level_text = f" ({'; '.join(levels)})" if levels else ""
        for log in (False, True):
            if log and not _log_useful(run, scenario, output):
                continue
            fig = concentration_figure(run, scenario, output, log=log)
            stem = f"{output.lower()}_{'log' if log else 'linear'}"
            floor = (f", log scale from {fig.pkpd_log_floor:.3g} {unit} (1/{1 / LOG_FLOOR_FRACTION:g} of the "
                     f"highest value drawn)" if log else "")
            left_out = [arm for arm in run.results if arm not in _legend_arms(fig, run)]
            omitted = (f" Not drawn: {', '.join(left_out)} ({output} identically 0)." if left_out else "")
            peak = (f" Left: the first {_format_time(fig.pkpd_peak_end)}, where the peak is; right: the whole "
                    f"course." if fig.pkpd_peak_end is not None else "")
            yield stem, fig, (f"{output}, {label}, over time by arm: {bands}{level_text}"
                              f"{floor}.{peak}{_focus_text(fig)}{omitted}{panels} {base}.")

    for output in scenario.variables:
        if not _is_concentration(scenario, output):
            continue
        fig = dose_figure(run, scenario, output)
        if fig is not None:
            yield f"{output.lower()}_per_dose", fig, (
                f"{output}, {_label(scenario, output)}, after each dose of the arms that repeat one (rows), one panel "
                f"per dose (columns; with more than {MAX_DOSES_SHOWN} doses the first {MAX_DOSES_SHOWN - 1} and the "
                f"last): {bands}, over the first {_format_time(fig.pkpd_span)} after the start of each dose, on one "
                f"y axis. {base}.")

    for output in scenario.variables:
        if not _is_concentration(scenario, output):
            continue
        metrics = [m for m in ("cmax", "auc") if ((run.exposure["output"] == output)
                                                  & (run.exposure["metric"] == m)).any()]
        if not metrics:
            continue
        fig = exposure_figure(run, scenario, output, metrics)
        n = run.manifest["n"]
        points = " Every subject is drawn as a point." if n <= SMALL_N else ""
        interval = (f" over {_format_time(scenario.interval[0])}-{_format_time(scenario.interval[1])}"
                    if scenario.interval else " over the simulated period")
        baseline = model.outputs[output].baseline
        above = (f" AUC above each subject's baseline ({baseline}): the exposure the doses added to the "
                 f"endogenous level." if baseline and "auc" in metrics else "")
        yield f"exposure_{output.lower()}", fig, (
            f"{output} ({model.outputs[output].title}) exposure by arm: "
            f"{' and '.join(METRIC_LABELS[m] for m in metrics)}{interval}.{above} Boxes: "
            f"quartiles and median; whiskers: 5th-95th percentiles over subjects.{points} {base}.")

    for output in scenario.variables:
        for level in _levels(scenario, output):
            fig = attainment_figure(run, scenario, output, level)
            text = _level_text(level, _unit(scenario, output))
            yield f"attainment_{output.lower()}_{_level_stem(level)}", fig, (
                f"Target attainment: percentage of subjects with {output} ({model.outputs[output].title}) {text} "
                f"at each output time, by arm."
                f"{_focus_text(fig)}{panels} {base}.")

    for output in pain:
        fig = pain_figure(run, scenario, output)
        placebo = next((arm.name for arm in scenario.arms if not arm.regimen.doses), None)
        reference = f" Dashed grey: median of {placebo}, for comparison." if placebo else ""
        yield "pain", fig, (f"Daily pain ({output}, {_unit(scenario, output)}) over time, one panel per arm: "
                            f"{bands}.{reference} {base}.")
    for number, output in enumerate(outputs_with_role(model, "adverse_event_probability")):
        fig = adverse_event_figure(run, scenario, output)
        event = model.outputs[output].event
        yield "adverse_events" + (f"_{output.lower()}" if number else ""), fig, (
            f"{event[:1].upper()}{event[1:]} by arm: expected incidence, the mean over subjects of each subject's "
            f"maximum probability ({output}) over the output times. Error bars: normal 95 % interval of that mean, the "
            f"Monte Carlo uncertainty of simulating {run.manifest['n']} virtual subjects (not the uncertainty of a "
            f"prediction for a patient or a trial). {base}.")

    layout = sweep_layout(scenario)
    if layout is not None and layout.axes()[0] is not None:
        row_key, col_key, facet_keys = layout.axes()
        fixed = ", ".join(f"{k} {v}" for k, v in layout.fixed.items())
        label_of = lambda k: SWEEP_KEY_LABELS[k].lower() if k in SWEEP_KEY_LABELS else k  # parameters: as named
        grid = (f"{label_of(row_key)} (rows)"
                + (f" x {label_of(col_key)} (columns)" if col_key else "")
                + (f", one panel per {', '.join(label_of(k) for k in facet_keys)}"
                   if facet_keys else "") + (f"; fixed: {fixed}" if fixed else ""))
        for output, metric in _sweep_metrics(run, scenario):
            fig = sweep_figure(run, scenario, output, metric)
            _, label = sweep_values(run, scenario, output, metric)
            stem = f"sweep_{output.lower()}_{metric}"
            yield stem, fig, f"Sweep summary: {label} over {grid}. {base}."

    if run.search is not None:
        yield from run.search.figures(f"{base}.")

    if run.power is not None and len(run.power):
        fig = power_figure(run.power)
        replicates = ""
        if "replicates" in run.power:
            counts = sorted(set(int(r) for r in run.power["replicates"]))
            replicates = f" over {'/'.join(str(c) for c in counts)} simulated trials per size"
        info = run.manifest
        endpoint = f" Endpoint: {run.power['endpoint'].iloc[0]}." if "endpoint" in run.power else ""
        alpha = f" at two-sided alpha {run.power['alpha'].iloc[0]:g}" if "alpha" in run.power else ""
        yield "power", fig, (
            f"Trial power{alpha} by comparison against the total number of subjects (x axis), with Monte Carlo "
            f"95 % intervals{replicates}; dotted: 80 % power; "
            + "; ".join(f"{c}: {'n = ' + format(n, 'g') + ' reaches 80 %' if n is not None else '80 % not reached in the grid'}"
                        for c, n in sample_size_for_power(run.power).items())
            + f".{endpoint} Model {info['model']['name']}, "
            f"seed {info['seed']}, pkpd {info['versions'].get('pkpd')}, scenario {info['scenario']['file']}.")

    if getattr(run, "uncertainty", None) is not None or getattr(run, "sensitivity", None) is not None:
        from ._uncertainty_figures import uncertainty_figures

        yield from uncertainty_figures(run, scenario)


def save_figure(fig, folder, stem, caption):
    """Write `stem`.png (300 dpi) and `stem`.svg with the caption in their metadata; close the figure.

    The same figure gives the same bytes on every run: no date in the SVG, and its clip-path
    and glyph ids hashed with a fixed salt instead of a random one.
    """
    folder = Path(folder)
    with plt.rc_context(REPRODUCIBLE):
        fig.savefig(folder / f"{stem}.png", dpi=300, metadata={"Title": stem, "Description": caption,
                                                               "Software": "pkpd"})
        fig.savefig(folder / f"{stem}.svg", metadata={"Title": stem, "Description": caption, "Date": None})
    plt.close(fig)


def write_figures(run: "RunResult", scenario: "Scenario", folder: Path | str) -> list[dict[str, str]]:
    """Write the figure set and ``captions.md`` into `folder`.

    Returns
    -------
    list of dict
        ``{"file": "STEM.png", "caption": ...}`` per figure (an SVG of the same stem sits beside
        each PNG), in the order of ``captions.md``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context(STYLE):
        for stem, fig, caption in figure_set(run, scenario):
            save_figure(fig, folder, stem, caption)
            written.append({"file": f"{stem}.png", "caption": caption})
    lines = ["# Figures", "", "Each figure is written as PNG (300 dpi) and SVG with the same name.", ""]
    lines += [f"- `{item['file']}`: {item['caption']}" for item in written]
    (folder / "captions.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written
