"""Scenario files and `pkpd run`: validation with key paths, shipped scenarios, atomic output."""

import dataclasses
import itertools
import json
import signal
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, write_pk1cmt_with_drugs
from pkpd._cli import main
from pkpd.study.run import run_scenario
from pkpd.study.scenario import load_scenario
from pkpd.report import build_report
from pkpd.report._browser import find_browser

pytestmark = pytest.mark.models("pk1cmt", "ketamine_mg_pain", "magnesium_lu2002")

SCENARIOS = ROOT / "scenarios"
SHIPPED = sorted(p.name for p in SCENARIOS.glob("*.toml"))


def test_every_shipped_scenario_opens_with_its_question():
    for name in SHIPPED:
        lines = (SCENARIOS / name).read_text().splitlines()
        opening = itertools.takewhile(lambda line: line.startswith("#"), lines)
        assert lines[0].startswith("# ") and "?" in " ".join(opening), name


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_runs_and_its_outputs_make_sense(name, tmp_path):
    scenario = load_scenario(SCENARIOS / name).with_overrides(n=12)
    if scenario.trial is not None:
        pytest.skip("trial scenarios are tested in test_trial.py")
    # keep the test light: fewer output times, same content checks
    scenario = dataclasses.replace(scenario, times=scenario.times[:: max(1, scenario.times.size // 200)])
    outdir = tmp_path / "out"
    run_scenario(scenario, outdir, progress=False)
    names = {p.name for p in outdir.iterdir()}
    assert {"manifest.json", "profiles.csv", "exposure.csv", "summary.csv", "figures"} <= names
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert manifest["n"] == 12 and manifest["seed"] == scenario.seed
    assert manifest["scenario"]["sha256"] == scenario.hash and manifest["model"]["sha256"] == scenario.model.hash
    assert {"numpy", "numba", "pkpd"} <= set(manifest["versions"])
    profiles = pd.read_csv(outdir / "profiles.csv")
    assert list(profiles.columns[:4]) == ["arm", "output", "unit", "TIME (h)"]
    searched = {name for name in profiles["arm"] if name.startswith("search ")}  # a [search] adds its choice
    assert set(profiles["arm"]) - searched == {arm.name for arm in scenario.arms}
    assert len(searched) == (scenario.search is not None)
    assert set(profiles["output"]) == set(scenario.variables)
    quantiles = profiles[[f"P{q:g}" for q in scenario.quantiles]].to_numpy()
    assert np.all(np.diff(quantiles, axis=1) >= -1e-9 * np.abs(quantiles[:, 1:]).clip(1))  # monotone percentiles
    units = dict(zip(profiles["output"], profiles["unit"]))
    for output in scenario.variables:
        assert units[output] == scenario.model.outputs[output].unit
    exposure = pd.read_csv(outdir / "exposure.csv")
    assert list(exposure.columns) == ["arm", "ID", "output", "metric", "value", "unit"]
    assert exposure["unit"].notna().all()
    assert exposure.groupby(["arm", "output", "metric"]).size().eq(12).all()
    summary = pd.read_csv(outdir / "summary.csv")
    assert {"median", "p5", "p95", "unit"} <= set(summary.columns)
    figures = list((outdir / "figures").glob("*.png"))
    assert figures and (outdir / "figures" / "captions.md").is_file()
    # an arm without doses stays at baseline: no drug, magnesium at its endogenous level
    for arm in scenario.arms:
        if not arm.regimen.doses:
            rows = profiles[profiles["arm"] == arm.name]
            for output in ("KETAMINE", "NORKETAMINE"):
                if output in scenario.variables:
                    assert (rows.loc[rows["output"] == output, "P95"] == 0).all()
            if "MAGNESIUM" in scenario.variables:
                baseline = scenario.model.covariates["MG0"].value
                np.testing.assert_allclose(rows.loc[rows["output"] == "MAGNESIUM", "P50"], baseline, rtol=1e-12)
    # the report of the run: HTML and (where Chromium is) PDF, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = build_report(outdir, pdf=find_browser() is not None)
    assert report.html.stat().st_size > 0 and (report.pdf is None or report.pages >= 3)


BASE = """
model = "pk1cmt"
seed = 1
[population]
n = 5
[[arms]]
name = "oral"
doses = [{ drug = "CENT", amount = "10 mg" }]
[outputs]
times = { start = "0 h", stop = "24 h", step = "1 h" }
"""

# (replace this text, by that) -> message fragment naming the key path
VALIDATION = {
    "unknown_key_with_suggestion": (("seed = 1", "seed = 1\nsede = 2"), "sede: unknown key; did you mean 'seed'?"),
    "missing_key": (('times = { start = "0 h", stop = "24 h", step = "1 h" }', 'variables = ["CP"]'),
                    "outputs.times: is required"),
    "wrong_type": (("n = 5", 'n = "five"'), "population.n: must be an integer >= 1; got 'five'"),
    "non_positive_dose": (('amount = "10 mg"', 'amount = "-10 mg"'), "arms[0].doses[0].amount: must be positive"),
    "non_positive_duration": (('amount = "10 mg"', 'amount = "10 mg", duration = "-2 h"'),
                              "arms[0].doses[0].duration: must be positive"),
    "incompatible_units": (('amount = "10 mg"', 'amount = "10 mg", duration = "2 kg"'),
                           "arms[0].doses[0].duration: must be in units compatible with 'h'"),
    "rate_and_duration": (('amount = "10 mg"', 'amount = "10 mg", rate = "5 mg/h", duration = "2 h"'),
                          "arms[0].doses[0]: give an amount with a duration or a rate, not both"),
    "unknown_model": (('model = "pk1cmt"', 'model = "pk1cmtt"'), "model: no library model 'pk1cmtt'; did you mean 'pk1cmt'?"),
    "unknown_output": (('step = "1 h" }', 'step = "1 h" }\nvariables = ["CPP"]'),
                       "outputs.variables[0]: model 'pk1cmt' has no output 'CPP'; did you mean 'CP'?"),
    "unknown_drug": (('drug = "CENT"', 'drug = "CENTRAL"'), "arms[0].doses[0].drug: model 'pk1cmt' has no drug 'CENTRAL'"),
    "unknown_parameter": (("seed = 1", "seed = 1\n[parameters]\nCLL = 2"),
                          "parameters.CLL: model 'pk1cmt' has no parameter 'CLL'; did you mean 'CL'?"),
    "parameter_unit": (("seed = 1", 'seed = 1\n[parameters]\nCL = "2 kg"'),
                       "parameters.CL: must be in units compatible with 'L/h'"),
    "parameter_not_a_number": (("seed = 1", "seed = 1\n[parameters]\nCL = true"),
                               "parameters.CL: must be a number (in 'L/h') or a quantity with a unit; got True"),
    "parameters_not_a_table": (("seed = 1", "seed = 1\nparameters = 3"), "parameters: must be a table"),
    "arm_parameter": (('name = "oral"', 'name = "oral"\nparameters = { VV = 3 }'),
                      "arms[0].parameters.VV: model 'pk1cmt' has no parameter 'VV'; did you mean 'V'?"),
}


@pytest.fixture()
def model_with_drugs(tmp_path):
    return write_pk1cmt_with_drugs(tmp_path)


@pytest.mark.parametrize("case", list(VALIDATION))
def test_validation_error_names_key_path_and_exits_2(case, tmp_path, capsys, model_with_drugs):
    (old, new), message = VALIDATION[case]
    text = BASE.replace('model = "pk1cmt"', 'model = "pk1cmt.toml"') if case != "unknown_model" else BASE
    assert old in text or case == "unknown_model"
    text = text.replace(old, new)
    path = tmp_path / "study.toml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: study.toml: ") and message in err, err
    assert err.count("\n") == 1
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_valid_base_scenario_runs(tmp_path, model_with_drugs, capsys):
    path = tmp_path / "study.toml"
    path.write_text(BASE.replace('model = "pk1cmt"', 'model = "pk1cmt.toml"'))
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 2  # exists, no --force
    assert "output folder exists" in capsys.readouterr().err
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--quiet", "--force", "--n", "3", "--seed", "9"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["n"] == 3 and manifest["seed"] == 9


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_partial_output(signum, tmp_path, model_with_drugs, monkeypatch, capsys):
    # the signal arrives at a chosen point, just after the first table is written (no timing):
    # exit 128 + signal number, no OUTDIR, no temporary folder beside it
    path = tmp_path / "study.toml"
    path.write_text(BASE.replace('model = "pk1cmt"', 'model = "pk1cmt.toml"'))
    outdir = tmp_path / "interrupted"
    to_csv = pd.DataFrame.to_csv

    def write_then_signal(frame, *args, **kwargs):
        to_csv(frame, *args, **kwargs)
        signal.raise_signal(signum)

    def unhandled(number, frame):  # should pkpd not handle SIGTERM, fail rather than end pytest
        raise AssertionError("the signal reached the default handler")

    monkeypatch.setattr(pd.DataFrame, "to_csv", write_then_signal)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert main(["run", str(path), "-o", str(outdir), "--quiet"]) == 128 + signum
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err == f"interrupted ({signal.Signals(signum).name}); no output written\n"
    assert not outdir.exists()
    assert not list(tmp_path.glob(".interrupted*"))


def test_scenario_and_arm_parameters_change_the_model_without_recompiling(tmp_path, model_with_drugs, capsys):
    # [parameters] sets CL for the whole scenario (3000 mL/h = 3 L/h); the second arm also
    # sets V (40 L). A 10-mg bolus then follows the closed form 10/V exp(-CL/V t).
    text = BASE.replace('model = "pk1cmt"', 'model = "pk1cmt.toml"').replace(
        "seed = 1", 'seed = 1\n[parameters]\nCL = "3000 mL/h"') + """
[[arms]]
name = "large volume"
parameters = { V = 40 }
doses = [{ drug = "CENT", amount = "10 mg" }]
"""
    # the second [[arms]] must come before [outputs] in TOML: move the outputs table last
    head, outputs = text.split("[outputs]\n", 1)
    outputs, extra_arm = outputs.split("\n[[arms]]", 1)
    path = tmp_path / "study.toml"
    path.write_text(head + "[[arms]]" + extra_arm + "[outputs]\n" + outputs + "\n")
    scenario = load_scenario(path)
    assert scenario.model.parameters["CL"].value == pytest.approx(3.0)
    assert scenario.model.parameters["CL"].reliability == "override"
    assert scenario.arms[0].model is None and scenario.arms[1].parameters == {"V": 40.0}
    assert scenario.arms[1].model.parameters["CL"].value == pytest.approx(3.0)
    from pkpd.model import generated_location
    assert generated_location(scenario.arms[1].model)[1] == generated_location(scenario.model)[1]  # one module

    run = run_scenario(scenario)
    times = scenario.times
    for arm, volume in (("oral", 20.0), ("large volume", 40.0)):
        cp = run.results[arm].values[:, :, list(scenario.model.outputs).index("CP")]
        np.testing.assert_allclose(cp, np.broadcast_to(10.0 / volume * np.exp(-3.0 / volume * times), cp.shape),
                                   rtol=1e-12)
    arms = run.manifest["arms"]
    assert "parameters" not in arms[0] and arms[1]["parameters"] == {"V": 40.0} and arms[1]["method"] == "exact"
    assert run.manifest["model"]["parameters"]["CL"]["value"] == pytest.approx(3.0)

    # --set acts as if added to [parameters] and reaches every arm; a name an arm sets itself is refused
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out), "--no-figures", "--set", "CL=6"]) == 0
    assert "arm 'large volume': V = 40 (exact)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["parameters"]["CL"]["value"] == 6.0
    profiles = pd.read_csv(out / "profiles.csv")
    at_10 = profiles[(profiles["TIME (h)"] == 10.0) & (profiles["output"] == "CP")].set_index("arm")["P50"]
    assert at_10["oral"] == pytest.approx(10 / 20 * np.exp(-6 / 20 * 10), rel=1e-5)
    assert at_10["large volume"] == pytest.approx(10 / 40 * np.exp(-6 / 40 * 10), rel=1e-5)
    assert main(["run", str(path), "-o", str(out), "--force", "--set", "V=30 L"]) == 2
    assert "--set: parameters.V: arm 'large volume' sets V itself" in capsys.readouterr().err


@pytest.mark.parametrize("setting, message", [("CL", "--set must be NAME=VALUE"),
                                              ("CLX=2", "--set: parameters.CLX: model 'pk1cmt' has no parameter 'CLX'"),
                                              ("CL=fast", "--set: parameters.CL:")])
def test_bad_set_option_is_one_line_and_exits_2(setting, message, tmp_path, model_with_drugs, capsys):
    path = tmp_path / "study.toml"
    path.write_text(BASE.replace('model = "pk1cmt"', 'model = "pk1cmt.toml"'))
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_sweep_over_parameters_and_doses_makes_one_arm_per_combination(tmp_path, model_with_drugs):
    text = """
model = "pk1cmt.toml"
seed = 1
[population]
n = 3
[sweep]
drug = "CENT"
amount = ["10 mg", "20 mg"]
parameters = { CL = [1.0, "2000 mL/h"] }
name = "{amount}, CL {CL}"
[outputs]
times = { start = "0 h", stop = "24 h", step = "1 h" }
"""
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    scenario = load_scenario(path)
    assert [arm.name for arm in scenario.arms] == ["10 mg, CL 1.0", "10 mg, CL 2000 mL/h",
                                                   "20 mg, CL 1.0", "20 mg, CL 2000 mL/h"]
    run = run_scenario(scenario)
    for arm in scenario.arms:
        dose = arm.regimen.doses[0].amount
        clearance = arm.parameters["CL"]
        cp = run.results[arm.name].values[0, :, 0]
        np.testing.assert_allclose(cp, dose / 20.0 * np.exp(-clearance / 20.0 * scenario.times), rtol=1e-12)
    assert {arm.parameters["CL"] for arm in scenario.arms} == {1.0, 2.0}
    path.write_text(text.replace('drug = "CENT"\n', ""))
    with pytest.raises(Exception, match=r"sweep.drug: is required when dose keys are swept"):
        load_scenario(path)
    path.write_text(text.replace('name = "{amount}, CL {CL}"', 'name = "CL {CL:.1f}"'))
    with pytest.raises(Exception, match=r"sweep.name: cannot format 'CL \{CL:.1f\}' with amount=10 mg, "
                                         r"CL=2000 mL/h \(Unknown format code"):
        load_scenario(path)
    path.write_text(text)
    from pkpd._errors import PkpdError
    with pytest.raises(PkpdError, match=r"--set: parameters.CL: arm '10 mg, CL 1.0' sets CL itself"):
        load_scenario(path).with_overrides(parameters={"CL": 5.0})
    path.write_text(text.replace("CL = [", "CLX = ["))
    with pytest.raises(Exception, match=r"sweep.parameters.CLX: model 'pk1cmt' has no parameter 'CLX'; did you mean 'CL'"):
        load_scenario(path)
