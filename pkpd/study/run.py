"""``pkpd run``: a scenario in, tables, figures and a manifest out (atomically).

Everything is written into a temporary folder beside OUTDIR and renamed at the
end, so an interrupted or failed run leaves no partial OUTDIR and never a
half-written file; an existing OUTDIR is replaced only with ``force``, and only
if pkpd wrote it (:mod:`pkpd._output`).
"""

import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._output import check_output_folder, write_csv, write_folder_atomically
from .scenario import Scenario, check_resources, resolved_doses
from .._simulate import MapExecutor, simulate
from ..report._record import write_report_inputs

if TYPE_CHECKING:  # _run loads _search only for a scenario with a [search] section
    from .search import SearchResult

PACKAGES = ["pkpd", "numpy", "scipy", "numba", "pandas", "matplotlib", "pint", "tqdm"]


@dataclass
class RunResult:
    """What a run produced, in memory (the same content as the files)."""
    profiles: pd.DataFrame
    exposure: pd.DataFrame
    summary: pd.DataFrame
    manifest: dict
    results: dict          # arm name -> SimulationResult
    power: pd.DataFrame | None = None
    search: "SearchResult | None" = None  # of a [search] section
    uncertainty: object = None        # UncertaintyResult of the [uncertainty] draws
    sensitivity: tuple | None = None  # (tornado table, Sobol table or None) of [sensitivity]
    tables: dict = field(default_factory=dict)  # further CSV files: name -> DataFrame


def versions():
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return found


def simulate_arms(scenario, population, progress=True, executor=None):
    """SimulationResult per arm; every arm sees the same virtual subjects (paired).

    `executor` (an object with ``map(fn, *iterables)``) runs the chunks of subjects, if given.
    """
    results = {}
    for arm in scenario.arms:
        model = arm.model or scenario.model  # an arm that sets parameters has a model of its own
        results[arm.name] = simulate(model, arm.regimen, population, scenario.times,
                                     method=scenario.solver["method"], rtol=scenario.solver["rtol"],
                                     atol=scenario.solver["atol"], variability=scenario.variability,
                                     progress=progress, executor=executor)
    return results


def profiles_table(scenario, results):
    """Long format: arm, output, unit, TIME, one column per percentile, then role, analyte, matrix."""
    frames = []
    for arm, result in results.items():
        table = result.percentiles(scenario.quantiles, outputs=scenario.variables)
        table.insert(0, "arm", arm)
        model = scenario.model_of(arm)
        table.insert(2, "unit", table["output"].map(lambda o: model.outputs[o].unit))
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    out = out.rename(columns={"TIME": f"TIME ({scenario.model.units.get('time', 'h')})"})
    return _with_roles(out, scenario)


def exposure_table(scenario, results):
    """Long format: arm, ID, output, metric, value, unit."""
    frames = []
    for arm, result in results.items():
        for output in scenario.variables:
            table = result.exposure(output, interval=scenario.interval,
                                    thresholds=scenario.thresholds.get(output, ()),
                                    windows=scenario.windows.get(output, ()))
            units = table.attrs["units"]
            keep = [c for c in table.columns if c.split("_")[0] in scenario.metrics or c.startswith("time_")]
            long = table[keep].reset_index().melt(id_vars="ID", var_name="metric", value_name="value")
            long["unit"] = long["metric"].map(units)
            long.insert(0, "output", output)
            long.insert(0, "arm", arm)
            frames.append(long)
    return pd.concat(frames, ignore_index=True)[["arm", "ID", "output", "metric", "value", "unit"]]


def summary_table(scenario, exposure, results):
    """Per arm, output and metric: median and 90 % interval over subjects; fractions reaching levels;
    then the output's role, analyte and matrix."""
    grouped = exposure.groupby(["arm", "output", "metric"], sort=False)
    summary = grouped["value"].agg(median="median", p5=lambda v: np.percentile(v, 5),
                                   p95=lambda v: np.percentile(v, 95), mean="mean", n="size").reset_index()
    summary["unit"] = grouped["unit"].first().to_numpy()
    # the AUC of an endogenous substance (an output with a baseline) is taken above the baseline: said here
    summary["level"] = [f"above baseline {scenario.model_of(arm).outputs[output].baseline}"
                        if metric == "auc" and scenario.model_of(arm).outputs[output].baseline else None
                        for arm, output, metric in zip(summary["arm"], summary["output"], summary["metric"])]
    rows = []
    for arm, result in results.items():
        for output in scenario.variables:
            values = result.output(output)
            unit = scenario.model.outputs[output].unit  # one unit in every arm (checked on loading)
            for level in scenario.thresholds.get(output, ()):
                fraction = float(np.mean(values.max(axis=1) >= level))
                rows.append(dict(arm=arm, output=output, metric=f"fraction_reaching_{level:g}",
                                 median=fraction, p5=np.nan, p95=np.nan, mean=fraction,
                                 n=values.shape[0], unit="1", level=f"{level:g} {unit}"))
            for low, high in scenario.windows.get(output, ()):
                inside = (values >= low) & (values <= high)
                entering = float(np.mean(inside.any(axis=1)))
                never_above = float(np.mean(values.max(axis=1) <= high))
                rows.append(dict(arm=arm, output=output, metric=f"fraction_entering_{low:g}_{high:g}",
                                 median=entering, p5=np.nan, p95=np.nan, mean=entering,
                                 n=values.shape[0], unit="1", level=f"[{low:g}, {high:g}] {unit}"))
                rows.append(dict(arm=arm, output=output, metric=f"fraction_never_above_{high:g}",
                                 median=never_above, p5=np.nan, p95=np.nan, mean=never_above,
                                 n=values.shape[0], unit="1", level=f"{high:g} {unit}"))
    if rows:
        summary = pd.concat([summary, pd.DataFrame(rows)], ignore_index=True)
    return _with_roles(summary, scenario)


def _with_roles(table, scenario):
    """`table` with the columns role, analyte and matrix of each row's output, from the row's arm's
    model, appended (analyte and matrix empty for an output that is not a concentration)."""
    models = {arm: scenario.model_of(arm) for arm in table["arm"].unique()}
    specs = [models[arm].outputs[output] for arm, output in zip(table["arm"], table["output"])]
    return table.assign(role=[o.role for o in specs], analyte=[o.analyte for o in specs],
                        matrix=[o.matrix for o in specs])


def manifest(scenario, population, wall_time, results, extra=None):
    model = scenario.model
    methods = {name: _method_text(result) for name, result in results.items()}
    parameters = {name: {"value": p.value, "unit": p.unit, "source": p.source, "reliability": p.reliability}
                  for name, p in model.parameters.items()}
    doses, warnings = resolved_doses(scenario, population)
    return {
        "scenario": {"file": scenario.path.name, "sha256": scenario.hash, "description": scenario.description},
        "model": {"name": model.name, "file": model.path.name, "sha256": model.hash,
                  "method": (methods[scenario.arms[0].name] if len(set(methods.values())) == 1
                             else "per arm (see arms)"),
                  "rtol": scenario.solver["rtol"], "atol": scenario.solver["atol"],
                  "parameters": parameters, "variability": model.variability, "residual": model.residual},
        "seed": scenario.seed,
        "n": int(population.subject_ids.size),
        "variability": scenario.variability,
        "arms": [{"name": arm.name, "doses": [_dose_record(d) | {"resolved": r}
                                              for d, r in zip(arm.regimen.doses, doses[arm.name])],
                  **({"parameters": arm.parameters} if arm.parameters else {}),
                  **({"model": _model_record(arm.own_model)} if arm.own_model is not None else {}),
                  "method": methods[arm.name]}
                 for arm in scenario.arms],
        "times": {"start": float(scenario.times[0]), "stop": float(scenario.times[-1]),
                  "count": int(scenario.times.size), "unit": model.units.get("time", "h")},
        "warnings": warnings,
        "versions": versions(),
        "command": " ".join(["pkpd", *sys.argv[1:]]) if sys.argv and "pkpd" in sys.argv[0] else None,
        "wall_time_s": round(wall_time, 3),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }


def _model_record(model):
    """An arm's own model as the manifest records it: name, file and SHA-256."""
    return {"name": model.name, "file": model.path.name, "sha256": model.hash}


def _method_text(result):
    """The method a SimulationResult used, with the constants folded to get there."""
    folded = result.model.unfolded
    if folded is not None:
        return f"{result.method} ({result.model.source_text[len(folded.source_text):].strip().lstrip('# ')})"
    return result.method


def _dose_record(dose):
    return {"target": dose.target, "amount": dose.amount, "per_weight": dose.per_weight, "start": dose.time,
            "duration": dose.duration, "rate": dose.rate, "every": dose.every, "count": dose.count,
            "until": dose.until}


def check_run(scenario, outdir=None, *, force=False):
    """Everything a run checks before it simulates: the output folder (`outdir`, replaced only
    with `force`) and the memory the run needs. Raises PkpdError."""
    if outdir is not None:
        check_output_folder(outdir, force=force, inputs=_inputs(scenario))
    check_resources(scenario)


def run_scenario(scenario: Scenario, outdir: Path | str | None = None, *, force: bool = False,
                 progress: bool = True, figures: bool = True, executor: MapExecutor | None = None) -> RunResult:
    """Run a scenario; write its outputs to `outdir` if given.

    `executor` (an object with ``map(fn, *iterables)``, e.g. a
    :class:`concurrent.futures.Executor`) runs the chunks of subjects and of trial replicates.

    Returns
    -------
    RunResult
    """
    check_run(scenario, outdir, force=force)
    started = time.perf_counter()
    population = scenario.make_population()
    found = None
    if scenario.search is not None:
        from .search import search_scenario, with_search_arm

        found = search_scenario(scenario, population=population, progress=progress, executor=executor)
        scenario = with_search_arm(scenario, found)  # the chosen regimen is reported as one more arm
    results = simulate_arms(scenario, population, progress=progress, executor=executor)
    profiles = profiles_table(scenario, results)
    exposure = exposure_table(scenario, results)
    summary = summary_table(scenario, exposure, results)
    power = None
    extra = {}
    if scenario.trial is not None:
        from .trial import run_trial_section

        power, extra = run_trial_section(scenario, progress=progress, executor=executor)
    if found is not None:
        extra["search"] = found.manifest_record()
    uncertainty, sensitivity, tables = None, None, {}
    if scenario.uncertainty is not None:
        from .draws import uncertainty_section
        from .trial import trial

        uncertainty, tables, more = uncertainty_section(scenario, population, simulate=simulate, trial=trial,
                                                        executor=executor, progress=progress)
        extra = {**extra, **more}
    if scenario.sensitivity is not None:
        from .sensitivity import sensitivity_section

        sensitivity, more_tables, more = sensitivity_section(scenario, population, executor=executor,
                                                             progress=progress)
        tables, extra = {**tables, **more_tables}, {**extra, **more}
    info = manifest(scenario, population, time.perf_counter() - started, results, extra)
    run = RunResult(profiles=profiles, exposure=exposure, summary=summary, manifest=info, results=results,
                    power=power, search=found, uncertainty=uncertainty, sensitivity=sensitivity, tables=tables)
    if outdir is not None:
        _write_atomically(run, scenario, Path(outdir), force=force, figures=figures)
    return run


def _inputs(scenario):
    """The files a scenario reads (an output folder may never hold one)."""
    files = [scenario.path, scenario.model.path, *(arm.model.path for arm in scenario.arms if arm.model)]
    if "csv" in scenario.population_spec:
        files.append(scenario.population_spec["csv"])
    return files


def _write_atomically(run, scenario, target, *, force, figures):
    """Write the tables, figures and manifest into `target` (see :mod:`pkpd._output`)."""
    def fill(folder):
        write_csv(run.profiles, folder / "profiles.csv", float_format="%.6g")
        write_csv(run.exposure, folder / "exposure.csv", float_format="%.6g")
        write_csv(run.summary, folder / "summary.csv", float_format="%.6g")
        if run.power is not None:
            write_csv(run.power, folder / "power.csv", float_format="%.6g")
        if run.search is not None:
            from .search import recommended_arm_toml

            write_csv(run.search.table, folder / "search.csv", float_format="%.6g")
            arm = recommended_arm_toml(scenario, run.search)
            if arm is not None:
                (folder / "search_arm.toml").write_text(arm, encoding="utf-8")
        for name, table in run.tables.items():
            write_csv(table, folder / f"{name}.csv", float_format="%.6g")
        if figures:
            from ..figures import write_figures

            run.manifest["figures"] = write_figures(run, scenario, folder / "figures")
        run.manifest.update(write_report_inputs(run, scenario, folder))  # what `pkpd report` reads

    write_folder_atomically(target, fill, run.manifest, force=force, inputs=_inputs(scenario),
                            json_default=_json_default)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
