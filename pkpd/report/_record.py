"""What a run keeps for its report: copies of its inputs and the population's covariates.

``pkpd report OUTDIR`` reads nothing but OUTDIR, so a run writes there, beside its tables:

- ``inputs/``: the scenario file and every model file it used, as they were read (their
  SHA-256 is in ``manifest.json``), so the report shows the question the scenario asks and
  the model's structure, and anyone can run the scenario again from the folder;
- ``population.csv``: one row per covariate: its distribution as given (or "table" for
  resampled patients), unit and source, and the median and 5th-95th percentiles drawn.

The manifest's ``report_inputs`` names these files; a folder without it was written by an
older pkpd, and the report says so (rather than guessing the inputs).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from .._output import write_csv

INPUTS = "inputs"
POPULATION = "population.csv"
POPULATION_COLUMNS = ["covariate", "unit", "distribution", "median", "p5", "p95", "min", "max", "source"]


def write_report_inputs(run, scenario, folder):
    """Write ``inputs/`` and ``population.csv`` into a run's (temporary) `folder`.

    Parameters
    ----------
    run : RunResult
    scenario : Scenario
    folder : Path

    Returns
    -------
    dict
        ``{"report_inputs": {"scenario": ..., "models": {name: file}, "population": ...}}`` for the
        manifest (paths relative to the folder).
    """
    folder = Path(folder)
    (folder / INPUTS).mkdir()
    scenario_file = f"{INPUTS}/{scenario.path.name}"
    (folder / scenario_file).write_text(scenario.text, encoding="utf-8")
    models = {}
    for model in [scenario.model] + [arm.own_model for arm in scenario.arms if arm.own_model is not None]:
        name = f"{INPUTS}/{model.path.name}"
        if name != scenario_file and model.name not in models:
            (folder / name).write_text(_original(model).source_text, encoding="utf-8")
            models[model.name] = name
    write_csv(population_table(run, scenario), folder / POPULATION, float_format="%.6g")
    return {"report_inputs": {"scenario": scenario_file, "models": models, "population": POPULATION}}


def _original(model):
    """The model as its file was written (a model specialised by folding constants keeps its origin)."""
    while model.unfolded is not None:
        model = model.unfolded
    return model


def population_table(run, scenario):
    """One row per covariate of the simulated subjects: distribution as given, median and 5th-95th
    percentiles of the values drawn (the population drawn again from its seed, and the model's own
    covariates from the first arm: every arm has the same subjects)."""
    spec = scenario.population_spec
    given = spec.get("covariates")
    if given is None and "csv" not in spec:
        from ..population import default_neuropathic_pain_covariates

        given = default_neuropathic_pain_covariates()
    given = given or {}
    drawn = scenario.make_population().covariates.reset_index(drop=True)    # seeded: the run's own subjects
    values = next(iter(run.results.values())).parameters.reset_index(drop=True)
    values = pd.concat([drawn, values[[c for c in values.columns if c not in drawn.columns]]], axis=1)
    rows = []
    for name in _covariate_names(scenario, given, values):
        column = values[name].to_numpy(dtype=float)
        entry = given.get(name) or scenario.model.covariate_distributions.get(name, {})
        declared = scenario.model.covariates.get(name)
        rows.append({"covariate": name, "unit": entry.get("unit", _model_unit(scenario, name)),
                     "distribution": _distribution_text(entry, spec, declared),
                     "median": float(np.median(column)), "p5": float(np.percentile(column, 5)),
                     "p95": float(np.percentile(column, 95)), "min": float(column.min()), "max": float(column.max()),
                     "source": entry.get("source", declared.source if declared is not None else "")})
    return pd.DataFrame(rows, columns=POPULATION_COLUMNS)


def _covariate_names(scenario, given, values):
    """Covariates drawn (in the order given) and the model's covariates, those present in `values`."""
    names = list(given) + [name for name in scenario.model.covariates if name not in given]
    names += [name for name in ("CRCL", "BMI") if name not in names]
    return [name for name in dict.fromkeys(names) if name in values.columns]


def _model_unit(scenario, name):
    covariate = scenario.model.covariates.get(name)
    return covariate.unit if covariate is not None else {"CRCL": "mL/min", "BMI": "kg/m2"}.get(name, "")


def _distribution_text(entry, spec, declared):
    """'lognormal mean 79 sd 19, 40-160' from a covariate's distribution as given."""
    if not entry:
        if "csv" in spec:
            return "resampled from a patient table"
        return f"model default {declared.value:g}" if declared is not None else "derived from the others"
    kind = entry.get("distribution", "")
    shown = [f"{key} {_number_text(entry[key])}" for key in ("mean", "sd", "value", "values", "probabilities")
             if key in entry]
    bounds = f", {entry['min']:g}-{entry['max']:g}" if "min" in entry and "max" in entry else ""
    return f"{' '.join([kind, *shown])}{bounds}".strip()


def _number_text(value):
    """0.2667 for a number, '0, 1' for a list of numbers, the text otherwise."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_number_text(v) for v in value)
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
