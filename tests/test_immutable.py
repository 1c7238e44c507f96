"""Immutable values: a scenario, a model, a trial design and a dose refuse assignment, and every
derivation (``with_overrides``, ``with_parameters``, ``with_constants``) returns a new object and
leaves the one it started from as it was."""

import dataclasses
import pickle

import pytest

import pkpd
from pkpd.study.scenario import load_scenario

SCENARIO = """model = "ketamine_mg_pain"
seed = 3
[population]
n = 4
[[arms]]
name = "bolus"
doses = [{ drug = "ketamine", amount = "0.5 mg/kg", duration = "2 h" }]
[[arms]]
name = "large volume"
doses = [{ drug = "ketamine", amount = "0.5 mg/kg", duration = "2 h" }]
parameters = { V1 = 30.0 }
[outputs]
times = { start = "0 h", stop = "4 h", step = "1 h" }
"""
TRIAL = """[trial]
period = "7 d"
baseline = "7 d"
n = [4]
replicates = 2
endpoint = { type = "auc", output = "PAIN", days = [1, 7] }
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    return load_scenario(path)


def test_a_scenario_and_its_arms_refuse_assignment(scenario):
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.n = 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.times = scenario.times[::2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.arms[0].model = scenario.model


def test_with_overrides_returns_a_new_scenario_and_leaves_the_old_one(scenario):
    model, arm_models = scenario.model, [arm.model for arm in scenario.arms]
    changed = scenario.with_overrides(n=7, seed=11, parameters={"CL": 70.0})
    assert changed is not scenario
    assert (changed.n, changed.seed) == (7, 11)
    assert changed.model.parameters["CL"].value == 70.0
    assert changed.arms[1].model.parameters["CL"].value == 70.0  # the arm's model takes the new value too
    assert changed.arms[1].model.parameters["V1"].value == 30.0  # and keeps its own
    assert (scenario.n, scenario.seed) == (4, 3)
    assert scenario.model is model and [arm.model for arm in scenario.arms] == arm_models
    assert scenario.model.parameters["CL"].value != 70.0
    assert scenario.arms[1].model.parameters["CL"].value != 70.0


def test_a_model_refuses_assignment():
    model = pkpd.load_model("ketamine_mg_pain")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.parameters = {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.unfolded = model


def test_with_parameters_returns_a_new_model_and_leaves_the_old_one():
    model = pkpd.load_model("ketamine_mg_pain")
    alpha = model.parameters["ALPHA"].value
    changed = model.with_parameters({"ALPHA": alpha + 1.0})
    assert changed is not model and changed.parameters["ALPHA"].value == alpha + 1.0
    assert model.parameters["ALPHA"].value == alpha and model.parameters["ALPHA"].reliability != "override"


def test_with_constants_declares_the_model_it_was_folded_from():
    model = pkpd.load_model("ketamine_mg_pain")
    folded = model.with_constants({"ALPHA": 0.0})
    assert folded.unfolded is model and model.unfolded is None
    assert folded.source_text != model.source_text and "specialised" not in model.source_text
    assert folded.with_constants({"CL": 84.0}).unfolded is model
    # new values start again from the unfolded model: ALPHA is an input again, not the folded 0
    again = folded.with_parameters({"ALPHA": 1.0})
    assert again.unfolded is None and again.source_text == model.source_text
    assert again.parameters["ALPHA"].value == 1.0


@pytest.mark.models("ketamine_mg_pain")
def test_a_frozen_model_compiles_once_shares_its_module_and_pickles_without_it():
    model = pkpd.load_model("ketamine_mg_pain")
    module = model.module
    assert model.module is module  # cached on first use
    assert model.with_parameters({"ALPHA": 1.0}).module is module  # parameters are inputs: same engine
    copy = pickle.loads(pickle.dumps(model))
    assert copy._module is None and copy.hash == model.hash
    assert copy.module is module  # re-imported (from sys.modules here; from the disk cache on a worker)


def test_a_dose_refuses_assignment_and_replace_checks_the_new_one():
    dose = pkpd.Dose(1.0, "CENT", every=12.0, count=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dose.count = 5
    assert dataclasses.replace(dose, count=5).administrations() == 5 and dose.administrations() == 3
    with pytest.raises(pkpd.PkpdError):
        dataclasses.replace(dose, count=0)


def test_a_trial_design_refuses_assignment(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.replace("parameters = { V1 = 30.0 }\n", "") + TRIAL)
    scenario = load_scenario(path)
    (design,) = scenario.designs
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.replicates = 10
    fewer = dataclasses.replace(design, replicates=1)
    assert (fewer.replicates, design.replicates) == (1, 2)


@pytest.mark.models("pk1cmt")
def test_copies_made_before_first_use_share_the_compiled_functions(monkeypatch):
    # one model per parameter draw (issue 19): none may generate, import or compile the functions again
    from pkpd.model import cache

    base = pkpd.load_model("pk1cmt")
    copies = [base.with_parameters({"CL": 1.0 + i / 10}) for i in range(5)]
    first = copies[0].kernels
    generated = []
    original = cache.generate_source
    monkeypatch.setattr(cache, "generate_source", lambda model: generated.append(model) or original(model))
    assert all(copy.kernels is first and copy.module is copies[0].module for copy in copies[1:] + [base])
    assert generated == []
