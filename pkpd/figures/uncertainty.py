"""Figures of parameter uncertainty, assurance and sensitivity (the house style of :mod:`pkpd.figures.style`).

- profiles with two bands that say which is which: between-subject variability (5th-95th
  percentile over subjects, nominal parameters) and parameter uncertainty (the interval over
  draws of the median over subjects);
- assurance: power against the number of subjects with its band over parameter draws and the
  assurance curve (mean power over draws), and the distribution of power over draws;
- tornado (one at a time) and Sobol bars (global).

Artists that carry data have labels starting with ``_``: ``_variability|ARM``,
``_uncertainty|ARM``, ``_median|ARM``, ``_assurance|COMPARISON``, ``_power_band|COMPARISON``,
``_tornado_low|PARAMETER``, ``_tornado_high|PARAMETER``, ``_S1|GROUP``, ``_ST|GROUP``.
"""

import numpy as np

from ..study.draws import interval_text
from .data import output_label
from .style import (COLUMN_WIDTH_IN, OKABE_ITO, PAGE_WIDTH_IN, arm_style, caption_base, new_figure, styled,
                    time_scale)

MAX_PANELS = 6
VARIABILITY_COLOR = "0.8"


@styled
def uncertainty_profile_figure(run, scenario, output):
    """`output` over time, one panel per arm (up to 6): variability and uncertainty bands, nominal median."""
    result = run.uncertainty
    arms = [a.name for a in scenario.arms][:MAX_PANELS]
    columns = min(3, len(arms))
    rows = -(-len(arms) // columns)
    fig = new_figure(PAGE_WIDTH_IN if columns > 1 else COLUMN_WIDTH_IN, 1.9 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)).ravel()
    times = result.times
    factor, time_label = time_scale(float(times[-1] - times[0]), scenario.model.units.get("time", "h"))
    low, high = result.bounds
    median_index = list(result.quantiles).index(50) if 50 in result.quantiles else len(result.quantiles) // 2
    for index, (ax, arm) in enumerate(zip(axes, arms)):
        nominal = run.results[arm].output(output)
        between = np.percentile(nominal, [5, 50, 95], axis=0)
        over = np.percentile(result.percentiles[(arm, output)][:, median_index, :], [low, high], axis=0)
        color = arm_style(index)["color"]
        x = times * factor
        ax.fill_between(x, between[0], between[2], color=VARIABILITY_COLOR, linewidth=0, label=f"_variability|{arm}")
        ax.fill_between(x, over[0], over[1], color=color, alpha=0.45, linewidth=0, label=f"_uncertainty|{arm}")
        ax.plot(x, between[1], color=color, linewidth=1.0, label=f"_median|{arm}")
        ax.set_title(arm, fontsize=6.5)
    for ax in axes[len(arms):]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * columns:]:
        ax.set_xlabel(time_label)
    fig.supylabel(output_label(scenario, output))
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    handles = [Patch(color=VARIABILITY_COLOR, label="between subjects: 5th-95th percentile (nominal parameters)"),
               Patch(color=OKABE_ITO[0], alpha=0.45, label=f"parameter uncertainty of the median: {interval_text(result.level)}"),
               Line2D([], [], color=OKABE_ITO[0], label="median over subjects (nominal parameters)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=1)
    return fig


@styled
def assurance_figure(result, power=None, target=0.8):
    """Left: power against the total number of subjects, per comparison: the interval of power over draws
    (band), its median (dashed), the assurance (mean over draws, solid) and, when given, the power at the
    nominal parameters (points with Monte Carlo 95 % intervals). Right: the distribution of power over
    draws (empirical CDF) at each sample size of the first comparison."""
    table = result.assurance()
    fig = new_figure(PAGE_WIDTH_IN, 2.9)
    left, right = fig.subplots(1, 2)
    comparisons = list(dict.fromkeys(table["comparison"]))
    for index, comparison in enumerate(comparisons):
        rows = table[table["comparison"] == comparison].sort_values("n_total")
        n = rows["n_total"].to_numpy(float)
        style = arm_style(index)
        left.fill_between(n, 100 * rows["power_low"], 100 * rows["power_high"], color=style["color"], alpha=0.2,
                          linewidth=0, label=f"_power_band|{comparison}")
        left.plot(n, 100 * rows["power_median"], color=style["color"], linestyle="--", linewidth=0.8,
                  label=f"_power_median|{comparison}")
        left.plot(n, 100 * rows["assurance"], color=style["color"], marker=style["marker"], markersize=3,
                  label=f"assurance: {comparison}")
        if power is not None:
            nominal = power[power["comparison"] == comparison].sort_values("n_total")
            y = 100 * nominal["power"].to_numpy(float)
            left.errorbar(nominal["n_total"].to_numpy(float), y,
                          yerr=[y - 100 * nominal["power_low"].to_numpy(float),
                                100 * nominal["power_high"].to_numpy(float) - y],
                          color=style["color"], linestyle="none", marker="x", markersize=3, capsize=1.5,
                          elinewidth=0.6, label=f"_nominal|{comparison}")
    left.axhline(100 * target, color="0.3", linewidth=0.7, linestyle=(0, (1, 2)))
    left.set_ylim(0, 102)
    left.set_xlabel("Number of subjects (total)")
    left.set_ylabel("Power (%)")
    left.set_title("band: power over parameter draws; solid: assurance", fontsize=6.5)
    first = result.power[result.power["comparison"] == comparisons[0]]
    for index, (n, rows) in enumerate(first.groupby("n_total")):
        values = np.sort(100 * rows["power"].to_numpy(float))
        right.step(values, np.arange(1, values.size + 1) / values.size, where="post", color=arm_style(index)["color"],
                   linestyle=arm_style(index)["linestyle"], label=f"n = {n}")
    right.axvline(100 * target, color="0.3", linewidth=0.7, linestyle=(0, (1, 2)))
    right.set_xlim(0, 100)
    right.set_xlabel("Power (%)")
    right.set_ylabel("Fraction of parameter draws")
    right.set_title("distribution of power over draws (first comparison)", fontsize=6.5)
    sizes = np.unique(table["n_total"].to_numpy(float))
    if sizes.size <= 10:
        left.set_xticks(sizes, [f"{v:g}" for v in sizes])
    right.legend(loc="lower right")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=1)
    return fig


@styled
def tornado_figure(rows, metric, where):
    """One metric in one place: a bar per parameter from the nominal value to the value at each end."""
    rows = rows.sort_values("swing", ascending=True)
    fig = new_figure(COLUMN_WIDTH_IN, 0.9 + 0.2 * len(rows))
    ax = fig.add_subplot()
    nominal = float(rows["nominal"].iloc[0])
    y = np.arange(len(rows))
    for position, row in zip(y, rows.itertuples()):
        ax.barh(position, row.at_low - nominal, left=nominal, color=OKABE_ITO[0], height=0.6,
                label=f"_tornado_low|{row.parameter}")
        ax.barh(position, row.at_high - nominal, left=nominal, color=OKABE_ITO[1], height=0.6,
                label=f"_tornado_high|{row.parameter}")
    ax.set_yticks(y, [f"{r.parameter} [{r.parameter_low:.3g}, {r.parameter_high:.3g}]" for r in rows.itertuples()])
    ax.axvline(nominal, color="0.2", linewidth=0.7)
    ax.set_xlabel(f"{metric} ({where})")
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=OKABE_ITO[0], label="parameter at its low end"),
                        Patch(color=OKABE_ITO[1], label="parameter at its high end")],
               loc="outside lower center", ncols=2)
    return fig


@styled
def sobol_figure(table):
    """First-order and total Sobol indices with their bootstrap intervals, one pair of bars per group."""
    table = table.sort_values("ST", ascending=False)
    fig = new_figure(COLUMN_WIDTH_IN, 2.6)
    ax = fig.add_subplot()
    x = np.arange(len(table))
    for offset, index, color in ((-0.2, "S1", OKABE_ITO[0]), (0.2, "ST", OKABE_ITO[1])):
        for position, row in zip(x, table.itertuples()):
            ax.bar(position + offset, getattr(row, index), width=0.38, color=color,
                   yerr=getattr(row, f"{index}_conf"), capsize=1.5, error_kw={"elinewidth": 0.6},
                   label=f"_{index}|{row.group}")
    ax.set_xticks(x, table["group"], rotation=60, ha="right")
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.set_ylabel("Sobol index")
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=OKABE_ITO[0], label="first order (S1)"),
                        Patch(color=OKABE_ITO[1], label="total (ST)")], loc="outside lower center", ncols=2)
    return fig


def uncertainty_figures(run, scenario):
    """Yield (stem, figure, caption) of the uncertainty, assurance and sensitivity figures of a run."""
    base = caption_base(run, scenario)
    result = run.uncertainty
    if result is not None:
        draws = f"{len(result.draws)} parameter draws ({', '.join(result.draws.columns)}), seed {result.seed}"
        for output in scenario.variables:
            if not any(key[1] == output for key in result.percentiles):
                continue
            fig = uncertainty_profile_figure(run, scenario, output)
            yield f"uncertainty_{output.lower()}", fig, (
                f"{output}, {output_label(scenario, output)}, by arm, with two bands: grey, between-subject "
                f"variability (5th-95th percentile over subjects at the nominal parameters); coloured, parameter "
                f"uncertainty of the median over subjects ({interval_text(result.level)}); line, the nominal median. "
                f"{draws}, every draw on the same virtual subjects. {base}.")
        if result.power is not None:
            fig = assurance_figure(result, run.power)
            yield "assurance", fig, (
                f"Assurance: power against the total number of subjects over {draws}. Left: band, "
                f"{interval_text(result.level)} of power; dashed, its median; solid, the assurance (mean power over "
                f"draws); crosses, the power at the nominal parameters with Monte Carlo 95 % intervals; dotted, "
                f"80 %. Right: distribution of power over draws for the first comparison. {base}.")
    if run.sensitivity is not None:
        local, sobol = run.sensitivity
        for (metric, where), rows in local.groupby(["metric", "where"], sort=False):
            if not rows["swing"].gt(0).any():
                continue
            fig = tornado_figure(rows, metric, where)
            stem = f"tornado_{metric.replace(' ', '_').lower()}_{_slug(where)}"
            yield stem, fig, (
                f"Tornado of {metric} ({where}): each parameter alone at the low (blue) and high (orange) end of its "
                f"uncertainty (a range's ends, else its 2.5 % and 97.5 % quantiles), the others at their values; "
                f"vertical line: all parameters at their values. {base}.")
        if sobol is not None:
            fig = sobol_figure(sobol)
            yield f"sobol_{sobol['metric'].iloc[0].replace(' ', '_').lower()}", fig, (
                f"Sobol indices of {sobol['metric'].iloc[0]} ({sobol['where'].iloc[0]}): first order (S1) and total "
                f"(ST) with 95 % bootstrap intervals, {sobol.attrs.get('evaluations', '')} model evaluations "
                f"(SALib). {base}.")


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:40]
