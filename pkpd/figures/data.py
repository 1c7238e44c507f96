"""What the figures read of a run and its model: percentile profiles, output units, labels and roles.

Figures choose outputs by the role the model file declares, never by name, and name them on
their axes by their label (for a concentration its analyte and matrix: "Ketamine, racemic,
arterial plasma (ng/mL)").
"""

import pandas as pd

from .._errors import PkpdError


def profile_table(run, scenario, output):
    """Percentile table of one output (arm, TIME, P..), from run.profiles or computed from the results."""
    profiles = run.profiles
    time_column = next(c for c in profiles.columns if str(c).startswith("TIME"))
    table = profiles[profiles["output"] == output]
    if table.empty:
        frames = []
        for arm, result in run.results.items():
            frame = result.percentiles(scenario.quantiles, outputs=[output])
            frame.insert(0, "arm", arm)
            frames.append(frame.rename(columns={"TIME": time_column}))
        table = pd.concat(frames, ignore_index=True)
    return table, time_column


def output_unit(scenario, output):
    """The output's unit as the model file gives it ("ng/mL")."""
    return scenario.model.outputs[output].unit


def output_label(scenario, output):
    """The output's label ("Ketamine, racemic, arterial plasma (ng/mL)"); where arms of models of their
    own measure it as another analyte or in another matrix, each distinct label, joined by " / "."""
    models = [scenario.model] + [arm.model for arm in getattr(scenario, "arms", ()) if arm.model is not None]
    return " / ".join(dict.fromkeys(model.outputs[output].label for model in models))


def is_concentration(scenario, output):
    """Whether the output's role is ``concentration``."""
    return scenario.model.outputs[output].role == "concentration"


def outputs_with_role(model, role):
    """Names of the model's outputs of `role` (``models/README.md``, "Outputs"), in file order."""
    return [name for name, output in model.outputs.items() if output.role == role]


def first_with_role(model, role):
    names = outputs_with_role(model, role)
    if not names:
        raise PkpdError(f"model {model.name!r} has no output of role {role}")
    return names[0]
