"""Outputs that say what they are: every model output declares its role, a concentration its
analyte and matrix; tables, console lines and figures choose outputs by role and name them by
label, never by a hard-coded output name."""

import dataclasses
from types import SimpleNamespace

import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest

import pkpd
from conftest import ROOT, TEST_MODELS, write_pk1cmt_with_drugs
from pkpd import figures
from pkpd._cli import _summary_lines, main
from pkpd.model import MATRICES, OUTPUT_ROLES, library_models
from pkpd.study.scenario import load_scenario
from pkpd.study.trial_design import designs_of

MODEL = """
[model]
name = "roles"
[compartments]
CENT = { number = 1 }
[parameters]
CL = { value = 1.0, unit = "L/h", description = "clearance", source = "test" }
V = { value = 10.0, unit = "L", description = "volume", source = "test" }
[odes]
CENT = "-CL/V*CENT"
[outputs]
"""
CONCENTRATION = 'CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", matrix = "plasma" }\n'

# output line -> the one-line error naming the key path
REFUSED = {
    "no_role": ('CP = { expr = "CENT/V", unit = "mg/L" }',
                "roles.toml: outputs.CP.role: is required (one of concentration, amount, effect, "
                "adverse_event_probability, pain_score, other)"),
    "short_form_has_no_role": ('CP = "CENT/V"', "roles.toml: outputs.CP.role: is required (one of concentration, "
                               "amount, effect, adverse_event_probability, pain_score, other)"),
    "role_typo": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentraton", analyte = "drug", matrix = "plasma" }',
                  "roles.toml: outputs.CP.role: must be one of concentration, amount, effect, adverse_event_probability, "
                  "pain_score, other; got 'concentraton'; did you mean 'concentration'?"),
    "no_analyte": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", matrix = "plasma" }',
                   "roles.toml: outputs.CP.analyte: is required for an output of role concentration"),
    "no_matrix": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug" }',
                  "roles.toml: outputs.CP.matrix: is required for an output of role concentration"),
    "matrix_typo": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", '
                    'matrix = "venus plasma" }',
                    "roles.toml: outputs.CP.matrix: must be one of " + ", ".join(MATRICES)
                    + "; got 'venus plasma'; did you mean 'venous plasma'?"),
    "matrix_unknown": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", '
                       'matrix = "saliva" }',
                       "roles.toml: outputs.CP.matrix: must be one of " + ", ".join(MATRICES) + "; got 'saliva'"),
    "matrix_not_text": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", matrix = 1 }',
                        "roles.toml: outputs.CP.matrix: must be text on one line (1 to 64 characters); got 1"),
    "analyte_on_two_lines": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "a\\nb", '
                             'matrix = "plasma" }',
                             "roles.toml: outputs.CP.analyte: must be text on one line (1 to 64 characters); "
                             "got 'a\\nb'"),
    "matrix_of_an_effect": ('E = { expr = "CENT", unit = "1", role = "effect", matrix = "serum" }',
                            "roles.toml: outputs.E.matrix: only an output of role concentration has matrix "
                            "(this one's role is effect)"),
    "adverse_event_without_event": ('P = { expr = "CENT/(1 + CENT)", unit = "1", role = "adverse_event_probability" }',
                                    "roles.toml: outputs.P.event: is required for an output of role "
                                    "adverse_event_probability"),
    "label_of_a_concentration": ('CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", '
                                 'matrix = "plasma", label = "Drug" }',
                                 "roles.toml: outputs.CP.label: an output of role concentration is named by its "
                                 "analyte and matrix"),
    "label_not_text": ('E = { expr = "CENT", unit = "1", role = "effect", label = 3 }',
                       "roles.toml: outputs.E.label: must be text on one line (1 to 80 characters); got 3"),
    "baseline_of_a_state": ('C = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", '
                            'matrix = "plasma", baseline = "CENT/V" }',
                            "roles.toml: outputs.C.baseline: unknown name 'CENT' in 'CENT/V' (a baseline uses "
                            "parameters and covariates only)"),
    "baseline_not_an_expression": ('C = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", '
                                   'matrix = "plasma", baseline = ["V"] }',
                                   "roles.toml: outputs.C.baseline: must be a number or an expression of parameters "
                                   "and covariates, e.g. 'MG0'; got ['V']"),
}


def _model_file(tmp_path, outputs):
    path = tmp_path / "roles.toml"
    path.write_text(MODEL + outputs + "\n")
    return path


@pytest.mark.parametrize("case", list(REFUSED))
def test_output_without_what_it_is_is_refused_naming_the_key(case, tmp_path):
    line, message = REFUSED[case]
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(_model_file(tmp_path, line))
    assert str(error.value) == message


def test_refused_model_file_is_one_line_error_at_the_command_line(tmp_path, capsys):
    line = 'CP = { expr = "CENT/V", unit = "mg/L", role = "concentration", analyte = "drug" }'
    data = tmp_path / "data.csv"
    data.write_text("ID,TIME,EVID,AMT,CMT\n1,0,1,100,1\n1,1,0,0,1\n")
    assert main(["simulate", str(_model_file(tmp_path, line)), str(data), "-o", str(tmp_path / "out.csv")]) == 2
    assert capsys.readouterr().err == ("error: roles.toml: outputs.CP.matrix: is required for an output of role "
                                       "concentration\n")


def test_label_names_analyte_matrix_and_unit(tmp_path):
    outputs = pkpd.load_model(_model_file(tmp_path, CONCENTRATION + (
        'E = { expr = "CP/(1 + CP)", unit = "1", role = "effect" }\n'
        'P = { expr = "E", unit = "1", role = "adverse_event_probability", event = "nausea" }\n'
        'SCORE = { expr = "10*(1 - E)", unit = "NRS 0-10", role = "pain_score" }\n'))).outputs
    assert [o.label for o in outputs.values()] == ["Drug, plasma (mg/L)", "E (fraction)", "Probability of nausea",
                                                   "Score (NRS 0-10)"]
    assert pkpd.load_model("ketamine_kamp2020").outputs["KETAMINE"].label == \
        "Ketamine, racemic, arterial plasma (ng/mL)"
    assert pkpd.load_model("esketamine_otto2021").outputs["KETAMINE"].label == "S-ketamine, venous plasma (ng/mL)"


def test_label_key_names_an_output_in_words(tmp_path):
    # issue 20: labels in words, not variable names, from the model file
    outputs = pkpd.load_model(_model_file(tmp_path, CONCENTRATION + (
        'SBP_FALL = { expr = "CP", unit = "mmHg", role = "effect", label = "Fall in systolic blood pressure" }\n'
        'SBP_FALL2 = { expr = "CP", unit = "mmHg", role = "effect" }\n'))).outputs
    assert outputs["SBP_FALL"].label == "Fall in systolic blood pressure (mmHg)"
    assert outputs["SBP_FALL2"].label == "SBP_FALL2 (mmHg)"
    library = pkpd.load_model("magnesium_lu2002").outputs
    assert library["SBP_FALL"].title == "Fall in systolic blood pressure"
    # every library output that is not named by analyte, matrix or event has words of its own
    for name in library_models():
        for output in pkpd.load_model(name).outputs.values():
            if output.role not in ("concentration", "adverse_event_probability"):
                assert output.words, f"{name}: {output.name}"


BASELINE_MODEL = MODEL.replace("[odes]", 'B0 = { value = 2.0, unit = "mg/L", description = "endogenous level", '
                                         'source = "test" }\n[odes]') + (
    'C = { expr = "B0 + CENT/V", unit = "mg/L", role = "concentration", analyte = "drug", matrix = "plasma", '
    'baseline = "B0" }\n'
    'PAIN = { expr = "6 + 0*CENT", unit = "NRS 0-10", role = "pain_score" }\n')


@pytest.mark.parametrize("above", [True, False])
def test_auc_of_an_output_with_a_baseline_is_above_it_by_default(tmp_path, above):
    # issue 20: the AUC of an endogenous substance above its baseline; closed form of a 10 mg bolus,
    # V 10 L, CL 1 L/h: excess 1 mg/L * exp(-0.1 h^-1 t), AUC over 0-24 h = (1 - exp(-2.4)) / 0.1 mg/L*h
    path = tmp_path / "baseline.toml"
    path.write_text(BASELINE_MODEL)
    times = np.linspace(0.0, 24.0, 97)
    result = pkpd.simulate(pkpd.load_model(path), [pkpd.Dose(10.0, "CENT")], pkpd.Population(2, seed=1), times,
                           variability=False)
    table = result.exposure("C", above_baseline=above)
    excess = (1 - np.exp(-2.4)) / 0.1
    # above the baseline the log-down rule is exact for the exponential excess; on the total, near it
    assert table["auc"].to_numpy() == pytest.approx(excess + (0.0 if above else 2.0 * 24.0), rel=1e-6 if above else 1e-5)
    assert table.attrs["auc_above"] == ("baseline B0" if above else None)
    assert table["cmax"].to_numpy() == pytest.approx(3.0)   # the other metrics: of the concentration itself
    assert result.baseline("C").tolist() == [2.0, 2.0] and result.baseline("PAIN") is None


def test_pain_auc_is_in_score_times_days(tmp_path):
    # issue 20: one unit for pain AUC everywhere: score x days, as the trial's AUC endpoint
    path = tmp_path / "baseline.toml"
    path.write_text(BASELINE_MODEL)
    result = pkpd.simulate(pkpd.load_model(path), [], pkpd.Population(1, seed=1), np.linspace(0.0, 48.0, 9))
    table = result.exposure("PAIN")
    assert table["auc"].tolist() == pytest.approx([12.0])    # 6 points for 2 days
    assert table.attrs["units"]["auc"] == "NRS 0-10*d"


MODEL_FILES = ([f"models/{name}.toml" for name in library_models()]
               + sorted(str(p.relative_to(ROOT)) for p in TEST_MODELS.glob("*.toml"))
               + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks" / "models").glob("*.toml")))


@pytest.mark.parametrize("file", MODEL_FILES)
def test_every_model_says_what_its_outputs_are(file):
    # every output has a role; every output in a unit per volume is a concentration with analyte and matrix
    model = pkpd.load_model(ROOT / file)
    for name, output in model.outputs.items():
        assert output.role in OUTPUT_ROLES
        if output.unit.split("/")[-1] in ("L", "mL", "dL"):
            assert output.role == "concentration", f"{file}: {name} ({output.unit})"
        if output.role == "concentration":
            assert output.analyte and output.matrix in MATRICES, f"{file}: {name}"


def test_library_matrices_are_those_the_sources_measured():
    def matrices(model):
        return {name: o.matrix for name, o in pkpd.load_model(model).outputs.items() if o.role == "concentration"}

    # Kamp 2020's central compartment is arterial (venous delays omitted); Otto 2021 sampled venous plasma;
    # Lu 2002 modelled plasma magnesium
    assert matrices("ketamine_kamp2020")["KETAMINE"] == "arterial plasma"
    assert matrices("ketamine_mg_pain")["KETAMINE"] == "arterial plasma"
    assert set(matrices("esketamine_otto2021").values()) == {"venous plasma", "effect site"}
    assert matrices("magnesium_lu2002")["MAGNESIUM"] == "plasma"


# ---------------------------------------------------------------- console, tables and figures by role


def _scenario_with(model_file, variables, metrics=("cmax", "auc")):
    model = pkpd.load_model(model_file)
    return SimpleNamespace(model=model, variables=variables, metrics=list(metrics), arms=[])


def _summary(outputs, arms=("placebo", "drug"), metrics=("cmax", "auc")):
    """A run's summary and exposure tables: every output flat (Cmax = Cavg = 0) in the first arm."""
    rows = [dict(arm=arm, output=output, metric=metric, median=0.5, p5=0.1, p95=0.9, mean=0.25 * (i + 1),
                 n=10, unit="1") for i, arm in enumerate(arms) for output in outputs for metric in metrics]
    exposure = [dict(arm=arm, ID=subject, output=output, metric=metric,
                     value=0.0 if i == 0 else (1.0 if metric == "cmax" else 0.5), unit="1")
                for i, arm in enumerate(arms) for output in outputs for subject in range(3)
                for metric in ("cmax", "cavg")]
    return SimpleNamespace(summary=pd.DataFrame(rows), exposure=pd.DataFrame(exposure), power=None,
                           uncertainty=None, sensitivity=None)


def test_adverse_event_line_follows_the_role_not_the_name(tmp_path):
    path = _model_file(tmp_path, CONCENTRATION + (
        'RISK = { expr = "CP/(1 + CP)", unit = "1", role = "adverse_event_probability", event = "nausea" }\n'
        'P_PSYCHO = { expr = "CP/(2 + CP)", unit = "1", role = "other" }\n'))
    lines = _summary_lines(_summary(["CP", "RISK", "P_PSYCHO"]), _scenario_with(path, ["CP", "RISK", "P_PSYCHO"]))
    assert "  CP: Drug, plasma (mg/L)" in lines.splitlines()
    events = [line for line in lines.splitlines() if "expected rate" in line]
    assert [line.split()[0] for line in events] == ["placebo", "drug"]
    assert all("nausea (RISK): expected rate" in line for line in events)
    assert "expected rate 50.0 %" in events[1]


def test_console_lists_every_variable_pain_by_level_and_a_flat_arm_without_tmax(tmp_path):
    # issue 20: every variable the scenario lists (a pain score included), Tmax "-" where nothing was given
    path = _model_file(tmp_path, CONCENTRATION + (
        'EFFECT = { expr = "CP/(1 + CP)", unit = "1", role = "effect" }\n'
        'AMOUNT = { expr = "CENT", unit = "mg", role = "amount" }\n'
        'PAIN = { expr = "6 - CP", unit = "NRS 0-10", role = "pain_score" }\n'))
    variables = ["CP", "EFFECT", "AMOUNT", "PAIN"]
    metrics = ("cmax", "tmax", "auc", "cavg")
    lines = _summary_lines(_summary(variables, metrics=metrics), _scenario_with(path, variables, metrics))
    assert all(f"  {name}: " in lines for name in variables)
    pain = [line.split()[1:3] for line in lines.splitlines() if line.split()[1:2] == ["PAIN"]]
    assert pain == [["PAIN", "cavg"], ["PAIN", "cavg"], ["PAIN", "auc"], ["PAIN", "auc"]]
    tmax = [line for line in lines.splitlines() if line.split()[1:3] == ["CP", "tmax"]]
    assert tmax[0].split()[0] == "placebo" and tmax[0].split()[3] == "-"
    assert tmax[1].split()[0] == "drug" and "median 0.5 (0.1-0.9)" in tmax[1]


STUDY = """
model = "pk1cmt.toml"
seed = 1
[population]
n = 3
[[arms]]
name = "oral"
doses = [{ drug = "CENT", amount = "10 mg" }]
[outputs]
times = { start = "0 h", stop = "6 h", step = "1 h" }
thresholds = { CP = ["0.2 mg/L"] }
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny pk1cmt run (the model text of test_scenarios.py's studies: the same compiled cache entry)."""
    folder = tmp_path_factory.mktemp("study")
    write_pk1cmt_with_drugs(folder)
    (folder / "study.toml").write_text(STUDY)
    return folder / "study.toml"


@pytest.mark.models("pk1cmt")
def test_run_console_and_tables_name_analyte_and_matrix(study, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(study), "-o", str(out), "--no-figures"]) == 0
    assert "  CP: Drug, plasma (mg/L)\n" in capsys.readouterr().out
    for table in ("profiles.csv", "summary.csv"):
        frame = pd.read_csv(out / table)
        assert list(frame.columns[-3:]) == ["role", "analyte", "matrix"]
        assert set(frame["role"]) == {"concentration"} and set(frame["analyte"]) == {"drug"}
        assert set(frame["matrix"]) == {"plasma"}


def _with_output(scenario, name, **changes):
    """The scenario with one output's declaration changed (its values stay those of the run)."""
    outputs = {**scenario.model.outputs, name: dataclasses.replace(scenario.model.outputs[name], **changes)}
    return dataclasses.replace(scenario, model=dataclasses.replace(scenario.model, outputs=outputs))


@pytest.mark.models("pk1cmt")
def test_figures_choose_outputs_by_role_and_label_their_axes(study):
    scenario = load_scenario(study)
    run = pkpd.run_scenario(scenario, progress=False)
    venous = _with_output(scenario, "CP", matrix="venous plasma")
    fig = figures.concentration_figure(run, venous, "CP")
    assert fig.axes[0].get_ylabel() == "Drug, venous plasma (mg/L)"
    fig = figures.exposure_figure(run, venous, "CP")
    assert fig.axes[0].get_xlabel() == "Drug, venous plasma: Cmax (mg/L)"
    matplotlib.pyplot.close("all")

    def stems(changed):
        found = [stem for stem, fig, _ in figures.figure_set(run, changed)]
        matplotlib.pyplot.close("all")
        return found

    assert "cp_linear" in stems(scenario) and "pain" not in stems(scenario)
    assert "adverse_events" not in stems(scenario)
    # an output of role adverse_event_probability, whatever its name, gets the adverse-event figure
    risk = _with_output(scenario, "CP", role="adverse_event_probability", event="toy event", analyte="", matrix="")
    fig = figures.adverse_event_figure(run, risk)
    assert fig.axes[0].get_xlabel().startswith("Toy event\n(expected % of subjects)\nerror bars: Monte Carlo 95 %")
    assert "adverse_events" in stems(risk)
    # an output of role pain_score is drawn as the daily-pain figure, not as a time course
    pain = _with_output(scenario, "CP", role="pain_score", analyte="", matrix="")
    assert "pain" in stems(pain) and "cp_linear" not in stems(pain)


def test_trial_endpoint_defaults_to_the_pain_score_output(tmp_path):
    trial = ('[trial]\ndesign = "crossover"\nperiod = "35 d"\nbaseline = "14 d"\nn = [20]\nreplicates = 20\n'
             'endpoint = { type = "auc", days = [1, 35] }\n')
    arms = '[[arms]]\nname = "A"\ndoses = []\n[[arms]]\nname = "B"\ndoses = []\n'
    outputs = '[outputs]\ntimes = { start = "0 h", stop = "1 d", step = "1 d" }\n'
    path = tmp_path / "pain.toml"
    path.write_text('model = "ketamine_mg_pain"\n' + arms + outputs + trial)
    assert [design.output for design in designs_of(load_scenario(path))] == ["PAIN"]
    (tmp_path / "pk1cmt.toml").write_text((ROOT / "models" / "pk1cmt.toml").read_text())
    path.write_text('model = "pk1cmt.toml"\n' + arms + outputs + trial)
    with pytest.raises(pkpd.PkpdError, match=r"^pain.toml: trial.endpoint.output: is required: model 'pk1cmt' has "
                                             r"no output of role pain_score \(the default\)$"):
        designs_of(load_scenario(path))


def test_search_auc_of_an_output_with_a_baseline_is_above_it(tmp_path):
    # a search constraint or objective on an AUC means what the run's tables mean by it
    from pkpd.study.search import _per_subject

    path = tmp_path / "baseline.toml"
    path.write_text(BASELINE_MODEL)
    model, times = pkpd.load_model(path), np.linspace(0.0, 24.0, 97)
    regimen = pkpd.Regimen([pkpd.Dose(10.0, "CENT")])
    population = pkpd.Population(2, seed=1)
    result = pkpd.simulate(model, regimen, population, times, variability=False)
    metric = SimpleNamespace(kind="auc", output="C", interval=(0.0, 24.0))
    auc = _per_subject(metric, model, regimen, result, times, np.array([0.0]), population)
    assert auc == pytest.approx([(1 - np.exp(-2.4)) / 0.1] * 2, rel=1e-6)
