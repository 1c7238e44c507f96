"""Bad input: one-line errors naming the file, the row/column or key, the rule and the value.

Through Python (DataError / ModelError, both ValueError) and through the
command line (exit code 2, one line on stderr, no traceback).
"""

import ast
import subprocess
import sys

import pandas as pd
import pytest

import pkpd
from pkpd._cli import main

pytestmark = pytest.mark.models("pk1cmt")

GOOD = pd.DataFrame({"ID": [1, 1, 1], "TIME": [0.0, 1.0, 2.0], "EVID": [1, 0, 0], "AMT": [100.0, 0, 0],
                     "CMT": [1, 2, 2], "RATE": [0.0, 0, 0], "II": [0.0, 0, 0], "SS": [0, 0, 0]})

DATA_ERRORS = {
    "missing_id": (GOOD.drop(columns="ID"), "column ID is required"),
    "missing_time": (GOOD.drop(columns="TIME"), "column TIME is required"),
    "time_decreasing": (GOOD.assign(TIME=[0.0, 2.0, 1.0]), "row 4, column TIME: must not decrease within ID 1"),
    "negative_amt": (GOOD.assign(AMT=[-100.0, 0, 0]), "row 2, column AMT: must not be negative; got -100"),
    "unknown_cmt": (GOOD.assign(CMT=[7, 2, 2]), "row 2, column CMT: model 'pk1cmt' has no compartment 7"),
    "rate_minus_two_without_duration": (GOOD.assign(RATE=[-2.0, 0, 0]),
                                        "row 2, column RATE: RATE=-2 asks for a modelled duration, but model "
                                        "'pk1cmt' defines no D for compartment DEPOT"),
    "ss1_with_zero_interval": (GOOD.assign(SS=[1, 0, 0]), "row 2, column II: SS with AMT > 0 needs II > 0; got 0"),
    "non_numeric_cell": (GOOD.assign(AMT=["100", "x", "0"]), "row 3, column AMT: must be a number; got 'x'"),
    "unknown_evid": (GOOD.assign(EVID=[1, 7, 0]), "row 3, column EVID: must be 0, 1, 2, 3 or 4; got 7"),
    "addl_without_interval": (GOOD.assign(ADDL=[2, 0, 0]), "row 2, column II: ADDL > 0 needs II > 0; got 0"),
}


@pytest.mark.parametrize("case", list(DATA_ERRORS))
def test_bad_data_raises_data_error(case):
    data, message = DATA_ERRORS[case]
    with pytest.raises(pkpd.DataError) as error:
        pkpd.simulate_data("pk1cmt", data, source="trial.csv")
    assert message in str(error.value)
    assert str(error.value).startswith("trial.csv")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("case", list(DATA_ERRORS))
def test_bad_data_on_the_command_line_exits_2(case, tmp_path, capsys):
    data, message = DATA_ERRORS[case]
    path = tmp_path / "trial.csv"
    data.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    assert main(["simulate", "pk1cmt", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: trial.csv") and message in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_command_line_error_has_no_traceback(tmp_path):
    path = tmp_path / "trial.csv"
    GOOD.assign(AMT=[-1.0, 0, 0]).to_csv(path, index=False)
    run = subprocess.run([sys.executable, "-m", "pkpd", "simulate", "pk1cmt", str(path), "-o",
                          str(tmp_path / "out.csv")], capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1
    assert "row 2, column AMT: must not be negative" in run.stderr


def test_existing_output_is_not_touched_on_error(tmp_path):
    path = tmp_path / "trial.csv"
    GOOD.assign(CMT=[9, 2, 2]).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    assert main(["simulate", "pk1cmt", str(path), "-o", str(out)]) == 2
    assert out.read_text() == "previous results\n"


MODEL_HEADER = """
[model]
name = "bad"
[compartments]
CENT = { number = 1 }
[parameters]
CL = { value = 1.0, unit = "L/h", description = "clearance", source = "test" }
V = { value = 10.0, unit = "L", description = "volume", source = "test" }
"""

MODEL_ERRORS = {
    "import": ('[odes]\nCENT = "__import__(\'os\').system(\'true\')"\n', "odes.CENT: calling"),
    "attribute_access": ('[odes]\nCENT = "CL.real*CENT"\n', "odes.CENT: attribute access is not allowed"),
    "unknown_name": ('[odes]\nCENT = "-K*CENT"\n', "odes.CENT: unknown name 'K'"),
    "undeclared_compartment": ('[odes]\nCENT = "-CL/V*CENT"\nPERIPH = "0"\n',
                               "odes.PERIPH: no compartment 'PERIPH' is declared"),
    "missing_ode": ('[odes]\n', "odes.CENT: every compartment needs an equation"),
    "caret_power": ('[odes]\nCENT = "-CL/V^2*CENT"\n', "'^' (write powers as a**b"),
    "lambda": ('[odes]\nCENT = "(lambda: 1)()"\n', "odes.CENT:"),
    "string_constant": ('[odes]\nCENT = "\'a\'"\n', "odes.CENT: the constant 'a' is not allowed"),
    "output_used_before_declared": ('[odes]\nCENT = "-CL/V*CENT"\n[outputs]\nB = "2*A"\nA = "CENT/V"\n',
                                    "outputs.B.expr: unknown name 'A' in '2*A' (an output can use only the "
                                    "outputs declared above it: A)"),
}


@pytest.mark.parametrize("case", list(MODEL_ERRORS))
def test_bad_model_file_is_rejected(case, tmp_path):
    body, message = MODEL_ERRORS[case]
    path = tmp_path / "bad.toml"
    path.write_text(MODEL_HEADER + body)
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(path)
    assert str(error.value).startswith("bad.toml: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_parameter_without_value_is_rejected(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(MODEL_HEADER.replace('CL = { value = 1.0, ', 'CL = { ') + '[odes]\nCENT = "-CL/V*CENT"\n')
    with pytest.raises(pkpd.ModelError, match=r"bad.toml: parameters.CL.value: is required"):
        pkpd.load_model(path)


def test_unknown_section_suggests_the_right_one(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(MODEL_HEADER + '[ode]\nCENT = "-CL/V*CENT"\n')
    with pytest.raises(pkpd.ModelError, match=r"ode: unknown key; did you mean 'odes'\?"):
        pkpd.load_model(path)


def test_unknown_library_model_suggests_a_name():
    with pytest.raises(pkpd.ModelError, match=r"did you mean 'pk2cmt'"):
        pkpd.load_model("pk2cm")


def test_a_failing_subject_is_named(tmp_path):
    data = GOOD.assign(ID=[7, 7, 7], F2=[-1.0, 1.0, 1.0], CMT=[2, 2, 2])
    with pytest.raises(pkpd.SimulationError, match=r"subject 7: the bioavailability F is negative"):
        pkpd.simulate_data("pk1cmt", data)


# Expressions that would run code or reach objects if a model file were ever evaluated as Python
HOSTILE_EXPRESSIONS = {
    "import_call": "__import__('pathlib').Path('pwned').touch()",
    "eval_call": "eval('1')",
    "builtins_name": "__builtins__",
    "dunder_attribute_chain": "().__class__.__bases__[0].__subclasses__()",
    "attribute_of_a_parameter": "CL.__class__",
    "lambda": "(lambda: CL)()",
    "list_comprehension": "[CL for _ in (1,)][0]",
    "generator_argument": "max(CL for _ in (1,))",
    "subscript": "CL[0]",
    "assignment_expression": "(CL := 0)",
    "f_string": "f'{CL}'",
    "keyword_argument": "max(CL, V, key=abs)",
    "call_of_a_call": "exp(1)(2)",
    "starred_argument": "max(*CL)",
}
# every place of a model file that holds an expression ({} is the expression, as a TOML literal string)
EXPRESSION_PLACES = {
    "derived.K": "[derived]\nK = '''{}'''\n[odes]\nCENT = \"-CL/V*CENT\"\n",
    "odes.CENT": "[odes]\nCENT = '''{}'''\n",
    "dosing.CENT.F": "[odes]\nCENT = \"-CL/V*CENT\"\n[dosing]\nCENT = {{ F = '''{}''' }}\n",
    "initial.CENT": "[odes]\nCENT = \"-CL/V*CENT\"\n[initial]\nCENT = '''{}'''\n",
    "outputs.CP.expr": "[odes]\nCENT = \"-CL/V*CENT\"\n[outputs]\nCP = {{ expr = '''{}''', unit = \"mg/L\" }}\n",
}


@pytest.mark.parametrize("place", list(EXPRESSION_PLACES))
@pytest.mark.parametrize("case", list(HOSTILE_EXPRESSIONS))
def test_model_file_expression_can_not_run_code(case, place, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "hostile.toml"
    path.write_text(MODEL_HEADER + EXPRESSION_PLACES[place].format(HOSTILE_EXPRESSIONS[case]))
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(path)
    assert str(error.value).startswith(f"hostile.toml: {place}: ")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "pwned").exists()


def test_model_file_text_fields_can_not_change_the_generated_code(tmp_path):
    # descriptions, units and sources that close a string or a comment and add statements reach the
    # generated module, if at all, as inert text: its syntax tree is that of the same model without them
    from pkpd.model import generate_source

    template = MODEL_HEADER.replace('"clearance"', "TEXT").replace('source = "test" }', "source = TEXT }", 1) + (
        '[odes]\nCENT = "-CL/V*CENT"\n[outputs]\n'
        'CP = { expr = "CENT/V", unit = "mg/L", description = TEXT, role = "other" }\n')
    hostile = '"x\\n\\"\\"\\"\\nimport os\\nos.system(\\"touch pwned\\")\\n#\'\'\'"'
    (tmp_path / "plain.toml").write_text(template.replace("TEXT", '"plain"'))
    (tmp_path / "hostile.toml").write_text(template.replace("TEXT", hostile))
    plain, changed = pkpd.load_model(tmp_path / "plain.toml"), pkpd.load_model(tmp_path / "hostile.toml")
    assert "import os" in changed.parameters["CL"].description
    assert ast.dump(ast.parse(generate_source(changed))) == ast.dump(ast.parse(generate_source(plain)))


DRUG_ERRORS = {
    "route_to_nowhere": ('[drugs]\nx = { compartment = "CENT", routes = { oral = "GUT" } }\n',
                         "drugs.x.routes.oral: no compartment 'GUT' is declared"),
    "compartment_typo": ('[drugs]\nx = { compartment = "CENTR" }\n',
                         "drugs.x.compartment: no compartment 'CENTR' is declared; did you mean 'CENT'?"),
    "negative_molar_mass": ('[drugs]\nx = { compartment = "CENT", molar_mass = -237.7 }\n',
                            "drugs.x.molar_mass: must be > 0; got -237.7"),
    "bad_unit": ('[drugs]\nx = { compartment = "CENT", unit = "milligrumps" }\n',
                 "drugs.x.unit: must be a unit such as 'mg' or 'mmol'; got 'milligrumps'"),
    "zero_conversion": ('[drugs]\nx = { compartment = "CENT", unit = "g", conversions = { mmol = 0 } }\n',
                        "drugs.x.conversions.mmol: must be > 0; got 0"),
    "conversion_without_unit": ('[drugs]\nx = { compartment = "CENT", conversions = { mmol = 4.06 } }\n',
                                "drugs.x.unit: is required when conversions are given"),
    "routes_not_a_table": ('[drugs]\nx = { compartment = "CENT", routes = "CENT" }\n',
                           "drugs.x.routes: must be a table; got 'CENT'"),
}


@pytest.mark.parametrize("case", list(DRUG_ERRORS))
def test_bad_drug_table_is_rejected_when_the_model_loads(case, tmp_path):
    body, message = DRUG_ERRORS[case]
    path = tmp_path / "bad.toml"
    path.write_text(MODEL_HEADER + '[odes]\nCENT = "-CL/V*CENT"\n' + body)
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(path)
    assert str(error.value).startswith("bad.toml: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_switch_parameters_take_only_their_allowed_values(tmp_path):
    # a switch (allowed = [0, 1]) refuses 2 or 0.5 everywhere a value can come from, in one line
    path = tmp_path / "bad.toml"
    path.write_text(MODEL_HEADER.replace('V = {', 'S = { value = 0, unit = "1", allowed = [0, 1], '
                                         'description = "switch", source = "test" }\nV = {')
                    + '[odes]\nCENT = "-CL/V*CENT*(1 + S)"\n')
    model = pkpd.load_model(path)
    with pytest.raises(pkpd.ModelError, match=r"^bad.toml: parameters.S: must be one of 0, 1 \(a switch\); got 2$"):
        model.with_parameters({"S": 2.0})
    assert model.with_parameters({"S": 1.0}).parameters["S"].value == 1.0
    data = pd.DataFrame({"ID": [1, 1], "TIME": [0.0, 1.0], "EVID": [1, 0], "AMT": [10.0, 0.0], "CMT": [1, 0],
                         "S": [0.0, 0.5]})
    with pytest.raises(pkpd.DataError, match=r"row 3, column S: must be one of 0, 1 \(a switch\); got 0.5"):
        pkpd.simulate_data(model, data)
    path.write_text(path.read_text().replace('value = 0, unit = "1", allowed', 'value = 3, unit = "1", allowed'))
    with pytest.raises(pkpd.ModelError, match=r"bad.toml: parameters.S.value: must be one of 0, 1; got 3"):
        pkpd.load_model(path)


def test_scenario_switch_value_is_checked(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('model = "ketamine_mg_pain"\n[parameters]\nMG_SOURCE = 2\n[[arms]]\nname = "saline"\n'
                    '[outputs]\ntimes = { start = "0 h", stop = "1 h", step = "1 h" }\n')
    with pytest.raises(pkpd.PkpdError, match=r"^study.toml: parameters.MG_SOURCE: must be one of 0, 1 \(a switch\); "
                                             r"got 2$"):
        pkpd.load_scenario(path)
