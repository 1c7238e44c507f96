"""Required keys are declared once (pkpd/_keys.py): the checkers refuse a file without them, reading
the same lists the documentation's key references print (tests/test_docs.py checks the pages)."""

import copy
import json

import pytest

import pkpd
from conftest import write_pk1cmt_with_drugs
from pkpd.study import scenario as scenario_module
from pkpd.model import loading
from pkpd._keys import Keys
from pkpd.study.scenario import load_scenario

SCENARIO = {"model": "pk1cmt.toml",
            "arms": [{"name": "a", "doses": [{"drug": "CENT", "amount": "10 mg"}]}],
            "outputs": {"times": {"start": "0 h", "stop": "2 h", "step": "1 h"}}}
# (key path of the table, where it sits in SCENARIO, its Keys)
SCENARIO_TABLES = [("", (), scenario_module.TOP_KEYS), ("arms[0]", ("arms", 0), scenario_module.ARM_KEYS),
                   ("arms[0].doses[0]", ("arms", 0, "doses", 0), scenario_module.DOSE_KEYS),
                   ("outputs", ("outputs",), scenario_module.OUTPUT_KEYS),
                   ("outputs.times", ("outputs", "times"), scenario_module.TIME_KEYS)]

MODEL = {"model": {"name": "keys"},
         "compartments": {"CENT": {"number": 1}},
         "parameters": {"CL": {"value": 1.0, "unit": "L/h", "description": "clearance", "source": "test"},
                        "V": {"value": 10.0, "unit": "L", "description": "volume", "source": "test"}},
         "covariates": {"WT": {"value": 70.0, "unit": "kg"}},
         "odes": {"CENT": "-CL/V*CENT"},
         "outputs": {"CP": {"expr": "CENT/V", "unit": "mg/L", "role": "concentration", "analyte": "drug",
                            "matrix": "plasma"}}}
MODEL_TABLES = [("compartments.CENT", ("compartments", "CENT"), loading._COMPARTMENT_KEYS),
                ("parameters.CL", ("parameters", "CL"), loading._PARAMETER_KEYS),
                ("covariates.WT", ("covariates", "WT"), loading._COVARIATE_KEYS),
                ("outputs.CP", ("outputs", "CP"), loading._OUTPUT_KEYS)]


def toml(table):
    """A TOML document of `table` (strings, numbers, lists and tables), every value inline."""
    def value(item):
        if isinstance(item, dict):
            return "{ " + ", ".join(f"{key} = {value(v)}" for key, v in item.items()) + " }"
        if isinstance(item, list):
            return "[" + ", ".join(value(v) for v in item) + "]"
        return json.dumps(item)
    return "\n".join(f"{key} = {value(v)}" for key, v in table.items()) + "\n"


def without(document, where, key):
    changed = copy.deepcopy(document)
    table = changed
    for step in where:
        table = table[step]
    del table[key]
    return changed


def cases(tables, conditional=()):
    """(key path, document location, key) for each key the tables require, and those `conditional` names."""
    return [(path, where, key) for path, where, keys in tables
            for key in (*keys.required, *(k for k in keys.required_when if (path, k) in conditional))]


@pytest.mark.parametrize("path, where, key", cases(SCENARIO_TABLES, {("arms[0].doses[0]", "amount")}))
def test_scenario_without_a_required_key_is_refused_naming_it(tmp_path, path, where, key):
    write_pk1cmt_with_drugs(tmp_path)
    file = tmp_path / "scenario.toml"
    file.write_text(toml(without(SCENARIO, where, key)))
    with pytest.raises(pkpd.ScenarioError) as error:
        load_scenario(file)
    assert error.value.key == (f"{path}.{key}" if path else key)
    assert error.value.rule.startswith("is required")


@pytest.mark.parametrize("path, where, key", cases(MODEL_TABLES, {("outputs.CP", "analyte"), ("outputs.CP", "matrix")}))
def test_model_without_a_required_key_is_refused_naming_it(tmp_path, path, where, key):
    file = tmp_path / "keys.toml"
    file.write_text(toml(without(MODEL, where, key)))
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(file)
    assert error.value.key == f"{path}.{key}"
    assert error.value.rule.startswith("is required")


def test_the_unchanged_files_are_accepted(tmp_path):
    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "scenario.toml").write_text(toml(SCENARIO))
    assert load_scenario(tmp_path / "scenario.toml").arms[0].name == "a"
    (tmp_path / "keys.toml").write_text(toml(MODEL))
    assert pkpd.load_model(tmp_path / "keys.toml").outputs["CP"].matrix == "plasma"


def test_keys_say_what_they_require():
    assert scenario_module.DOSE_KEYS.requirement() == ("drug; amount (or give a rate and a duration); every (when count > 1 "
                                                 "or until is given)")
    assert Keys(["a"]).requirement() == "-"
    with pytest.raises(ValueError, match="not among the allowed keys"):
        Keys(["a"], required=["b"])
