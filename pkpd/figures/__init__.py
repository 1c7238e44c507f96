"""Figures for protocols: drawn headless with matplotlib, PNG (300 dpi) and SVG.

Every figure is built by a function that returns a :class:`matplotlib.figure.Figure`
(so it can be inspected, restyled or saved elsewhere) and :func:`write_figures`
saves the set that applies to a run. One module per figure family:

==============================  ===============  ==========================================================
function                        module           figure
==============================  ===============  ==========================================================
:func:`concentration_figure`    ``time_course``  median and 50 %/90 % bands of an output by arm, levels drawn
:func:`regimen_figure`          ``regimen``      dosing timeline of each arm (infusion bars, bolus ticks)
:func:`dose_figure`             ``per_dose``     an output after each dose of a repeated regimen, a panel per dose
:func:`exposure_figure`         ``exposure``     Cmax and AUC by arm (box plots, points for small n)
:func:`attainment_figure`       ``attainment``   % of subjects within a window / above a threshold over time
:func:`pain_figure`             ``effects``      daily pain (NRS) by arm, median and bands
:func:`adverse_event_figure`    ``effects``      expected adverse-event incidence by arm (bar chart)
:func:`sweep_figure`            ``sweep``        heat map of a summary metric over a [sweep] grid
:func:`power_figure`            ``power``        trial power against the number of subjects
:func:`search_figure`,          ``search``       a regimen search (``SearchResult.figures``): the objective over
:func:`tradeoff_figure`                          two variables, feasible region; attainment against adverse events
:func:`uncertainty_figures`     ``uncertainty``  parameter-uncertainty bands, assurance, tornado and Sobol bars
==============================  ===============  ==========================================================

The house style (colours, sizes, rcParams, time axes, captions, saving) is in ``style``, what
the figures read of a run (profiles, output labels and roles) in ``data``, the layout shared by
the time courses in ``panels``; ``run_figures`` holds :func:`figure_set` and :func:`write_figures`.

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

import matplotlib

matplotlib.use("Agg")   # headless, before any module of the package loads pyplot

from .attainment import attainment_figure, attainment_percent  # noqa: E402
from .data import outputs_with_role  # noqa: E402
from .effects import adverse_event_figure, adverse_event_incidence, pain_figure  # noqa: E402
from .exposure import exposure_figure  # noqa: E402
from .per_dose import dose_figure  # noqa: E402
from .power import power_figure, sample_size_for_power  # noqa: E402
from .regimen import regimen_figure, regimen_labels  # noqa: E402
from .run_figures import figure_set, write_figures  # noqa: E402
from .search import search_caption, search_figure, tradeoff_caption, tradeoff_figure  # noqa: E402
from .style import REPRODUCIBLE, STYLE, arm_style, caption_base, save_figure  # noqa: E402
from .sweep import SweepLayout, sweep_figure, sweep_layout, sweep_values  # noqa: E402
from .time_course import concentration_figure  # noqa: E402
from .uncertainty import (assurance_figure, sobol_figure, tornado_figure, uncertainty_figures,  # noqa: E402
                          uncertainty_profile_figure)

__all__ = ["figure_set", "write_figures", "save_figure", "STYLE", "REPRODUCIBLE", "arm_style", "caption_base",
           "concentration_figure", "regimen_figure", "regimen_labels", "dose_figure", "exposure_figure",
           "attainment_figure", "attainment_percent", "pain_figure", "adverse_event_figure", "adverse_event_incidence",
           "outputs_with_role", "SweepLayout", "sweep_layout", "sweep_values", "sweep_figure", "power_figure",
           "sample_size_for_power", "search_figure", "search_caption", "tradeoff_figure", "tradeoff_caption",
           "uncertainty_profile_figure", "assurance_figure", "tornado_figure", "sobol_figure", "uncertainty_figures"]
