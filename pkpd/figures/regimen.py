"""The dosing regimen of each arm as a timeline: infusion bars and bolus ticks, labelled as written."""

import numpy as np

from .style import (COLUMN_WIDTH_IN, HATCHES, MAX_ARMS_ONE_PANEL, OKABE_ITO, format_time, new_figure, styled,
                    time_scale)
from .sweep import sweep_layout


def regimen_labels(scenario):
    """{arm name: [label of each dose]}: the file's own words ("ketamine 0.5 mg/kg over 2 h") when
    available, else built from the Dose objects in model units."""
    raw = _raw_doses(scenario)
    labels = {}
    for arm in scenario.arms:
        doses = arm.regimen.doses
        written = raw.get(arm.name)
        if written is not None and len(written) == len(doses) and all(isinstance(d, dict) for d in written):
            labels[arm.name] = [_raw_dose_label(d) for d in written]
        else:
            labels[arm.name] = [_dose_label(scenario.model, d) for d in doses]
    return labels


@styled
def regimen_figure(scenario):
    """Dosing timeline of each arm: infusion bars (length = duration) and bolus ticks.

    Up to six arms, each arm has its name in bold and one lane per dose instruction, labelled with
    drug, dose and duration as written in the scenario ("ketamine 0.5 mg/kg over 2 h"). With more
    arms (a sweep), each arm is one row named by its y tick label, drugs told apart by a legend.

    Returns
    -------
    matplotlib.figure.Figure
        Each lane's bars are a ``PolyCollection`` labelled ``_dose|ARM|INDEX`` (x data in the
        displayed time unit, see the axis label), boluses a ``Line2D`` labelled
        ``_bolus|ARM|INDEX``. ``fig.pkpd_widened`` is True when some bars were drawn wider than
        their duration to stay visible.
    """
    model = scenario.model
    time_unit = model.units.get("time", "h")
    labels = regimen_labels(scenario)
    arms = scenario.arms
    starts = {arm.name: [d.start_times() for d in arm.regimen.doses] for arm in arms}
    pairs = [(d, t) for arm in arms for d, t in zip(arm.regimen.doses, starts[arm.name]) if t.size]
    first = min([0.0] + [t.min() for _, t in pairs])
    last = max([1.0] + [t.max() + _infusion_duration(d) for d, t in pairs])
    for dose, times in pairs:  # show one interval after a repeated dose's last start, within the grid
        if dose.every:
            last = max(last, min(times.max() + dose.every, float(scenario.times[-1])))
    factor, xlabel = time_scale(last - first, time_unit)
    span = (last - first) * factor
    min_width = 0.006 * span
    drugs = list(model.drugs)
    compact = len(arms) > MAX_ARMS_ONE_PANEL
    n_lanes = sum(max(1, len(arm.regimen.doses)) for arm in arms)
    unit_in = 0.16 if compact else 0.25
    rows = len(arms) * 1.0 if compact else n_lanes * 0.9 + len(arms) * 1.1
    fig = new_figure(COLUMN_WIDTH_IN, 0.75 + unit_in * rows)
    ax = fig.add_subplot()
    widened = False
    drawn_drugs = {}
    y = 0.0
    ticks = []
    for arm in arms:
        doses = arm.regimen.doses
        if compact:
            ticks.append((y, arm.name))
            lane_height = 0.7 / max(1, len(doses))
            lane_y = [y + 0.35 - lane_height * (j + 0.5) for j in range(len(doses))]
        else:
            ax.text(first * factor, y, arm.name, fontweight="bold", fontsize=6.5, va="center", ha="left")
            lane_height = 0.36
            lane_y = [y - 0.95 - 0.9 * j for j in range(len(doses))]
            if not doses:
                ax.text(first * factor, y - 0.75, "no drug", fontsize=6, va="center", ha="left", color="0.35",
                        style="italic")
        for index, (dose, times) in enumerate(zip(doses, starts[arm.name])):
            written = labels[arm.name][index]
            drug = next((name for name in drugs if written.startswith(name + " ")), _drug_of(model, dose))
            colour_index = drugs.index(drug) if drug in drugs else 0
            color = OKABE_ITO[colour_index % len(OKABE_ITO)]
            hatch = HATCHES[colour_index % len(HATCHES)]
            x = times * factor
            center = lane_y[index]
            if _infusion_duration(dose) > 0:
                widths = np.full(x.size, _infusion_duration(dose) * factor)
                widened |= bool(np.any(widths < min_width))
                bars = ax.broken_barh(list(zip(x, np.maximum(widths, min_width))),
                                      (center - lane_height / 2, lane_height),
                                      facecolors=color, edgecolors="black", linewidth=0.5, hatch=hatch,
                                      label=f"_dose|{arm.name}|{index}")
                drawn_drugs.setdefault(drug, bars)
            else:
                marker = ax.plot(x, np.full(x.size, center), linestyle="none", marker="|",
                                 markersize=8 if not compact else 5, markeredgewidth=1.5, color=color,
                                 label=f"_bolus|{arm.name}|{index}")[0]
                drawn_drugs.setdefault(drug, marker)
            if not compact:
                ax.text(x[0] if x.size else first * factor, center + lane_height / 2 + 0.04, written, fontsize=6,
                        va="bottom", ha="left")
        if compact:
            y -= 1.0
        else:
            y -= 0.95 + 0.9 * max(1, len(doses)) - 0.45 + 0.55
    if compact:
        ax.set_yticks([t for t, _ in ticks], [name for _, name in ticks], fontsize=6)
        ax.set_ylim(y + 0.45, 0.55)
        ax.tick_params(axis="y", length=0)
        if drawn_drugs:
            fig.legend(list(drawn_drugs.values()), list(drawn_drugs), loc="outside lower center",
                       ncols=len(drawn_drugs))
    else:
        ax.set_yticks([])
        ax.set_ylim(y + 0.3, 0.45)
    ax.set_xlim(first * factor - 0.02 * span, last * factor + 0.03 * span)
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(xlabel)
    ax.set_title("Dosing regimen by arm", fontsize=7)
    fig.pkpd_widened = widened
    return fig


def _raw_doses(scenario):
    """{arm name: [dose table as written in the file]} where the file's text is available."""
    raw = scenario.raw or {}
    found = {}
    for arm in raw.get("arms", []):
        if isinstance(arm, dict) and "name" in arm:
            found[arm["name"]] = list(arm.get("doses", []))
    layout = sweep_layout(scenario)
    if layout is not None:
        sweep = raw["sweep"]
        parameters = sweep.get("parameters") or {}
        for name, combination in layout.cells:
            dose_keys = {k: v for k, v in combination.items() if k not in parameters}
            doses = []
            if dose_keys:
                doses.append({"drug": sweep["drug"], **dose_keys})
                if "route" in sweep:
                    doses[0]["route"] = sweep["route"]
            found[name] = doses + list(sweep.get("with", []))
    return found


def _raw_dose_label(dose):
    drug = dose.get("drug", "")
    amount, rate, duration = dose.get("amount"), dose.get("rate"), dose.get("duration")
    if rate is not None and amount is None:
        text = f"{drug} {rate}" + (f" for {duration}" if duration else "")
    elif rate is not None:
        text = f"{drug} {amount} at {rate}"
    elif duration:
        text = f"{drug} {amount} over {duration}"
    else:
        text = f"{drug} {amount} bolus"
    if dose.get("every"):
        if dose.get("until"):
            text += f", every {dose['every']} until {dose['until']}"
        elif int(dose.get("count", 1)) > 1:
            text += f", every {dose['every']} ×{dose['count']}"
    if dose.get("route") and dose["route"] != "intravenous":
        text += f" ({dose['route']})"
    return text


def _infusion_duration(dose):
    """Duration of each administration (0 for a bolus); amount / rate for an infusion given by both."""
    if dose.duration:
        return float(dose.duration)
    if dose.rate and dose.amount:
        return float(dose.amount) / float(dose.rate)
    return 0.0


def _drug_of(model, dose):
    for name, drug in model.drugs.items():
        if dose.target == drug.get("compartment") or dose.target in drug.get("routes", {}).values():
            return name
    return dose.target


def _dose_label(model, dose):
    """Label from the Dose object (model units) when the file's text is not available."""
    drug = _drug_of(model, dose)
    unit = model.compartment_units.get(dose.target) or model.units.get("amount", "mg")
    per = "/kg" if dose.per_weight else ""
    if dose.rate is not None and dose.amount is None:
        text = f"{drug} {dose.rate:g} {unit}{per}/h for {format_time(dose.duration)}"
    elif dose.rate is not None:
        text = f"{drug} {dose.amount:g} {unit}{per} at {dose.rate:g} {unit}{per}/h"
    elif dose.duration:
        text = f"{drug} {dose.amount:g} {unit}{per} over {format_time(dose.duration)}"
    else:
        text = f"{drug} {dose.amount:g} {unit}{per} bolus"
    if dose.every and (dose.count > 1 or dose.until is not None):
        repeat = f"until {format_time(dose.until)}" if dose.until is not None else f"×{dose.count}"
        text += f", every {format_time(dose.every)} {repeat}"
    return text
