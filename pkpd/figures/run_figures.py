"""The figure set of a run: every figure that applies, with its caption, and writing them to a folder."""

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..metrics import MAX_DOSES_SHOWN
from .attainment import attainment_figure, describe_level, level_stem, levels_of
from .data import is_concentration, output_label, output_unit, outputs_with_role
from .effects import adverse_event_figure, pain_figure
from .exposure import SMALL_N, exposure_figure
from .per_dose import dose_figure
from .power import power_figure, sample_size_for_power
from .regimen import regimen_figure
from .style import MAX_ARMS_ONE_PANEL, METRIC_LABELS, STYLE, band_text, caption_base, format_time, save_figure
from .sweep import SWEEP_KEY_LABELS, sweep_figure, sweep_layout, sweep_metrics, sweep_values
from .time_course import LOG_FLOOR_FRACTION, concentration_figure, log_useful
from .uncertainty import uncertainty_figures

if TYPE_CHECKING:  # study.run loads the figures on demand
    from ..study.run import RunResult
    from ..study.scenario import Scenario


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
    bands = band_text(scenario.quantiles)
    for output in scenario.variables:
        if output in pain:
            continue
        unit = output_unit(scenario, output)
        label = output_label(scenario, output)
        levels = []
        for low, high in scenario.windows.get(output, ()):
            levels.append(f"shaded: window {low:g}-{high:g} {unit}")
        for level in scenario.thresholds.get(output, ()):
            levels.append(f"dashed: {level:g} {unit}")
        level_text = f" ({'; '.join(levels)})" if levels else ""
        for log in (False, True):
            if log and not log_useful(run, scenario, output):
                continue
            fig = concentration_figure(run, scenario, output, log=log)
            stem = f"{output.lower()}_{'log' if log else 'linear'}"
            floor = (f", log scale from {fig.pkpd_log_floor:.3g} {unit} (1/{1 / LOG_FLOOR_FRACTION:g} of the "
                     f"highest value drawn)" if log else "")
            left_out = [arm for arm in run.results if arm not in _legend_arms(fig, run)]
            omitted = (f" Not drawn: {', '.join(left_out)} ({output} identically 0)." if left_out else "")
            peak = (f" Left: the first {format_time(fig.pkpd_peak_end)}, where the peak is; right: the whole "
                    f"course." if fig.pkpd_peak_end is not None else "")
            yield stem, fig, (f"{output}, {label}, over time by arm: {bands}{level_text}"
                              f"{floor}.{peak}{_focus_text(fig)}{omitted}{panels} {base}.")

    for output in scenario.variables:
        if not is_concentration(scenario, output):
            continue
        fig = dose_figure(run, scenario, output)
        if fig is not None:
            yield f"{output.lower()}_per_dose", fig, (
                f"{output}, {output_label(scenario, output)}, after each dose of the arms that repeat one (rows), one "
                f"panel per dose (columns; with more than {MAX_DOSES_SHOWN} doses the first {MAX_DOSES_SHOWN - 1} and "
                f"the last): {bands}, over the first {format_time(fig.pkpd_span)} after the start of each dose, on one "
                f"y axis. {base}.")

    for output in scenario.variables:
        if not is_concentration(scenario, output):
            continue
        metrics = [m for m in ("cmax", "auc") if ((run.exposure["output"] == output)
                                                  & (run.exposure["metric"] == m)).any()]
        if not metrics:
            continue
        fig = exposure_figure(run, scenario, output, metrics)
        n = run.manifest["n"]
        points = " Every subject is drawn as a point." if n <= SMALL_N else ""
        interval = (f" over {format_time(scenario.interval[0])}-{format_time(scenario.interval[1])}"
                    if scenario.interval else " over the simulated period")
        baseline = model.outputs[output].baseline
        above = (f" AUC above each subject's baseline ({baseline}): the exposure the doses added to the "
                 f"endogenous level." if baseline and "auc" in metrics else "")
        yield f"exposure_{output.lower()}", fig, (
            f"{output} ({model.outputs[output].title}) exposure by arm: "
            f"{' and '.join(METRIC_LABELS[m] for m in metrics)}{interval}.{above} Boxes: "
            f"quartiles and median; whiskers: 5th-95th percentiles over subjects.{points} {base}.")

    for output in scenario.variables:
        for level in levels_of(scenario, output):
            fig = attainment_figure(run, scenario, output, level)
            text = describe_level(level, output_unit(scenario, output))
            yield f"attainment_{output.lower()}_{level_stem(level)}", fig, (
                f"Target attainment: percentage of subjects with {output} ({model.outputs[output].title}) {text} "
                f"at each output time, by arm."
                f"{_focus_text(fig)}{panels} {base}.")

    for output in pain:
        fig = pain_figure(run, scenario, output)
        placebo = next((arm.name for arm in scenario.arms if not arm.regimen.doses), None)
        reference = f" Dashed grey: median of {placebo}, for comparison." if placebo else ""
        yield "pain", fig, (f"Daily pain ({output}, {output_unit(scenario, output)}) over time, one panel per arm: "
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
        for output, metric in sweep_metrics(run, scenario):
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
        yield from uncertainty_figures(run, scenario)


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


def _legend_arms(fig, run):
    """The arms a time-course figure draws (their median lines carry the arm's name)."""
    return {line.get_label() for ax in fig.axes for line in ax.lines} & set(run.results)


def _focus_text(fig):
    focus = getattr(fig, "pkpd_focus", None)
    if not focus:
        return ""
    start, end, stop, fraction = focus
    return (f" The time axis shows {format_time(start)} to {format_time(end)} of the {format_time(stop - start)} "
            f"simulated; later the curves move by less than {100 * fraction:g} % of their range.")
