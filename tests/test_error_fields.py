"""Errors carry their fields: one hierarchy under PkpdError, all exported, messages built from fields.

A caller that adds a location to an error it caught (a scenario naming the key of
a quantity the unit check refused, a model file naming the key of an expression)
reads the error's fields; the message text is for people only.
"""

import ast
import importlib
import pickle
from pathlib import Path

import pandas as pd
import pytest

import pkpd
from pkpd._errors import PkpdError
from pkpd.events.records import build_stream
from pkpd.model.expressions import parse
from pkpd._units import parse_quantity
from pkpd.population import sample_iiv

PACKAGE = Path(pkpd.__file__).parent
TEST_MODEL = Path(__file__).parent / "models" / "mm1cmt.toml"
#: Exception classes that never leave the package: NotDifferentiable is raised and caught by the
#: linearity check, BrowserError by the report's PDF printer (it becomes an OutputError).
INTERNAL = {"pkpd.model.expressions.NotDifferentiable", "pkpd.report._browser.BrowserError"}

SCENARIO = """model = "ketamine_kamp2020"
[[arms]]
name = "a"
doses = [{ drug = "ketamine", amount = "0.5 mg/kg", duration = "-2 h" }]
[outputs]
times = { start = "0 h", stop = "2 h", step = "1 h" }
"""


def _modules():
    """(dotted name, path) of every module of the package and of its subpackages."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if "__pycache__" not in parts and path.name != "__main__.py":
            found.append((".".join(("pkpd", *(parts[:-1] if parts[-1] == "__init__" else parts))), path))
    return found


def _exception_classes():
    """(module name, class) of every exception class a module of the package defines.

    An :class:`Exception`: ``_signals.Interrupted``, a :class:`KeyboardInterrupt`, is how
    the command line stops on a signal, not an error.
    """
    found = []
    for name, path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                cls = getattr(importlib.import_module(name), node.name, None)   # None: a class inside a function
                if isinstance(cls, type) and issubclass(cls, Exception):
                    found.append((name, cls))
    return found


def test_every_exception_class_is_exported_and_under_pkpd_error():
    classes = _exception_classes()
    assert len(classes) >= 11
    for module, cls in classes:
        if f"{module}.{cls.__name__}" in INTERNAL:
            continue
        assert cls.__name__ in pkpd.__all__ and getattr(pkpd, cls.__name__) is cls, cls
        if cls is pkpd.SimulationError:
            assert issubclass(cls, RuntimeError) and not issubclass(cls, PkpdError)
        else:
            assert issubclass(cls, PkpdError) and issubclass(cls, ValueError), cls


def test_a_bad_scenario_value_names_file_key_rule_and_value(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    with pytest.raises(pkpd.ScenarioError) as caught:
        pkpd.load_scenario(path)
    error = caught.value
    assert (error.file, error.key, error.rule, error.value) == ("s.toml", "arms[0].doses[0].duration",
                                                              "must be positive", "-2 h")
    assert (error.row, error.column) == (None, None)
    assert str(error) == "s.toml: arms[0].doses[0].duration: must be positive; got '-2 h'"


def test_a_bad_data_cell_names_file_row_column_rule_and_value():
    model = pkpd.load_model(TEST_MODEL)
    data = pd.DataFrame({"ID": [1, 1, 1], "TIME": [0.0, 2.0, 1.0], "AMT": [100.0, 0.0, 0.0],
                         "CMT": [1, 2, 2], "EVID": [1, 0, 0]})
    with pytest.raises(pkpd.DataError) as caught:
        build_stream(model, data, source="trial.csv")
    error = caught.value
    assert (error.file, error.row, error.column, error.key) == ("trial.csv", 4, "TIME", None)
    assert (error.rule, error.value) == ("must not decrease within ID 1", 1.0)
    assert str(error) == "trial.csv, row 4, column TIME: must not decrease within ID 1; got 1 after 2"


def test_a_bad_model_key_names_file_key_rule_and_value(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(TEST_MODEL.read_text(encoding="utf-8").replace("CENT = { number = 2 }",
                                                                     "CENT = { number = -2 }"), encoding="utf-8")
    with pytest.raises(pkpd.ModelError) as caught:
        pkpd.load_model(path)
    error = caught.value
    assert (error.file, error.key, error.rule, error.value) == ("m.toml", "compartments.CENT.number",
                                                              "must be a positive integer", -2)
    assert str(error) == "m.toml: compartments.CENT.number: must be a positive integer; got -2"


def test_a_bad_expression_is_a_pkpd_error_and_the_model_adds_file_and_key(tmp_path):
    with pytest.raises(PkpdError) as caught:
        parse("CL/V*X", {"CL", "V"})
    assert isinstance(caught.value, pkpd.ExpressionError)
    assert (caught.value.rule, caught.value.value, caught.value.key) == ("unknown name 'X' in 'CL/V*X'", "CL/V*X", None)
    assert str(caught.value) == "unknown name 'X' in 'CL/V*X'"

    path = tmp_path / "m.toml"
    path.write_text(TEST_MODEL.read_text(encoding="utf-8").replace('DEPOT = "-KA*DEPOT"', 'DEPOT = "-KB*DEPOT"'),
                    encoding="utf-8")
    with pytest.raises(pkpd.ModelError) as caught:
        pkpd.load_model(path)
    error = caught.value
    assert (error.file, error.key, error.value) == ("m.toml", "odes.DEPOT", "-KB*DEPOT")
    assert error.rule == "unknown name 'KB' in '-KB*DEPOT'"
    assert str(error) == "m.toml: odes.DEPOT: unknown name 'KB' in '-KB*DEPOT'"


def test_a_unit_error_keeps_its_sentence_form_and_its_fields():
    with pytest.raises(PkpdError) as caught:
        parse_quantity("2 h", "duration", expected="mg")
    error = caught.value
    assert (error.key, error.rule, error.value) == ("duration", "must be in units compatible with 'mg' ([mass])",
                                                    "2 h")
    assert str(error) == "`duration` must be in units compatible with 'mg' ([mass]); got '2 h' (hour, [time])."


def test_a_population_error_names_the_element_of_the_matrix():
    with pytest.raises(pkpd.PopulationError) as caught:
        sample_iiv([[0.1, 0.2], [0.0, 0.1]], 3, seed=1, key="variability.iiv.omega")
    error = caught.value
    assert error.key == "variability.iiv.omega[0][1]" and error.rule.startswith("must equal")
    assert str(error) == ("variability.iiv.omega[0][1]: must equal variability.iiv.omega[1][0] (symmetric); "
                          "got 0.2 and 0")


def test_an_error_keeps_its_fields_through_pickle():
    error = pkpd.DataError("must be finite", file="d.csv", row=3, column="AMT", value=float("inf"), got="inf")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is pkpd.DataError
    assert str(copy) == str(error) == "d.csv, row 3, column AMT: must be finite; got inf"
    assert (copy.file, copy.row, copy.column, copy.rule, copy.value) == ("d.csv", 3, "AMT", "must be finite",
                                                                         float("inf"))


def test_a_message_stays_on_one_line_whatever_the_fields_hold():
    error = pkpd.ScenarioError("unknown key", file="s.toml", key="parameters.A\nB")
    assert "\n" not in str(error) and str(error) == "s.toml: 'parameters.A\\nB': unknown key"


def _own_error_names():
    return {name for name in pkpd.__all__ if isinstance(getattr(pkpd, name), type)
            and issubclass(getattr(pkpd, name), PkpdError)}


def _caught_names(handler):
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None) for node in types}


def test_no_module_reads_a_caught_pkpd_error_as_text():
    """A handler of the package's own errors uses their fields: never str(error), f"{error}" or error.args."""
    own = _own_error_names()
    offences = []
    for _, path in _modules():
        for handler in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(handler, ast.ExceptHandler) and handler.name and _caught_names(handler) & own):
                continue
            for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
                as_text = (
                    (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("str", "repr", "format")
                     and any(isinstance(a, ast.Name) and a.id == handler.name for a in node.args))
                    or (isinstance(node, ast.FormattedValue) and isinstance(node.value, ast.Name)
                        and node.value.id == handler.name)
                    or (isinstance(node, ast.Attribute) and node.attr == "args" and isinstance(node.value, ast.Name)
                        and node.value.id == handler.name))
                if as_text:
                    offences.append(f"{path.name}:{node.lineno}")
    assert not offences, offences
