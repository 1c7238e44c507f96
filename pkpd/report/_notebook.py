"""How a :class:`~pkpd.Model` and a :class:`~pkpd.SimulationResult` display in Jupyter: as tables
(``_repr_html_``), built with pandas, whose HTML escapes every text of the model file."""

import html

import numpy as np
import pandas as pd


def model_html(model):
    """A model as HTML: its description, compartments with equations, outputs and parameters with sources."""
    compartments = pd.DataFrame([{"#": model.numbers.get(c, ""), "compartment": c,
                                  "unit": model.compartment_units.get(c, ""), "d/dt": model.odes[c]}
                                 for c in model.compartments])
    outputs = pd.DataFrame([{"output": name, "what": o.label, "role": o.role, "expression": o.expression}
                            for name, o in model.outputs.items()])
    parameters = pd.DataFrame([{"parameter": p.name, "value": p.value, "unit": p.unit, "description": p.description,
                                "source": p.source, "reliability": p.reliability} for p in model.parameters.values()])
    return "".join([f"<p><strong>{html.escape(model.name)}</strong>: {html.escape(model.description)}</p>",
                    compartments.to_html(index=False), outputs.to_html(index=False),
                    parameters.to_html(index=False)])


def result_html(result):
    """A simulation result as HTML: model, subjects and times, then per output its unit and the median
    (5th-95th percentiles) over subjects of its maximum."""
    rows = []
    for index, name in enumerate(result.outputs):
        peaks = result.values[:, :, index].max(axis=1) if result.values.size else np.array([np.nan])
        spec = result.model.outputs[name]
        rows.append({"output": name, "what": spec.label, "unit": spec.unit,
                     "maximum, median (5th-95th)": f"{np.median(peaks):.4g} ({np.percentile(peaks, 5):.4g}-"
                                                   f"{np.percentile(peaks, 95):.4g})"})
    times = result.times
    head = (f"<p>SimulationResult of <strong>{html.escape(result.model.name)}</strong> ({html.escape(result.method)}): "
            f"{result.values.shape[0]} subjects, {times.size} times from {times[0]:g} to {times[-1]:g} "
            f"{html.escape(result.units['TIME'])}, seed {result.seed}</p>")
    return head + pd.DataFrame(rows).to_html(index=False)
