"""Parameter uncertainty (issue 19): specifications, draws, simulation and trials with draws.

Oracles are closed forms (log-normal moments and quantiles, AUC = dose/CL, uniform and
triangular moments), the specified covariance, and the ordinary run itself for the
zero-uncertainty identity (which must hold exactly, not approximately).
"""

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import stats

import pkpd
from pkpd import UncertaintyOptions
from pkpd.study.draws import scenario_with
from pkpd._errors import ModelError, ScenarioError
from pkpd.model import Parameter
from pkpd._uncertainty import parse_uncertainty

from conftest import ROOT, TEST_MODELS

PK1 = "pk1cmt"
UNCERTAIN = TEST_MODELS / "pk1cmt_uncertain.toml"


def _lognormal_cl(rse=20.0):
    return pkpd.load_model(PK1).with_uncertainty({"CL": {"rse": rse, "distribution": "log-normal", "source": "test"}})


def _parameters(**values):
    return {name: Parameter(name, value, "1", "", "", "") for name, value in values.items()}


# --- specifications and draws -------------------------------------------------------------------------

def test_lognormal_draws_match_the_closed_form():
    model = _lognormal_cl(rse=30.0)
    draws = model.uncertainty.sample(10_000, seed=11)["CL"].to_numpy()
    s2 = math.log1p(0.3 ** 2)            # CV 30 % -> variance of the log
    mean, sd = math.exp(s2 / 2), math.sqrt((math.exp(s2) - 1) * math.exp(s2))
    assert abs(draws.mean() - mean) < 4 * sd / 100
    assert abs(np.log(draws).std(ddof=1) - math.sqrt(s2)) < 4 * math.sqrt(s2) / math.sqrt(2 * 10_000)


def test_ci95_is_a_lognormal_around_the_value_with_the_interval_as_its_width():
    uncertainty = parse_uncertainty("m.toml", _parameters(C50=10.5), {"C50": {"ci95": [4.37, 21.2], "source": "t"}})
    marginal = uncertainty.marginals["C50"]
    assert marginal.distribution == "log-normal"
    low, high = marginal.ends()
    assert math.isclose(high / low, 21.2 / 4.37)                 # the CI's width
    assert math.isclose(math.sqrt(low * high), 10.5)             # centred on the estimate
    draws = uncertainty.sample(10_000, seed=3)["C50"]
    assert abs(np.median(draws) / 10.5 - 1) < 0.02


@pytest.mark.parametrize("kind, spec, mean", [
    ("uniform", {"low": 2.0, "high": 6.0}, 4.0),
    ("log-uniform", {"low": 1.0, "high": math.e ** 2}, (math.e ** 2 - 1) / 2),
    ("triangular", {"low": 0.0, "high": 3.0, "mode": 1.0}, 4.0 / 3),
])
def test_range_distributions_have_their_closed_form_means_and_ends(kind, spec, mean):
    uncertainty = parse_uncertainty("m.toml", _parameters(P=spec.get("mode", 2.0)),
                                    {"P": {**spec, "distribution": kind, "source": "assumption"}})
    draws = uncertainty.sample(20_000, seed=5)["P"].to_numpy()
    assert draws.min() >= spec["low"] and draws.max() <= spec["high"]
    assert abs(draws.mean() - mean) < 4 * draws.std() / math.sqrt(draws.size)
    assert uncertainty.ends()["P"] == (spec["low"], spec["high"])


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_a_covariance_block_has_its_sample_covariance(scale):
    covariance = [[0.04, 0.018], [0.018, 0.09]]
    uncertainty = parse_uncertainty("m.toml", _parameters(CL=2.0, V=10.0), {},
                                    [{"parameters": ["CL", "V"], "covariance": covariance, "scale": scale,
                                      "source": "t"}])
    draws = uncertainty.sample(20_000, seed=2)[["CL", "V"]].to_numpy()
    shifted = np.log(draws / [2.0, 10.0]) if scale == "log" else draws - [2.0, 10.0]
    assert np.allclose(np.cov(shifted.T), covariance, atol=0.004)


def test_draws_are_reproducible_and_a_draw_depends_only_on_seed_index_and_parameter():
    model = pkpd.load_model(PK1).with_uncertainty({"CL": {"rse": 20, "source": "t"},
                                                   "V": {"low": 10.0, "high": 30.0, "source": "t"}})
    whole = model.uncertainty.sample(100, seed=7)
    assert whole.equals(model.uncertainty.sample(100, seed=7))
    later = model.uncertainty.sample(50, seed=7, first=50)
    assert np.array_equal(whole.iloc[50:].to_numpy(), later.to_numpy())
    alone = model.uncertainty.subset(["V"]).sample(100, seed=7)
    assert np.array_equal(alone["V"].to_numpy(), whole["V"].to_numpy())
    assert not np.array_equal(whole["CL"].to_numpy(), model.uncertainty.sample(100, seed=8)["CL"].to_numpy())


@pytest.mark.parametrize("specs, blocks, key, rule", [
    ({"CL": {"se": -0.1, "source": "t"}}, [], "CL.uncertainty.se", "must be >= 0"),
    ({"CL": {"ci95": [2.0, 0.5], "source": "t"}}, [], "CL.uncertainty.ci95", "bounds reversed"),
    ({"CL": {"low": 3.0, "high": 0.5, "source": "t"}}, [], "CL.uncertainty.low/high", "bounds reversed"),
    ({"CL": {"low": 0.5, "high": 3.0, "distribution": "lognormal", "source": "t"}}, [], "CL.uncertainty.distribution",
     "did you mean 'log-normal'"),
    ({"CLX": {"se": 0.1, "source": "t"}}, [], "CLX", "no parameter 'CLX'"),
    ({"CL": {"se": 0.1}}, [], "CL.uncertainty.source", "is required"),
    ({}, [{"parameters": ["CL", "V"], "covariance": [[1.0, 2.0], [2.0, 1.0]], "scale": "linear", "source": "t"}],
     "uncertainty[0].covariance", "must be positive definite"),
])
def test_a_bad_specification_is_one_error_naming_key_and_rule(specs, blocks, key, rule):
    with pytest.raises(ModelError) as caught:
        pkpd.load_model(PK1).with_uncertainty(specs, blocks)
    error = caught.value
    assert error.file == "pk1cmt.toml" and error.key.endswith(key) and rule in str(error)
    assert "\n" not in str(error)


def test_pkpd_validate_refuses_a_bad_uncertainty_in_the_model_file_before_compiling(tmp_path, capsys):
    text = UNCERTAIN.read_text().replace("rse = 20,", "rse = -20,")
    (tmp_path / "bad.toml").write_text(text)
    (tmp_path / "s.toml").write_text('model = "bad.toml"\n[[arms]]\nname = "a"\ndoses = []\n'
                                     '[outputs]\ntimes = { start = "0 h", stop = "2 h", step = "1 h" }\n')
    from pkpd._cli import main

    assert main(["validate", str(tmp_path / "s.toml")]) == 2
    message = capsys.readouterr().err.strip()
    assert message == "error: bad.toml: parameters.CL.uncertainty.rse: must be >= 0 (a standard error); got -20"


def test_a_derived_model_with_other_values_shares_the_compiled_module():
    model = _lognormal_cl()
    module = model.module
    derived = model.with_parameters({"CL": 1.7, "V": 12.0})
    assert derived.module is module and derived.hash == model.hash
    assert derived.uncertainty.names == []           # a value the user sets is known


# --- simulation with uncertainty ----------------------------------------------------------------------

@pytest.mark.models(PK1)
def test_auc_over_draws_is_dose_over_cl_and_has_the_analytic_distribution():
    model = _lognormal_cl(rse=25.0)
    times = np.arange(0.0, 1500.0, 2.0)                 # k >= 0.02/h: the tail after 1500 h is < 1e-13
    result = pkpd.simulate(model, [pkpd.Dose(100.0, "CENT")], pkpd.Population(2, seed=1), times,
                           uncertainty=UncertaintyOptions(draws=200, seed=4), progress=False)
    auc = result.statistics.query("metric == 'auc'").set_index("draw")["median"]
    assert np.allclose(auc.to_numpy(), 100.0 / result.draws["CL"].to_numpy(), rtol=1e-6)
    # quantiles of AUC over draws against the log-normal of 100/CL (median 100, log-SD of CL)
    s = math.sqrt(math.log1p(0.25 ** 2))
    for q in (0.1, 0.5, 0.9):
        expected = 100.0 * math.exp(-s * stats.norm.ppf(1 - q))
        rank_error = 3 * math.sqrt(q * (1 - q) / 200) / stats.norm.pdf(stats.norm.ppf(q)) * s * expected
        assert abs(np.quantile(auc, q) - expected) < rank_error


@pytest.mark.models(PK1)
def test_draws_do_not_depend_on_the_executor():
    model = _lognormal_cl()
    arguments = (model, [pkpd.Dose(100.0, "DEPOT")], pkpd.Population(30, seed=2), np.arange(0.0, 48.0, 2.0))
    here = pkpd.simulate(*arguments, uncertainty=8, progress=False)
    with ThreadPoolExecutor(2) as executor:
        threads = pkpd.simulate(*arguments, uncertainty=8, progress=False, executor=executor)
    for key, table in here.percentiles.items():
        assert np.array_equal(table, threads.percentiles[key])
    assert here.statistics.equals(threads.statistics)


@pytest.mark.models("ketamine_mg_pain")
def test_zero_uncertainty_reproduces_the_ordinary_run_exactly():
    # ketamine_mg_pain is nonlinear with ALPHA = 0 folded away: the draws must take the same engine path
    model = pkpd.load_model("ketamine_mg_pain").with_uncertainty({"C50_CHR": {"se": 0.0, "source": "zero"},
                                                                  "CL": {"rse": 0.0, "distribution": "log-normal",
                                                                         "source": "zero"}})
    regimen = [pkpd.Dose(0.5, "KET_CENT", duration=2.0, per_weight=True)]
    population, times = pkpd.Population(5, seed=3), np.arange(0.0, 48.0, 1.0)
    ordinary = pkpd.simulate(model, regimen, population, times, progress=False)
    drawn = pkpd.simulate(model, regimen, population, times, uncertainty=3, progress=False)
    assert (drawn.draws["C50_CHR"] == 10.5).all() and (drawn.draws["CL"] == 84.0).all()
    for output in ("KETAMINE", "PAIN"):
        expected = np.percentile(ordinary.output(output), [5, 50, 95], axis=0)
        for draw in range(3):
            assert np.array_equal(drawn.percentiles[("regimen", output)][draw], expected)


# --- trials: power per draw and assurance -------------------------------------------------------------

def _trial_scenario(tmp_path):
    text = '''model = "ketamine_mg_pain"
seed = 5
[population]
n = 4
[[arms]]
name = "saline"
doses = []
[[arms]]
name = "ketamine"
doses = [{ drug = "ketamine", amount = "1 mg/kg", duration = "2 h" }]
[outputs]
times = { start = "0 h", stop = "2 d", step = "6 h" }
variables = ["KETAMINE", "PAIN"]
[trial]
period = "14 d"
baseline = "7 d"
n = [6, 12]
replicates = 12
endpoint = { type = "auc", output = "PAIN", days = [1, 14] }
'''
    (tmp_path / "trial.toml").write_text(text)
    return pkpd.load_scenario(tmp_path / "trial.toml")


@pytest.mark.models("ketamine_mg_pain")
def test_assurance_is_the_mean_of_power_over_draws(tmp_path):
    scenario = _trial_scenario(tmp_path)
    result = pkpd.trial(scenario, uncertainty=UncertaintyOptions(draws=4, parameters=("C50_CHR", "EMAX_CHR")))
    table = result.assurance()
    by_hand = result.power.groupby(["comparison", "n_total"])["power"].mean()
    for row in table.itertuples():
        assert row.assurance == by_hand[(row.comparison, row.n_total)]
        assert row.draws == 4
    assert result.power["mean_estimate"].nunique() == len(result.power)   # every draw moves the trial


@pytest.mark.models("ketamine_mg_pain")
def test_without_uncertainty_assurance_equals_power(tmp_path):
    scenario = _trial_scenario(tmp_path)
    scenario = dataclasses.replace(scenario, model=scenario.model.with_uncertainty(
        {"C50_CHR": {"se": 0.0, "source": "none"}}))
    power = pkpd.trial(scenario)
    result = pkpd.trial(scenario, uncertainty=2)
    merged = result.assurance().merge(power, on=["comparison", "n_total"])
    assert np.array_equal(merged["assurance"].to_numpy(), merged["power"].to_numpy())


def test_scenario_with_leaves_the_arms_own_settings(tmp_path):
    scenario = _trial_scenario(tmp_path)
    derived = scenario_with(scenario, {"C50_CHR": 20.0}, "test")
    assert derived.model.parameters["C50_CHR"].value == 20.0
    assert scenario.model.parameters["C50_CHR"].value == 10.5


# --- scenario sections ----------------------------------------------------------------------------------

def _scenario_text(extra):
    return (f'model = "{UNCERTAIN.as_posix()}"\nseed = 3\n[population]\nn = 2\n'
            '[[arms]]\nname = "100 mg"\ndoses = [{ drug = "CENT", amount = "100 mg" }]\n'
            '[outputs]\ntimes = { start = "0 h", stop = "60 d", step = "2 h" }\nvariables = ["CP"]\n' + extra)


@pytest.mark.parametrize("extra, key, rule", [
    ("[uncertainty]\ndraws = 0\n", "uncertainty.draws", "must be an integer >= 1"),
    ("[uncertainty]\ndraws = 5\nparameters = ['CLL']\n", "uncertainty.parameters[0]", "has no uncertainty"),
    ("[uncertainty]\ndraws = 5\nlevel = 120\n", "uncertainty.level", "must be a percentage"),
    ("[sensitivity]\nmetrics = ['CP bogus']\n", "sensitivity.metrics[0]", "unknown metric 'bogus'"),
    ("[sensitivity]\nmetrics = ['power']\n", "sensitivity.metrics[0]", "needs a [trial] section"),
    ("[sensitivity]\nmetrics = ['CP auc']\nsobol = { metric = 'CP auc', samples = 20 }\n", "sensitivity.sobol.samples",
     "power of 2"),
])
def test_bad_scenario_sections_are_one_line_errors(tmp_path, extra, key, rule):
    (tmp_path / "s.toml").write_text(_scenario_text(extra))
    with pytest.raises(ScenarioError) as caught:
        pkpd.load_scenario(tmp_path / "s.toml")
    assert caught.value.key == key and rule in str(caught.value) and caught.value.file == "s.toml"


@pytest.mark.models(str(UNCERTAIN))
def test_a_run_writes_the_uncertainty_tables_figures_and_manifest(tmp_path):
    (tmp_path / "s.toml").write_text(_scenario_text(
        "[uncertainty]\ndraws = 6\n[sensitivity]\nmetrics = ['CP auc', 'CP cmax']\n"))
    run = pkpd.run_scenario(pkpd.load_scenario(tmp_path / "s.toml"), tmp_path / "out", progress=False)
    folder = tmp_path / "out"
    for name in ("uncertainty_draws", "uncertainty_profiles", "uncertainty_summary", "sensitivity"):
        assert (folder / f"{name}.csv").is_file()
    stems = {item["file"] for item in run.manifest["figures"]}
    assert {"uncertainty_cp.png", "tornado_cp_auc_100_mg.png", "tornado_cp_cmax_100_mg.png"} <= stems
    assert run.manifest["uncertainty"]["draws"] == 6
    assert [p["parameter"] for p in run.manifest["uncertainty"]["parameters"]] == ["CL", "V", "KA"]
    intervals = run.uncertainty.summary_intervals()
    row = intervals[(intervals["metric"] == "auc") & (intervals["statistic"] == "median")].iloc[0]
    assert row["low"] < 100.0 < row["high"] and row["unit"] == "mg/L*h"


def test_library_assumptions_of_ketamine_mg_pain_all_have_a_range():
    model = pkpd.load_model(ROOT / "models" / "ketamine_mg_pain.toml")
    missing = [n for n, p in model.parameters.items()
               if p.reliability == "assumption" and not p.allowed and n not in model.uncertainty.names]
    assert missing == []
    for name in model.uncertainty.names:
        assert model.uncertainty.marginals[name].source


# Published relative standard errors (%): Otto 2021 Table 3 (S-norketamine) and Du 2019 Table 3.
PUBLISHED_RSE = {
    "esketamine_otto2021": {"V_NK": 3.77, "CL_NK": 5.7, "VP_NK": 17.6, "Q_NK": 7.51},
    "ketamine_kamp2020": {"V_NK": 3.77, "CL_NK": 5.7, "VP_NK": 17.6, "Q_NK": 7.51},
    "magnesium_du2019": {"CL": 3.5, "VC": 11.6, "Q": 24.5, "VP": 9.8, "CL_SCR": 14.2},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_RSE))
def test_library_models_carry_the_published_relative_standard_errors(name):
    model = pkpd.load_model(ROOT / "models" / f"{name}.toml")
    for parameter, rse in PUBLISHED_RSE[name].items():
        marginal = model.uncertainty.marginals[parameter]
        value = model.parameters[parameter].value
        assert marginal.given == "rse" and "Table 3" in marginal.source
        if marginal.distribution == "log-normal":    # CV = RSE: log-SD = sqrt(ln(1 + CV^2))
            assert (marginal.location, marginal.scale) == pytest.approx((value, math.sqrt(math.log1p((rse / 100) ** 2))))
        else:                                        # normal: SD = RSE x |value|
            assert (marginal.location, marginal.scale) == pytest.approx((value, rse / 100 * abs(value)))


@pytest.mark.models("ketamine_mg_pain")
def test_the_assurance_figure_draws_the_assurance_and_the_band_of_power(tmp_path):
    from pkpd.figures import assurance_figure

    result = pkpd.trial(_trial_scenario(tmp_path), uncertainty=UncertaintyOptions(draws=3, parameters=("C50_CHR",)))
    table = result.assurance()
    fig = assurance_figure(result)
    axes = fig.axes[0]
    comparison = table["comparison"].iloc[0]
    line = next(l for l in axes.get_lines() if l.get_label() == f"assurance: {comparison}")
    assert np.allclose(line.get_ydata(), 100 * table["assurance"]) and np.allclose(line.get_xdata(), table["n_total"])
    band = next(c for c in axes.collections if c.get_label() == f"_power_band|{comparison}")
    y = band.get_paths()[0].vertices[:, 1]
    assert np.isclose(y.min(), 100 * table["power_low"].min()) and np.isclose(y.max(), 100 * table["power_high"].max())
