"""Exposure by arm: the distribution over subjects of Cmax, AUC, ... (box plots, points for small n)."""

import matplotlib.colors
import numpy as np

from .._errors import PkpdError
from .panels import box_look
from .style import COLUMN_WIDTH_IN, METRIC_LABELS, format_time, new_figure, pretty_unit, styled, wrapped

SMALL_N = 50                    # exposure box plots show every subject up to this n


@styled
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
    fig = new_figure(COLUMN_WIDTH_IN, 0.45 + len(metrics) * (0.45 + 0.2 * len(arms)))
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
            style, hatch = box_look(index, len(arms))
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
            name = f"AUC {format_time(a)}-{format_time(b)}"
        if metric == "auc" and scenario.model.outputs[output].baseline:   # an endogenous substance
            name += " above baseline"
        ax.set_xlabel(f"{scenario.model.outputs[output].title}: {name} ({pretty_unit(unit)})")
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
            ax.set_xlabel(wrapped(text, max(12, int(len(text) * room / width) - 2)))
