"""Effects: daily pain by arm, and the expected incidence of each adverse event."""

import matplotlib.colors
import numpy as np
import pandas as pd

from .data import first_with_role, output_unit
from .panels import box_look
from .style import COLUMN_WIDTH_IN, MAX_ARMS_ONE_PANEL, new_figure, styled
from .time_course import concentration_figure


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
    output = output or first_with_role(scenario.model, "pain_score")
    unit = output_unit(scenario, output)
    placebo = next((arm.name for arm in scenario.arms if not arm.regimen.doses and arm.name in run.results), None)
    return concentration_figure(run, scenario, output, focus=False, ylabel=f"Daily pain ({unit})",
                                ylim=(0, 10) if "0-10" in unit else None, draw_levels=False,
                                panels="stacked" if len(run.results) <= MAX_ARMS_ONE_PANEL else "grid",
                                reference=placebo)


@styled
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
    output = output or first_with_role(scenario.model, "adverse_event_probability")
    table = adverse_event_incidence(run, output)
    arms = list(run.results)
    fig = new_figure(COLUMN_WIDTH_IN, 0.8 + 0.22 * len(arms))
    ax = fig.add_subplot()
    positions = np.arange(len(arms))[::-1].astype(float)
    top = max(float(table["high"].max()), 1.0)
    for index, arm in enumerate(arms):
        style, hatch = box_look(index, len(arms))
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
        output = first_with_role(next(iter(run.results.values())).model, "adverse_event_probability")
    rows = {}
    for arm, result in run.results.items():
        peak = result.output(output).max(axis=1)
        mean = float(np.mean(peak))
        half = 1.96 * float(np.std(peak, ddof=1)) / np.sqrt(peak.size) if peak.size > 1 else 0.0
        rows[arm] = {"incidence": 100 * mean, "low": 100 * max(mean - half, 0.0), "high": 100 * min(mean + half, 1.0)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("arm")
