"""The structure of a model, drawn from its file: compartments, flows, dosing routes, outputs.

Read off the equations, not written by hand:

- a **flow** Y -> X wherever the equation of X uses the amount in Y (for compartments holding
  drug amounts, a transfer of mass; into a state that holds no mass, such as an effect site, a
  dashed arrow: the state follows Y without taking anything from it);
- **elimination** from X where the mass leaving X does not all arrive in other compartments of
  the same unit: the column sum of the Jacobian, evaluated at the typical parameter values, is
  negative (so a parent fully converted into its metabolite shows no elimination arrow);
- **doses**: each drug's routes (``[drugs]``) into their compartments, with the dose modifiers
  (bioavailability F, lag, modelled rate or duration) of ``[dosing]``;
- **outputs**: the outputs asked for, linked by dotted lines to the compartments they read.

Layout: columns by distance from a dosed compartment along the flows (a depot left of its
central compartment, peripheral and effect compartments right of it), rows in file order.
Drawn with matplotlib, so no other program is needed.
"""

import math
from collections import deque

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ..model.expressions import NotDifferentiable, derivative, names, parse, substitute, to_source

BOX_W, BOX_H = 1.5, 0.5
COLUMN_STEP, ROW_STEP = 2.3, 0.85
MASS, STATE, OUTPUT, DOSE = "#0072B2", "#009E73", "#CC79A7", "#D55E00"


def model_graph(model, outputs=None):
    """Compartments, flows, eliminations, doses and outputs of a model, read off its equations.

    Parameters
    ----------
    model : Model
    outputs : list of str, optional
        Outputs to show (default: every output).

    Returns
    -------
    dict
        ``flows`` [(from, to, "mass" or "signal")], ``eliminated`` [compartment],
        ``doses`` [(label, compartment)], ``outputs`` [(name, [compartments read])],
        ``mass`` {compartment: bool}.
    """
    compartments = list(model.compartments)
    trees = {name: _tree(model, text) for name, text in model.odes.items()}
    units = model.compartment_units
    amount_units = {drug.get("unit") for drug in model.drugs.values()} | {model.units.get("amount", "mg")}
    mass = {c: units.get(c, model.units.get("amount", "mg")) in amount_units for c in compartments}
    flows = []
    for target in compartments:
        for source in compartments:
            if source != target and source in names(trees[target]):
                flows.append((source, target, "mass" if mass[source] and mass[target] else "signal"))
    values = _typical_values(model)
    eliminated = [c for c in compartments if mass[c] and _loses_mass(c, compartments, trees, units, mass, values)]
    drugs_by_route = {}
    for drug, spec in model.drugs.items():
        for route, compartment in (spec.get("routes") or {"": spec.get("compartment")}).items():
            if compartment in compartments:
                drugs_by_route.setdefault((route, compartment), []).append(drug)
    doses = []
    for (route, compartment), drugs in drugs_by_route.items():
        modifiers = ", ".join(f"{key} = {value}" for key, value in model.dosing.get(compartment, {}).items())
        doses.append((f"{' / '.join(drugs)} {route}".strip() + (f" ({modifiers})" if modifiers else ""), compartment))
    if not doses:  # no [drugs]: the compartments a data set may dose
        doses = [(f"dose ({c})", c) for c in compartments if c in model.dosing] or [("dose", compartments[0])]
    shown = []
    for name in (outputs or list(model.outputs)):
        read = _compartments_read(model, name, set(compartments))
        shown.append((name, [c for c in compartments if c in read]))
    return {"flows": flows, "eliminated": eliminated, "doses": doses, "outputs": shown, "mass": mass,
            "compartments": compartments}


def _tree(model, text):
    allowed = set(model.compartments) | set(model.parameters) | set(model.covariates) | set(model.derived) \
        | set(model.outputs) | {"t", "T", "TIME"}
    return parse(text, allowed)


def _compartments_read(model, output, compartments, seen=None):
    """Compartments an output's expression reads, directly or through other outputs."""
    seen = seen or set()
    used = names(_tree(model, model.outputs[output].expression))
    read = used & compartments
    for other in used & set(model.outputs) - seen:
        read |= _compartments_read(model, other, compartments, seen | {output})
    return read


def _typical_values(model):
    """Parameters, covariate defaults and derived parameters at their typical values."""
    values = {name: p.value for name, p in model.parameters.items()}
    values.update({name: c.value for name, c in model.covariates.items()})
    for name, text in model.derived.items():
        values[name] = _evaluate(_tree(model, text), values)
    return values


def _evaluate(tree, values):
    """The number a checked expression gives with every name replaced by its value (nan if one is missing).

    The tree passed the model's whitelist (:func:`pkpd.model.expressions.parse`), and after substitution holds
    only numbers, arithmetic and the whitelisted functions."""
    tree = substitute(tree, values)
    if names(tree):
        return math.nan
    functions = {"math": math, "min": min, "max": max, "abs": abs, "__builtins__": {}}
    try:
        return float(eval(compile(to_source(tree), "<model expression>", "eval"), functions))  # noqa: S307
    except (ArithmeticError, ValueError):
        return math.nan


def _loses_mass(compartment, compartments, trees, units, mass, values):
    """Whether mass leaves `compartment` other than into compartments of the same unit."""
    total = 0.0
    for other in compartments:
        if not mass[other] or units.get(other) != units.get(compartment):
            continue
        try:
            slope = derivative(trees[other], compartment)
        except NotDifferentiable:
            return False
        if slope is not None:
            total += _evaluate(slope, values | {c: 1.0 for c in compartments})
    own = derivative(trees[compartment], compartment)
    scale = abs(_evaluate(own, values | {c: 1.0 for c in compartments})) if own is not None else 0.0
    return bool(np.isfinite(total) and total < -1e-9 * max(scale, 1e-300))


def _columns(graph):
    """Column of each compartment: its distance from a dosed compartment along the flows."""
    column = {}
    queue = deque()
    for _, compartment in graph["doses"]:
        if compartment not in column:
            column[compartment] = 0
            queue.append(compartment)
    while queue:
        node = queue.popleft()
        for source, target, _ in graph["flows"]:
            if source == node and target not in column:
                column[target] = column[node] + 1
                queue.append(target)
    for compartment in graph["compartments"]:
        column.setdefault(compartment, 0)
    return column


def diagram_figure(model, outputs=None):
    """The model's structure as a figure (see the module's docstring for what is drawn).

    Returns
    -------
    matplotlib.figure.Figure
        Compartment boxes are patches with ``gid`` ``compartment|NAME``, flows annotations with
        ``gid`` ``flow|FROM|TO``, doses ``dose|COMPARTMENT``, eliminations ``elimination|NAME``
        and outputs texts with ``gid`` ``output|NAME``.
    """
    graph = model_graph(model, outputs)
    column = _columns(graph)
    rows = {}
    position = {}
    for compartment in graph["compartments"]:
        c = column[compartment]
        rows[c] = rows.get(c, 0) + 1
        position[compartment] = ((c + 1) * COLUMN_STEP, -(rows[c] - 1) * ROW_STEP)
    n_rows = max(rows.values())
    n_columns = max(column.values()) + 1
    output_x = (n_columns + 1) * COLUMN_STEP + 0.4
    width = 1.6 + (n_columns + 1.6) * 1.55
    height = 0.6 + max(n_rows, len(graph["outputs"]) * 0.75) * 0.62
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    for compartment, (x, y) in position.items():
        kind = MASS if graph["mass"][compartment] else STATE
        box = FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0.02,rounding_size=0.08",
                             facecolor=kind + "22", edgecolor=kind, linewidth=1.0,
                             linestyle="-" if kind == MASS else "--")
        box.set_gid(f"compartment|{compartment}")
        ax.add_patch(box)
        ax.text(x, y, f"{model.numbers.get(compartment, '')}  {compartment}", ha="center", va="center", fontsize=7)
    for source, target, kind in graph["flows"]:
        back = (target, source, kind) in graph["flows"]
        arrow = ax.annotate("", xy=position[target], xytext=position[source],
                            arrowprops=dict(arrowstyle="-|>", color="0.2" if kind == "mass" else STATE, lw=0.8,
                                            linestyle="-" if kind == "mass" else "--", shrinkA=14, shrinkB=14,
                                            connectionstyle=f"arc3,rad={0.18 if back else 0.08}"))
        arrow.set_gid(f"flow|{source}|{target}")
    for compartment in graph["eliminated"]:
        x, y = position[compartment]
        arrow = ax.annotate("", xy=(x + 0.55, y - ROW_STEP * 0.6), xytext=(x + 0.5, y - BOX_H / 2),
                            arrowprops=dict(arrowstyle="-|>", color="0.2", lw=0.8))
        arrow.set_gid(f"elimination|{compartment}")
    for index, (label, compartment) in enumerate(graph["doses"]):
        x, y = position[compartment]
        offset = 0.22 * (index % 3)
        arrow = ax.annotate(label, xy=(x - BOX_W / 2, y + 0.1 - offset / 2), xytext=(x - BOX_W / 2 - 0.6, y + 0.3 - offset),
                            fontsize=5.5, color=DOSE, ha="right", va="center",
                            arrowprops=dict(arrowstyle="-|>", color=DOSE, lw=0.9, shrinkA=1, shrinkB=1))
        arrow.set_gid(f"dose|{compartment}")
    spacing = max(n_rows - 1, 1) * ROW_STEP / max(len(graph["outputs"]) - 1, 1)
    for index, (name, read) in enumerate(graph["outputs"]):
        y = -index * min(spacing, ROW_STEP)
        text = ax.text(output_x, y, name, fontsize=6.5, color=OUTPUT, ha="left", va="center",
                       bbox=dict(boxstyle="round,pad=0.25", facecolor="white", edgecolor=OUTPUT, linewidth=0.7))
        text.set_gid(f"output|{name}")
        for compartment in read:
            x0, y0 = position[compartment]
            ax.plot([x0 + BOX_W / 2, output_x - 0.05], [y0, y], color=OUTPUT, linewidth=0.5, linestyle=":",
                    gid=f"reads|{compartment}|{name}")
    ax.set_xlim(COLUMN_STEP - BOX_W / 2 - 3.4, output_x + 1.9)
    ax.set_ylim(-(max(n_rows, len(graph["outputs"])) - 1) * ROW_STEP - 0.7, 0.8)
    return fig
