"""Target attainment: the percentage of subjects within a window, or above a threshold, over time."""

from .data import output_unit
from .panels import arm_axes, arm_legend, draw_line, label_panels
from .style import focus_end, styled, time_scale


@styled
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
    unit = output_unit(scenario, output)
    percent = attainment_percent(run, output, level)
    arms = list(run.results)
    times = next(iter(run.results.values())).times
    fig, axes, panels = arm_axes(len(arms), height_single=2.3)
    end = focus_end(times, list(percent.values()), 0.01)
    factor, xlabel = time_scale((end or times[-1]) - times[0], scenario.model.units.get("time", "h"))
    for index, arm in enumerate(arms):
        draw_line(axes[index], times * factor, percent[arm], arm, index, times.size, panels)
    for ax in dict.fromkeys(axes):
        ax.set_ylim(-2, 102)
        if end is not None:
            ax.set_xlim(times[0] * factor, end * factor)
    ylabel = f"Subjects {describe_level(level, unit)} (%)"
    label_panels(axes, panels, xlabel, ylabel, arms)
    if panels == "single":
        axes[0].set_title(scenario.model.outputs[output].title, fontsize=7)
    arm_legend(fig, axes, panels, arms)
    fig.pkpd_focus = (float(times[0]), end, float(times[-1]), 0.01) if end is not None else None
    return fig


def attainment_percent(run, output, level):
    """{arm: % of subjects satisfying `level` at each output time}; level = ("within", low, high) or
    ("above", threshold), in the output's unit."""
    kind, *bounds = level
    return {arm: _attainment_values(result.output(output), kind, bounds) for arm, result in run.results.items()}


def _attainment_values(values, kind, bounds):
    if kind == "within":
        low, high = bounds
        inside = (values >= low) & (values <= high)
    else:
        inside = values >= bounds[0]
    return 100.0 * inside.mean(axis=0)


def levels_of(scenario, output):
    """The scenario's windows and thresholds of `output` as levels: ("within", low, high), ("above", level)."""
    levels = [("within", low, high) for low, high in scenario.windows.get(output, ())]
    levels += [("above", level) for level in scenario.thresholds.get(output, ())]
    return levels


def describe_level(level, unit):
    """A level in words: "within 100-200 ng/mL", "at or above 150 ng/mL"."""
    if level[0] == "within":
        return f"within {level[1]:g}-{level[2]:g} {unit}"
    return f"at or above {level[1]:g} {unit}"


def level_stem(level):
    """A level in a file name: "within_100_200", "above_150"."""
    return "_".join([level[0]] + [f"{v:g}" for v in level[1:]])
