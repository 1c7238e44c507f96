"""Figures for protocols: drawn headless with matplotlib, PNG (300 dpi) and SVG.

Colours are the Okabe-Ito palette (safe for colour blindness) with a distinct
line style per arm, so figures survive greyscale printing. Every figure has
labelled axes with units, a legend naming arms as the scenario names them,
and a caption (in the files' metadata and in ``figures/captions.md``) giving
model, n, seed and package version.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5))]
COLUMN_WIDTH_IN = 3.5


def arm_style(index):
    return dict(color=OKABE_ITO[index % len(OKABE_ITO)], linestyle=LINESTYLES[index % len(LINESTYLES)])


def time_axis(times_h):
    """Display times in days when the grid spans more than 3 days."""
    if times_h[-1] - times_h[0] > 72:
        return times_h / 24.0, "Time (d)"
    return times_h, "Time (h)"


def caption_base(run, scenario):
    info = run.manifest
    return (f"model {info['model']['name']}, n = {info['n']} per arm, seed {info['seed']}, "
            f"pkpd {info['versions'].get('pkpd')}")


def _save(fig, folder, stem, caption, written):
    metadata_png = {"Title": stem, "Description": caption, "Software": "pkpd"}
    fig.savefig(folder / f"{stem}.png", dpi=300, metadata=metadata_png)
    fig.savefig(folder / f"{stem}.svg", metadata={"Title": stem, "Description": caption})
    plt.close(fig)
    written.append({"file": f"{stem}.png", "caption": caption})


def concentration_figure(run, scenario, output, log=False):
    """Median and 50 %/90 % bands over subjects of one output, by arm, with levels drawn."""
    model = scenario.model
    unit = model.outputs[output].unit
    profiles = run.profiles[run.profiles["output"] == output]
    time_column = [c for c in profiles.columns if c.startswith("TIME")][0]
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.8), constrained_layout=True)
    for index, arm in enumerate(run.results):
        table = profiles[profiles["arm"] == arm]
        x, xlabel = time_axis(table[time_column].to_numpy())
        style = arm_style(index)
        quantiles = scenario.quantiles
        low90, high90 = f"P{quantiles[0]:g}", f"P{quantiles[-1]:g}"
        if len(quantiles) >= 5:
            low50, high50 = f"P{quantiles[1]:g}", f"P{quantiles[-2]:g}"
            ax.fill_between(x, table[low50], table[high50], color=style["color"], alpha=0.25, linewidth=0,
                            label="_band50")
        ax.fill_between(x, table[low90], table[high90], color=style["color"], alpha=0.12, linewidth=0,
                        label="_band90")
        median = "P50" if "P50" in table else f"P{quantiles[len(quantiles) // 2]:g}"
        ax.plot(x, table[median], label=arm, linewidth=1.2, **style)
    for level in scenario.thresholds.get(output, ()):
        ax.axhline(level, color="0.3", linewidth=0.8, linestyle=(0, (2, 2)))
        ax.annotate(f"{level:g} {unit}", (1.0, level), xycoords=("axes fraction", "data"), fontsize=6,
                    ha="right", va="bottom", color="0.3")
    for low, high in scenario.windows.get(output, ()):
        ax.axhspan(low, high, color="0.85", alpha=0.5, zorder=0, label="_window")
        ax.annotate(f"window {low:g}-{high:g} {unit}", (0.01, high), xycoords=("axes fraction", "data"),
                    fontsize=6, ha="left", va="bottom", color="0.3")
    ax.set_xlabel(xlabel)
    description = model.outputs[output].description or output
    ax.set_ylabel(f"{output} ({unit})")
    ax.set_title(description[:60], fontsize=7)
    if log:
        ax.set_yscale("log")
        positive = run.profiles.loc[run.profiles["output"] == output, f"P{scenario.quantiles[-1]:g}"]
        top = positive.max()
        if np.isfinite(top) and top > 0:
            ax.set_ylim(top * 1e-4, top * 2)
    ax.legend(fontsize=6, frameon=False)
    ax.tick_params(labelsize=7)
    ax.xaxis.label.set_size(8)
    ax.yaxis.label.set_size(8)
    return fig


def write_figures(run, scenario, folder):
    """Write the figure set and captions.md into `folder`; return [{file, caption}]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    base = caption_base(run, scenario)
    for output in scenario.variables:
        unit = scenario.model.outputs[output].unit
        for log in (False, True):
            concentration = "/" in unit  # log scale only for concentrations
            if log and (not concentration or not np.any(run.profiles.loc[run.profiles["output"] == output, "P50"] > 0)):
                continue
            fig = concentration_figure(run, scenario, output, log=log)
            stem = f"{output.lower()}_{'log' if log else 'linear'}"
            caption = (f"{output} ({unit}) over time by arm: median (line), 50 % and 90 % of subjects (bands)"
                       f"{', log scale' if log else ''}. {base}.")
            _save(fig, folder, stem, caption, written)
    lines = ["# Figures", ""] + [f"- `{item['file']}`: {item['caption']}" for item in written]
    (folder / "captions.md").write_text("\n".join(lines) + "\n")
    return written
