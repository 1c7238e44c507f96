"""Hostile or broken inputs to the model compiler end in one-line errors, never in code
execution or a traceback: model names and file names, extreme expressions, zero or
infinite parameters on every integration path, a corrupt or unusable model cache."""

import ast
import dataclasses
import shutil
import sys
import threading

import numpy as np
import pandas as pd
import pytest

import pkpd
from conftest import ROOT, TEST_MODELS
from pkpd._cli import main
from pkpd._engine import MESSAGES
from pkpd.model import generated_location, generate_source
from pkpd.engine import pointer

pytestmark = pytest.mark.models("pk1cmt", TEST_MODELS / "pk1cmt_iiv.toml")

PK1CMT = (ROOT / "models" / "pk1cmt.toml").read_text()
# one subject: 100 mg into the depot, observed at 1 h and 2 h
DATA = pd.DataFrame({"ID": [1, 1, 1], "TIME": [0.0, 1.0, 2.0], "EVID": [1, 0, 0],
                     "AMT": [100.0, 0.0, 0.0], "CMT": [1, 0, 0]})
CODE = "import os; os.system('touch PWNED')"   # run, it would leave PWNED in the working folder
ALLOWED_IMPORTS = {"math"}


def _model_file(folder, *, name="pk1cmt_variant", file_name="variant.toml", cent=None, output=None):
    """pk1cmt with another name, file name, CENT equation or CP expression."""
    text = PK1CMT.replace('name = "pk1cmt"', f"name = {_toml_string(name)}")
    if cent is not None:
        text = text.replace('CENT = "KA*DEPOT - CL/V*CENT"', f'CENT = "{cent}"')
    if output is not None:
        text = text.replace('CP = { expr = "CENT/V"', f'CP = {{ expr = "{output}"')
    path = folder / file_name
    path.write_text(text)
    return path


def _toml_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _fresh_module(model):
    """Import the model's generated module anew (plain Python functions; executing it compiles nothing)."""
    sys.modules.pop(generated_location(model)[1], None)
    return dataclasses.replace(model, _module=None, _kernels=None).module


def _fresh_kernels(model):
    """The model's functions compiled anew in this process (loaded from the disk cache when it holds them)."""
    sys.modules.pop(generated_location(model)[1], None)
    return dataclasses.replace(model, _module=None, _kernels=None).kernels


def _environment(module, model):
    """The model's environment at its default inputs (derived parameters and hoisted terms filled in)."""
    e = np.zeros(module.N_ENV)
    e[:module.N_INPUTS] = model.input_defaults
    module.model_derive(e)
    return e


def _top_level_imports(source):
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    return names


# --- names and file names never run code (issue 13, point 3) ---------------------------

def test_model_name_with_a_newline_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    path = _model_file(tmp_path, name="x\n" + CODE)
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(path)
    message = str(error.value)
    assert message.startswith("variant.toml: model.name: must be 1 to 64 letters") and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("name", ["a" * 65, "", " leading space", "tab\there", "semi;colon", "kétamine"])
def test_model_name_outside_the_rule_is_refused(tmp_path, name):
    with pytest.raises(pkpd.ModelError, match=r"^variant.toml: model.name: must be 1 to 64"):
        pkpd.load_model(_model_file(tmp_path, name=name))


def test_file_name_with_a_newline_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PKPD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    path = _model_file(tmp_path, file_name="m\n" + CODE + " #.toml")
    model = pkpd.load_model(path)
    source = generate_source(model)
    assert _top_level_imports(source) == ALLOWED_IMPORTS
    module = _fresh_module(model)          # executes the generated module
    assert not marker.exists()
    assert module.N_STATES == 2


def test_errors_about_a_file_with_a_newline_stay_on_one_line(tmp_path):
    path = _model_file(tmp_path, file_name="m\nx.toml", cent="KA*DEPOT - CL/W*CENT")
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(path)
    assert str(error.value).startswith("'m\\nx.toml': odes.CENT: unknown name 'W'")


def test_parameter_names_must_be_ascii(tmp_path):
    # Python folds identifiers (NFKC): 'Kﬁ' would become 'Kfi' and merge with another name
    path = _model_file(tmp_path, cent="KA*DEPOT - CL/V*CENT")
    path.write_text(path.read_text().replace("[covariates]", '[covariates]\n"Kﬁ" = { value = 1.0, unit = "1" }'))
    with pytest.raises(pkpd.ModelError, match=r"covariates.Kﬁ: 'Kﬁ' is not a valid name"):
        pkpd.load_model(path)


def test_long_model_name_gives_a_short_module_file(tmp_path):
    model = pkpd.load_model(_model_file(tmp_path, name="n" * 64))
    _, module_name, file = generated_location(model)
    assert module_name.isidentifier() and len(file.name) < 80


# --- expressions: n-ary min/max, long sums, deep nesting, huge numbers (point 6) ---------

def test_max_of_three_arguments_is_differentiated_piecewise(tmp_path, monkeypatch):
    monkeypatch.setenv("PKPD_CACHE_DIR", str(tmp_path / "cache"))
    model = pkpd.load_model(_model_file(tmp_path, cent="KA*DEPOT - CL/V*max(CENT - 1, 0, 2*CENT - 5)"))
    assert not model.is_linear
    module = _fresh_module(model)   # the model's functions in Python: nothing compiles
    e = _environment(module, model)
    for cent, largest, slope in ((0.5, 0.0, 0.0), (3.0, 2.0, 1.0), (6.0, 7.0, 2.0)):   # each argument in turn
        dydt, jacobian = np.zeros(2), np.zeros((2, 2))
        module.model_rhs(np.array([1.0, cent]), e, dydt)
        module.model_jacobian(np.array([1.0, cent]), e, jacobian.ravel())
        assert dydt[1] == 1.0 - 1.0 / 20.0 * largest     # KA = 1 /h, DEPOT = 1 mg, CL = 1 L/h, V = 20 L
        assert jacobian[1, 1] == -slope / 20.0


def test_nonlinear_names_are_those_of_the_jacobian_entries_that_depend_on_amounts(tmp_path):
    # pk1cmt is linear: no Jacobian entry depends on an amount
    assert pkpd.load_model(_model_file(tmp_path)).nonlinear_names() == set()
    # d(CENT')/dCENT = -CL/V - 2*CL*CENT/V depends on CENT; d(CENT')/dDEPOT = KA does not
    model = pkpd.load_model(_model_file(tmp_path, cent="KA*DEPOT - CL/V*CENT - CL*CENT*CENT/V"))
    assert model.nonlinear_names() == {"CL", "V", "CENT"}


def test_a_sum_of_600_terms_is_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PKPD_CACHE_DIR", str(tmp_path / "cache"))
    terms = " + ".join(f"{k}e-3*CL/V*CENT" for k in range(600))
    model = pkpd.load_model(_model_file(tmp_path, cent=f"KA*DEPOT - {terms}"))
    assert model.is_linear
    module = _fresh_module(model)
    e = _environment(module, model)
    dydt, jacobian = np.zeros(2), np.zeros((2, 2))
    module.model_rhs(np.array([1.0, 1.0]), e, dydt)
    module.model_jacobian(np.array([1.0, 1.0]), e, jacobian.ravel())
    rate = sum(k * 1e-3 for k in range(600)) / 20.0      # CL = 1 L/h, V = 20 L
    assert dydt[1] == pytest.approx(1.0 + rate, rel=1e-12)
    assert jacobian[1, 1] == pytest.approx(rate, rel=1e-12)


@pytest.mark.parametrize("shape", ["sum", "product", "power", "minus", "division"])
def test_expressions_at_the_depth_limit_compile_in_a_thread(tmp_path, shape):
    n = 998   # the limit is 1,000 levels: a name, 998 operators, a name
    cent = {"sum": "CENT" + " + CENT" * n, "product": "CENT" + " * KA" * n, "power": "CENT" + " ** KA" * n,
            "minus": "-" * n + "CENT", "division": "CENT" + " / KA" * n}[shape]
    outcome = []
    limit = sys.getrecursionlimit()

    def build():   # in a thread, as in a thread-pool worker: a thread's C stack must do too
        model = pkpd.load_model(_model_file(tmp_path, cent=cent))
        compile(generate_source(model), "generated", "exec")
        outcome.append("compiled")

    thread = threading.Thread(target=build)
    thread.start()
    thread.join()
    assert outcome == ["compiled"]
    assert sys.getrecursionlimit() == limit


@pytest.mark.parametrize("cent", ["CENT" + " + CENT" * 1500, "CENT" + " + CENT" * 5000, "-" * 100_000 + "CENT"])
def test_expression_deeper_than_the_limit_is_refused(tmp_path, cent):
    with pytest.raises(pkpd.ModelError, match=r"^variant.toml: odes.CENT: is nested too deeply"):
        pkpd.load_model(_model_file(tmp_path, cent=cent))


def test_derivative_too_deep_for_python_is_refused(tmp_path):
    # d(CENT**300)/dCENT written out by the product rule nests 300 parentheses (Python takes 200)
    model = pkpd.load_model(_model_file(tmp_path, cent="CENT" + " * CENT" * 299))
    with pytest.raises(pkpd.ModelError, match=r"^variant.toml: odes.CENT: its derivative by CENT is nested too "
                                              r"deeply for Python to compile"):
        generate_source(model)


@pytest.mark.parametrize("number", ["1" * 400, "1e400", "1" * 5000])
def test_number_beyond_double_precision_is_refused(tmp_path, number):
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(_model_file(tmp_path, output=f"CENT/V*{number}"))
    message = str(error.value)
    assert message.startswith("variant.toml: outputs.CP.expr: ") and "\n" not in message
    assert "not a finite double" in message or "integer string conversion" in message


# --- zero or infinite parameters end in a status, not SystemError (point 4) --------------

@pytest.mark.parametrize("case", ["column V=0", "V set to 0", "TIME=1e308"])
def test_exact_path_with_a_zero_volume_or_a_huge_time_fails_the_subject(case):
    model = pkpd.load_model("pk1cmt")
    data = DATA
    if case == "column V=0":
        data = DATA.assign(V=0.0)
    elif case == "V set to 0":
        model = model.with_parameters({"V": 0.0})
    else:
        data = DATA.assign(TIME=[0.0, 1.0, 1e308])
    with pytest.raises(pkpd.SimulationError) as error:
        pkpd.simulate_data(model, data, method="exact")
    assert str(error.value) == f"subject 1: {MESSAGES[11]}"


@pytest.mark.parametrize("method", ["rk45", "rosenbrock"])
def test_integrators_with_a_zero_volume_fail_the_subject(method):
    with pytest.raises(pkpd.SimulationError, match="a state became NaN or infinite"):
        pkpd.simulate_data("pk1cmt", DATA.assign(V=0.0), method=method)


def test_rosenbrock_integrates_an_extreme_clearance():
    # k = CL/V = 5e306 /h: amounts in CENT are KA*DEPOT/k, not the untouched dose of a skipped step
    result = pkpd.simulate_data("pk1cmt", DATA.assign(CL=1e308), method="rosenbrock")
    np.testing.assert_allclose(result["CP"].iloc[1:], 100 * np.exp(-np.array([1.0, 2.0])) / 1e308,
                               rtol=1e-6)


def test_command_line_zero_volume_exits_3_with_one_line(tmp_path, capsys):
    data = tmp_path / "data.csv"
    DATA.assign(V=0.0).to_csv(data, index=False)
    assert main(["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "out.csv"), "--method", "exact"]) == 3
    assert capsys.readouterr().err == f"error: simulation failed: subject 1: {MESSAGES[11]}\n"


# --- the model cache: not a folder, unwritable, corrupt (points 5 and 8) -----------------

def test_cache_dir_that_is_a_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    monkeypatch.setenv("PKPD_CACHE_DIR", str(cache))
    with pytest.raises(pkpd.PkpdError, match=rf"^PKPD_CACHE_DIR={cache}: not a folder$"):
        pkpd.load_model("pk1cmt").module
    assert main(["simulate", "pk1cmt", str(ROOT / "scenarios" / "data" / "example_pk1cmt.csv"),
                 "-o", str(tmp_path / "out.csv")]) == 2
    assert capsys.readouterr().err == f"error: PKPD_CACHE_DIR={cache}: not a folder\n"


def test_cache_dir_that_cannot_be_created_is_a_one_line_error(tmp_path, monkeypatch):
    model = pkpd.load_model(_model_file(tmp_path, name="not_imported_yet"))   # a module to write
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PKPD_CACHE_DIR", str(tmp_path / "file" / "cache"))
    with pytest.raises(pkpd.PkpdError, match=r"^PKPD_CACHE_DIR=.*/file/cache: cannot write the compiled model "
                                             r"there \(Not a directory\); set PKPD_CACHE_DIR to a writable folder$"):
        model.module


@pytest.fixture(scope="module")
def compiled_cache(tmp_path_factory):
    """A cache holding pk1cmt_iiv's generated module and its seven compiled functions (about a second)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PKPD_CACHE_DIR", str(folder))
        model = pkpd.load_model(TEST_MODELS / "pk1cmt_iiv.toml")
        _kernel_results(_fresh_kernels(model), model)
    return folder


def _kernel_results(kernels, model):
    """The compiled derive and Jacobian at the model's default inputs."""
    e = np.zeros(model.module.N_ENV)
    e[:model.module.N_INPUTS] = model.input_defaults
    kernels.derive(pointer(e))
    jacobian = np.zeros((2, 2))
    kernels.jacobian(pointer(np.zeros(2)), pointer(e), pointer(jacobian))
    return e, jacobian


def _corrupt(path, how):
    data = path.read_bytes()
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "garbage":
        data = bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8))
    else:   # garbled inside: a run of bytes inverted in the middle
        middle = len(data) // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:]
    path.write_bytes(data)


@pytest.mark.parametrize("how", ["truncated", "garbage", "garbled"])
@pytest.mark.parametrize("kind", [".py", ".nbi", ".nbc"])
def test_corrupt_cache_entry_is_reported_once_and_rebuilt(compiled_cache, tmp_path, monkeypatch, capfd, kind, how):
    folder = tmp_path / "cache"
    shutil.copytree(compiled_cache, folder)
    monkeypatch.setenv("PKPD_CACHE_DIR", str(folder))
    model = pkpd.load_model(TEST_MODELS / "pk1cmt_iiv.toml")
    expected = _kernel_results(_fresh_kernels(model), model)
    capfd.readouterr()
    _, module_name, file = generated_location(model)
    target = file if kind == ".py" else next((folder / "__pycache__").glob(f"{module_name}.model_derive-*{kind}"))
    _corrupt(target, how)

    for got, want in zip(_kernel_results(_fresh_kernels(model), model), expected):
        np.testing.assert_array_equal(got, want)
    assert capfd.readouterr().err == "pkpd: cache entry for model pk1cmt_iiv was corrupt; rebuilding\n"

    # the next run loads the rebuilt entry from the cache, silently
    _kernel_results(_fresh_kernels(model), model)
    assert capfd.readouterr().err == ""
    assert all(function.cache_hits == 1 for function in sys.modules[module_name].COMPILED.values())


def test_parameter_name_with_a_newline_gives_a_one_line_error(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[model]\nname = "m"\n[compartments]\nC = { number = 1 }\n'
                    '[parameters]\n"K\\nimport os" = { value = 1, unit = "1/h", description = "d", source = "s" }\n'
                    '[odes]\nC = "-C"\n', encoding="utf-8")
    with pytest.raises(pkpd.ModelError) as error:
        pkpd.load_model(path)
    assert "\n" not in str(error.value) and "parameters." in str(error.value)
