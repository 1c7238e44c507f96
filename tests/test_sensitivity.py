"""Sensitivity (issue 19): the one-at-a-time tornado against AUC = dose/CL, Sobol indices of the
Ishigami function against their analytic values, and Sobol indices of a PK model's AUC."""

import math

import numpy as np
import pytest

import pkpd
from pkpd.model import Parameter
from pkpd.study.sensitivity import scenario_sobol, sobol_indices, tornado
from pkpd._uncertainty import parse_uncertainty

from conftest import TEST_MODELS

UNCERTAIN = TEST_MODELS / "pk1cmt_uncertain.toml"
pytestmark = pytest.mark.models(str(UNCERTAIN))


def _scenario(tmp_path, sensitivity):
    (tmp_path / "s.toml").write_text(
        f'model = "{UNCERTAIN.as_posix()}"\nseed = 3\n[population]\nn = 2\n'
        '[[arms]]\nname = "100 mg"\ndoses = [{ drug = "CENT", amount = "100 mg" }]\n'
        '[outputs]\ntimes = { start = "0 h", stop = "60 d", step = "2 h" }\nvariables = ["CP"]\n'
        f'[sensitivity]\n{sensitivity}')
    return pkpd.load_scenario(tmp_path / "s.toml")


def test_tornado_of_auc_after_a_bolus_has_the_analytic_ends(tmp_path):
    scenario = _scenario(tmp_path, "metrics = ['CP auc', 'CP cmax']\n")
    table = tornado(scenario, scenario.make_population(), scenario.sensitivity, progress=False)
    auc = table[table["metric"] == "CP auc"].set_index("parameter")
    low, high = scenario.model.uncertainty.ends()["CL"]       # CL log-normal, RSE 20 %: 2.5 and 97.5 % quantiles
    assert math.isclose(low, math.exp(-1.959964 * math.sqrt(math.log1p(0.04))), rel_tol=1e-6)
    assert math.isclose(auc.loc["CL", "at_low"], 100.0 / low, rel_tol=1e-6)
    assert math.isclose(auc.loc["CL", "at_high"], 100.0 / high, rel_tol=1e-6)
    assert math.isclose(auc.loc["CL", "nominal"], 100.0, rel_tol=1e-6)
    assert auc.index[0] == "CL"                                # ranked first
    assert auc.loc["V", "swing"] < 1e-6 * 100 and auc.loc["KA", "swing"] < 1e-6 * 100   # AUC = dose/CL only
    cmax = table[table["metric"] == "CP cmax"].set_index("parameter")   # bolus: Cmax = dose/V
    assert math.isclose(cmax.loc["V", "at_low"], 100.0 / 15.0, rel_tol=1e-9)
    assert math.isclose(cmax.loc["V", "at_high"], 100.0 / 25.0, rel_tol=1e-9)


def _ishigami(frame, a=7.0, b=0.1):
    x1, x2, x3 = (frame[n].to_numpy() for n in ("X1", "X2", "X3"))
    return np.sin(x1) + a * np.sin(x2) ** 2 + b * x3 ** 4 * np.sin(x1)


def test_sobol_indices_of_the_ishigami_function_are_within_their_bootstrap_intervals():
    parameters = {n: Parameter(n, 0.0, "1", "", "", "") for n in ("X1", "X2", "X3")}
    uncertainty = parse_uncertainty("ishigami", parameters, {
        n: {"low": -math.pi, "high": math.pi, "source": "Ishigami and Homma 1990"} for n in parameters})
    table = sobol_indices(uncertainty, _ishigami, samples=2048, bootstrap=200, seed=1).set_index("group")
    # analytic indices for a = 7, b = 0.1 (Saltelli et al. 2008, Global Sensitivity Analysis, 4.3)
    a, b = 7.0, 0.1
    v1 = 0.5 * (1 + b * math.pi ** 4 / 5) ** 2
    v2 = a ** 2 / 8
    v13 = b ** 2 * math.pi ** 8 * (1 / 18 - 1 / 50)
    total = v1 + v2 + v13
    first = {"X1": v1 / total, "X2": v2 / total, "X3": 0.0}
    totals = {"X1": (v1 + v13) / total, "X2": v2 / total, "X3": v13 / total}
    for name in parameters:
        assert abs(table.loc[name, "S1"] - first[name]) <= table.loc[name, "S1_conf"]
        assert abs(table.loc[name, "ST"] - totals[name]) <= table.loc[name, "ST_conf"]


def test_sobol_of_a_pk_auc_ranks_clearance_first(tmp_path):
    scenario = _scenario(tmp_path, "metrics = ['CP auc']\nsobol = { metric = 'CP auc', samples = 16, bootstrap = 100 }\n")
    table = scenario_sobol(scenario, scenario.make_population(), scenario.sensitivity, progress=False).set_index("group")
    assert table["S1"].sum() <= 1 + table["S1_conf"].sum()
    assert table["S1"].idxmax() == "CL" and table["ST"].idxmax() == "CL"
    assert table.attrs["evaluations"] == 16 * (3 + 2)
