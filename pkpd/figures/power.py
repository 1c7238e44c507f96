"""Trial power against the number of subjects, and the smallest size that reaches a target."""

import matplotlib.transforms
import numpy as np

from .._errors import PkpdError
from .style import COLUMN_WIDTH_IN, arm_style, new_figure, styled

POWER_COLUMNS = ["comparison", "n_total", "power", "power_low", "power_high", "mean_estimate", "sd_estimate",
                 "replicates"]


@styled
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
    fig = new_figure(COLUMN_WIDTH_IN, 2.5 + 0.14 * len(comparisons))
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
