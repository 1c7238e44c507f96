"""The house style of every figure: colours, sizes, rcParams, time axes, captions, saving.

Colours are the Okabe-Ito palette (safe for colour blindness) and every arm also has its own
line style and marker (:func:`arm_style`), so figures survive greyscale printing. Text is
6.5-7 pt at one column width (3.5 in). Figures are built with :func:`new_figure` (not pyplot,
so that building many keeps no global state) inside :func:`styled` (:data:`STYLE` applied), and
written by :func:`save_figure` as PNG (300 dpi) and SVG, byte for byte the same on every run.
"""

import functools
import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

# Okabe & Ito (2008); yellow last because it is faint on white.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
HATCHES = ["", "////", "....", "xxxx", "\\\\\\\\", "++", "oo", "--"]
COLUMN_WIDTH_IN = 3.5
PAGE_WIDTH_IN = 7.0
MAX_ARMS_ONE_PANEL = 6          # above this, time courses are drawn as one panel per arm
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


def styled(function):
    """Build the figure under the house style (font sizes, spines, SVG text as text)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return function(*args, **kwargs)
    return wrapper


def new_figure(width, height):
    """A constrained-layout Figure of `width` x `height` inches; Figure() (not pyplot.figure) so that
    building many figures keeps no global state."""
    return Figure(figsize=(width, height), layout="constrained")


def time_scale(span, time_unit="h"):
    """(factor from model time, axis label) for a span in model time units."""
    if time_unit == "h" and span > 72:
        return 1.0 / 24.0, "Time (d)"
    return 1.0, f"Time ({time_unit})"


def focus_end(times, curves, fraction):
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


def format_time(value):
    """Hours as short text: 40 min, 2 h, 7 d."""
    if value == 0:
        return "0 h"
    if value < 1:
        return f"{value * 60:.3g} min"
    if value >= 24 and abs(value / 24 - round(value / 24)) < 1e-9:
        return f"{value / 24:g} d"
    return f"{value:.3g} h"


def pretty_unit(unit):
    """A unit for an axis label: "ng/mL*h" -> "ng/mL·h"."""
    return str(unit).replace("*", "·")


def wrapped(label, width=32):
    """An axis label on two lines when it is longer than `width` characters (so that a long label,
    "Probability of psychotomimetic adverse event (solicited)", stays beside its axis)."""
    return "\n".join(textwrap.wrap(label, width)) if len(label) > width else label


def caption_base(run, scenario):
    """Model, n, seed and package version, for every caption."""
    info = run.manifest
    return (f"Model {info['model']['name']}, n = {info['n']} virtual subjects per arm (the same subjects in "
            f"every arm), seed {info['seed']}, pkpd {info['versions'].get('pkpd')}, scenario "
            f"{info['scenario']['file']}")


def band_columns(quantiles):
    """(outer low, outer high, inner low, inner high, median) percentile columns; inner may be None."""
    names = [f"P{q:g}" for q in quantiles]
    median = "P50" if "P50" in names else names[len(names) // 2]
    inner = (names[1], names[-2]) if len(names) >= 5 else (None, None)
    return names[0], names[-1], inner[0], inner[1], median


def band_text(quantiles):
    low, high, inner_low, inner_high, median = band_columns(quantiles)
    median_text = "median" if median == "P50" else f"{median[1:]}th percentile"
    text = f"{median_text} (line)"
    if inner_low:
        text += f", {inner_low[1:]}th-{inner_high[1:]}th percentiles (dark band)"
    if low != median:
        text += f", {low[1:]}th-{high[1:]}th percentiles (light band) over subjects"
    return text


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
