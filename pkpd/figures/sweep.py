"""A ``[sweep]``: how its arms map to its grid, and heat maps of a summary metric over that grid."""

import itertools
from dataclasses import dataclass

import matplotlib
import numpy as np

from .._errors import PkpdError
from .data import is_concentration, output_unit, outputs_with_role
from .effects import adverse_event_incidence
from .style import COLUMN_WIDTH_IN, METRIC_LABELS, PAGE_WIDTH_IN, new_figure, pretty_unit, styled

SWEPT_KEYS = ("amount", "duration", "rate", "every", "count", "until", "start")
SWEEP_AXIS_PRIORITY = ("amount", "rate", "duration", "every", "count", "until", "start")
SWEEP_KEY_LABELS = {"amount": "Dose", "duration": "Infusion duration", "rate": "Infusion rate",
                    "every": "Every", "count": "Number of doses", "until": "Until", "start": "Start"}


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
    unit = pretty_unit(rows["unit"].iloc[0])
    concentration_unit = output_unit(scenario, output)
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


@styled
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
    fig = new_figure(width, 1.0 + 0.32 * len(rows) + 0.5)
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


def sweep_metrics(run, scenario):
    """(output, metric) pairs drawn as sweep heat maps: time within each window, AUC of the first
    concentration output, and the incidence of each adverse event the model has."""
    chosen = []
    summary = run.summary
    for output in scenario.variables:
        for low, high in scenario.windows.get(output, ()):
            metric = f"time_within_{low:g}_{high:g}"
            if ((summary["output"] == output) & (summary["metric"] == metric)).any():
                chosen.append((output, metric))
    first = next((o for o in scenario.variables if is_concentration(scenario, o)
                  and ((summary["output"] == o) & (summary["metric"] == "auc")).any()), None)
    if first is not None:
        chosen.append((first, "auc"))
    chosen += [(output, "incidence") for output in outputs_with_role(scenario.model, "adverse_event_probability")]
    return chosen
