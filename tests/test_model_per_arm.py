"""A scenario arm may name its own model: racemic ketamine against S-ketamine in one run."""

import json

import numpy as np
import pandas as pd
import pytest

from pkpd._cli import main
from pkpd._errors import ScenarioError
from pkpd.study.run import run_scenario
from pkpd.study.scenario import load_scenario

pytestmark = pytest.mark.models("ketamine_kamp2020", "esketamine_otto2021")

RACEMIC = '''[[arms]]
name = "racemic"
doses = [{ drug = "ketamine", amount = "0.5 mg/kg", duration = "40 min" }]
'''
ESKETAMINE = '''[[arms]]
name = "S-ketamine"
model = "esketamine_otto2021"
doses = [{ drug = "esketamine", amount = "0.25 mg/kg", duration = "40 min" }]
'''
OUTPUTS = '''[outputs]
times = ["0 h", "0.5 h", "1 h", "3 h"]
variables = {variables}
'''


def _scenario(tmp_path, arms, model="ketamine_kamp2020", variables='["KETAMINE"]', name="s.toml", extra=""):
    path = tmp_path / name
    path.write_text(f'model = "{model}"\nseed = 7\n[population]\nn = 8\n{arms}{extra}'
                    + OUTPUTS.format(variables=variables))
    return path


def test_each_arm_equals_a_run_of_that_arm_alone_with_its_own_model(tmp_path):
    both = run_scenario(load_scenario(_scenario(tmp_path, RACEMIC + ESKETAMINE)), progress=False, figures=False)
    alone = {"racemic": run_scenario(load_scenario(_scenario(tmp_path, RACEMIC, name="r.toml")),
                                     progress=False, figures=False),
             "S-ketamine": run_scenario(load_scenario(_scenario(tmp_path, ESKETAMINE.replace(
                 'model = "esketamine_otto2021"\n', ""), model="esketamine_otto2021", name="e.toml")),
                 progress=False, figures=False)}
    for arm, run in alone.items():
        np.testing.assert_array_equal(both.results[arm].output("KETAMINE"), run.results[arm].output("KETAMINE"))
        mine = both.profiles[both.profiles["arm"] == arm].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, run.profiles.reset_index(drop=True))
    racemic, s = (both.results[a].output("KETAMINE") for a in ("racemic", "S-ketamine"))
    assert not np.allclose(racemic, s)  # two models really ran
    arm = both.manifest["arms"][1]
    assert arm["model"]["name"] == "esketamine_otto2021" and len(arm["model"]["sha256"]) == 64
    assert "model" not in both.manifest["arms"][0]


def test_tables_label_each_arm_by_its_own_model(tmp_path):
    run = run_scenario(load_scenario(_scenario(tmp_path, RACEMIC + ESKETAMINE)), progress=False, figures=False)
    for table in (run.profiles, run.summary):
        matrix = table.groupby("arm")["matrix"].unique()
        assert list(matrix["racemic"]) == ["arterial plasma"]
        assert list(matrix["S-ketamine"]) == ["venous plasma"]
        analyte = table.groupby("arm")["analyte"].unique()
        assert list(analyte["S-ketamine"]) == ["S-ketamine"]


BAD = {
    "missing output": (dict(variables='["KETAMINE_VEN"]'),
                       "s.toml: outputs.variables: arm 'S-ketamine' (model esketamine_otto2021) has no output "
                       "'KETAMINE_VEN'"),
    "missing threshold output": (dict(extra='[outputs.thresholds]\nKETAMINE_VEN = "100 ng/mL"\n'),
                                 "outputs.thresholds.KETAMINE_VEN: arm 'S-ketamine'"),
    "unit mismatch": (dict(model="ketamine_kamp2020", variables='["KETAMINE_NMOL"]'), None),
    "wrong drug for the arm's model": (dict(arms=RACEMIC + ESKETAMINE.replace('drug = "esketamine"',
                                                                                  'drug = "ketamine"')),
                                       "arms[1].doses[0].drug: model 'esketamine_otto2021' has no drug 'ketamine'"),
    "trial across models": (dict(extra='[trial]\narms = ["racemic", "S-ketamine"]\n'),
                            "a trial arm cannot name a model of its own"),
}


def _bad(tmp_path, case):
    settings, message = BAD[case]
    settings = dict(settings)
    arms = settings.pop("arms", RACEMIC + ESKETAMINE)
    extra = settings.pop("extra", "")
    if case == "unit mismatch":  # the same name in a different unit in the arm's model
        model = tmp_path / "other.toml"
        from pkpd.model import load_model
        text = load_model("esketamine_otto2021").path.read_text().replace(
            'KETAMINE_NMOL = { expr = "KETAMINE/MW_K", unit = "nmol/mL"',
            'KETAMINE_NMOL = { expr = "KETAMINE", unit = "ng/mL"')
        model.write_text(text)
        arms = arms.replace('"esketamine_otto2021"', '"other.toml"')
        message = "outputs.variables: output 'KETAMINE_NMOL' is in 'ng/mL' in arm 'S-ketamine'"
    return _scenario(tmp_path, arms, extra=extra, **settings), message


@pytest.mark.parametrize("case", list(BAD))
def test_bad_scenarios_are_refused_alike_by_validate_and_run(tmp_path, case, capsys):
    path, message = _bad(tmp_path, case)
    outcomes = []
    for command in (["validate", str(path)], ["run", str(path), "-o", str(tmp_path / "out"), "--no-figures",
                                             "--quiet"]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        outcomes.append(err)
    assert outcomes[0] == outcomes[1]
    assert not (tmp_path / "out").exists()


def test_naming_the_scenarios_model_in_an_arm_changes_nothing(tmp_path):
    arms = RACEMIC.replace('name = "racemic"\n', 'name = "racemic"\nmodel = "ketamine_kamp2020"\n')
    scenario = load_scenario(_scenario(tmp_path, arms))
    assert scenario.arms[0].own_model is None and scenario.arms[0].model is None


def test_arm_parameters_apply_to_the_arms_own_model(tmp_path):
    arms = ESKETAMINE + 'parameters = { CL = 20.0 }\n'
    scenario = load_scenario(_scenario(tmp_path, RACEMIC + arms))
    arm = scenario.arms[1]
    assert arm.model.name == "esketamine_otto2021" and arm.model.parameters["CL"].value == 20
    with pytest.raises(ScenarioError, match="arms.1..parameters.NOPE: model 'esketamine_otto2021' has no"):
        load_scenario(_scenario(tmp_path, RACEMIC + ESKETAMINE + 'parameters = { NOPE = 1 }\n'))


def test_console_names_each_arms_model_and_matrix(tmp_path, capsys):
    path = _scenario(tmp_path, RACEMIC + ESKETAMINE)
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--no-figures"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  arm 'S-ketamine': model esketamine_otto2021 ") for line in out), out
    assert not any(line.startswith("  arm 'racemic'") for line in out)
    cmax = [line for line in out if "KETAMINE" in line and " cmax " in line]
    assert cmax[0].split()[0] == "racemic" and not cmax[0].endswith("]")
    assert cmax[1].endswith("ng/mL [S-ketamine, venous plasma]")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["arms"][1]["model"]["file"] == "esketamine_otto2021.toml"


def test_figure_axis_names_every_arms_matrix(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pkpd.figures import concentration_figure

    scenario = load_scenario(_scenario(tmp_path, RACEMIC + ESKETAMINE))
    run = run_scenario(scenario, progress=False, figures=False)
    fig = concentration_figure(run, scenario, "KETAMINE")
    labels = [ax.get_ylabel() for ax in fig.axes] + [t.get_text() for t in fig.texts]
    if getattr(fig, "_supylabel", None) is not None:
        labels.append(fig._supylabel.get_text())
    plt.close(fig)
    labels = [label.replace("\n", " ") for label in labels]   # long axis labels are wrapped
    assert ("Ketamine, racemic, arterial plasma (ng/mL) / S-ketamine, venous plasma (ng/mL)" in labels), labels
