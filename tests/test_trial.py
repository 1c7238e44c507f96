"""Crossover trial simulation and power: validity under the null, the analysis against statsmodels,
power rising with sample size and effect size."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import ROOT, PicklingExecutor
from pkpd.study.scenario import load_scenario
from pkpd.study.trial import analyse, compare, fit_linear_model, power_table, trial
from pkpd.study.trial_design import TrialDesign, designs_of, parse_trial, williams_sequences

NULL = """
# Two identical saline arms: any rejection is a false positive.
model = "ketamine_mg_pain"
seed = 99
[population]
n = 20
[[arms]]
name = "saline A"
doses = []
[[arms]]
name = "saline B"
doses = []
[outputs]
times = { start = "0 h", stop = "1 d", step = "1 d" }
variables = ["PAIN"]
[trial]
design = "crossover"
period = "35 d"
baseline = "14 d"
n = [20]
replicates = 20
dropout = 0.1
endpoint = { type = "auc", output = "PAIN", days = [1, 35] }
alpha = 0.05
"""


def test_williams_design_is_balanced_for_carry_over():
    for count in (2, 3, 4, 5):
        square = np.array(williams_sequences(count))
        for period in range(count):  # every treatment equally often in every period
            assert np.all(np.bincount(square[:, period], minlength=count) == square.shape[0] // count)
        pairs = np.zeros((count, count), int)  # every ordered pair of neighbours equally often
        for row in square:
            for a, b in zip(row[:-1], row[1:]):
                pairs[a, b] += 1
        off = pairs[~np.eye(count, dtype=bool)]
        assert np.all(off == off[0])


# (design, arms, sequences, patients): AB/BA, a 3-arm Williams design (6 sequences), parallel arms
NULL_DESIGNS = {
    "crossover_2x2": ("crossover", 2, [[0, 1], [1, 0]], 20),
    "williams_3_arms": ("crossover", 3, williams_sequences(3), 18),
    "parallel_3_arms": ("parallel", 3, [[0], [1], [2]], 30),
}
NULL_REPLICATES = 20_000


def null_design(kind, arms, sequences, n):
    """A trial design for synthetic endpoints: alpha 0.05, every arm against arm 0."""
    return TrialDesign(design=kind, arms=[f"arm {i}" for i in range(arms)], sequences=sequences, period=840.0,
                       washout=0.0, baseline=336.0, sample_sizes=[n], replicates=NULL_REPLICATES, dropout=0.1,
                       endpoint="auc", output="PAIN", days=(1, 35), threshold=None, alpha=0.05,
                       comparisons=[(i, 0) for i in range(1, arms)], scale=None)


def null_endpoints(design, n, seed):
    """Endpoints with no treatment effect (subject and period effects, normal noise) and dropout.

    Returns values (R, n, P), sequence (n,) and stay (R, n, P) as simulate_trial_scores and
    endpoint_values give them; a patient who drops out misses every later period.
    """
    rng = np.random.default_rng(seed)
    periods = design.n_periods
    shape = (NULL_REPLICATES, n, periods)
    subject = rng.normal(0.0, 30.0, shape[:2])[:, :, None]
    period_effect = np.linspace(0.0, 15.0, periods)      # e.g. pain drifting down over the study
    values = 150.0 + subject + period_effect + rng.normal(0.0, 10.0, shape)
    if design.design == "crossover":
        stay = np.ones(shape, bool)
        stay[:, :, 1:] = np.cumsum(rng.random((NULL_REPLICATES, n, periods - 1)) < design.dropout, axis=2) == 0
    else:
        stay = rng.random(shape) >= design.dropout
    return values, np.arange(n) % len(design.sequences), stay


@pytest.mark.parametrize("case", list(NULL_DESIGNS))
def test_rejection_rate_under_the_null_equals_alpha(case):
    # Under H0 with normal errors the t test of the fixed-effects OLS is exact, also with dropout
    # (incomplete patients): each comparison rejects at rate alpha, and its p-values are uniform.
    # 20,000 synthetic replicates: the 99.9 % binomial band of a true 0.05 is 0.05 +- 0.0051; a
    # residual degrees-of-freedom count that forgot the absorbed subject effects gives 0.13-0.20.
    kind, arms, sequences, n = NULL_DESIGNS[case]
    design = null_design(kind, arms, sequences, n)
    values, sequence, stay = null_endpoints(design, n, seed=sum(map(ord, case)))
    table = power_table(design, values, sequence, stay)
    assert len(table) == arms - 1 and set(table["replicates"]) == {NULL_REPLICATES}
    band = 3.29 * np.sqrt(0.05 * 0.95 / NULL_REPLICATES)
    for _, row in table.iterrows():
        assert abs(row["power"] - 0.05) <= band, row.to_dict()
    for (a, b), (estimate, se, p, low, high) in analyse(design, values, sequence, stay, n).items():
        assert stats.kstest(p, "uniform").pvalue > 0.001, (a, b)
        assert np.mean((low <= 0) & (0 <= high)) == pytest.approx(1 - np.mean(p < 0.05))


@pytest.mark.models("ketamine_mg_pain")
def test_small_crossover_trial_runs_end_to_end(tmp_path):
    # the whole path (virtual patients through the PK/PD model, periods, dropout, analysis) on a few
    # replicates; the analysis' validity is tested above on synthetic endpoints
    path = tmp_path / "null.toml"
    path.write_text(NULL)
    table = trial(load_scenario(path))
    assert len(table) == 1 and table.iloc[0]["replicates"] == 20
    assert table.iloc[0]["comparison"] == "saline B vs saline A"
    assert 0.0 <= table.iloc[0]["power"] <= 1.0 and np.isfinite(table.iloc[0]["mean_estimate"])


def test_analysis_equals_statsmodels_ols_with_dropout():
    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(5)
    n, periods = 18, 3
    order = np.array(williams_sequences(3))[np.arange(n) % 6]
    subject_effect = rng.normal(0, 2, n)
    y = 5 + subject_effect[:, None] + 0.3 * np.arange(periods) - 0.8 * (order == 1) - 0.2 * (order == 2)
    y = y + rng.normal(0, 1, (n, periods))
    mask = np.ones((n, periods), bool)
    mask[[2, 7, 11], 2] = False     # dropped out before period 3
    mask[5, 1:] = False             # dropped out after period 1 (contributes nothing)
    beta, cov, sigma2, df = fit_linear_model(y[None], mask[None], order[None],
                                             np.broadcast_to(np.arange(periods), (1, n, periods)), 3, periods)
    rows = [dict(y=y[i, p], subject=i, period=p, treatment=order[i, p])
            for i in range(n) for p in range(periods) if mask[i, p]]
    fit = smf.ols("y ~ C(subject) + C(period) + C(treatment)", data=pd.DataFrame(rows)).fit()
    for a, b in [(1, 0), (2, 0), (2, 1)]:
        estimate, se, p, low, high = compare(beta, cov, sigma2, df, a, b, 0.05)
        contrast = np.zeros(len(fit.params))
        names = list(fit.params.index)
        if a:
            contrast[names.index(f"C(treatment)[T.{a}]")] += 1
        if b:
            contrast[names.index(f"C(treatment)[T.{b}]")] -= 1
        test = fit.t_test(contrast)
        np.testing.assert_allclose(estimate[0], float(np.squeeze(test.effect)), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(se[0], float(np.squeeze(test.sd)), rtol=1e-8)
        np.testing.assert_allclose(p[0], float(np.squeeze(test.pvalue)), rtol=1e-8, atol=1e-12)
        ci = np.squeeze(test.conf_int(alpha=0.05))
        np.testing.assert_allclose([low[0], high[0]], ci, rtol=1e-8)
    assert df[0] == fit.df_resid


def test_parallel_analysis_equals_statsmodels():
    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(8)
    n = 30
    arm = np.arange(n) % 3
    y = rng.normal(0, 1, n) + 0.5 * (arm == 2)
    mask = np.ones((1, n, 1), bool)
    mask[0, 4, 0] = False
    beta, cov, sigma2, df = fit_linear_model(y[None, :, None], mask, arm[None, :, None],
                                             np.zeros((1, n, 1), int), 3, 1, absorb_subjects=False)
    keep = mask[0, :, 0]
    fit = smf.ols("y ~ C(arm)", data=pd.DataFrame(dict(y=y[keep], arm=arm[keep]))).fit()
    estimate, se, p, _, _ = compare(beta, cov, sigma2, df, 2, 0, 0.05)
    np.testing.assert_allclose(estimate[0], fit.params["C(arm)[T.2]"], rtol=1e-8)
    np.testing.assert_allclose(p[0], fit.pvalues["C(arm)[T.2]"], rtol=1e-8)


@pytest.fixture(scope="module")
def power():
    scenario = load_scenario(ROOT / "scenarios" / "pickering2020_power.toml")
    return trial(scenario, replicates=150)


@pytest.mark.models("ketamine_mg_pain")
def test_power_rises_with_sample_size_and_effect(power):
    table = power.set_index(["comparison", "n_total"])
    strong = "ketamine 2 mg/kg over 2 h vs saline"
    weak = "ketamine 0.5 mg/kg over 2 h vs saline"
    assert table.loc[(strong, 80), "power"] > table.loc[(strong, 20), "power"]
    assert table.loc[(strong, 80), "power"] > table.loc[(weak, 80), "power"]
    # the estimated effect (AUC of pain, ketamine minus saline) grows with the dose
    estimates = [table.loc[(f"ketamine {d} over 2 h vs saline", 80), "mean_estimate"] for d in ("0.5 mg/kg", "1 mg/kg", "2 mg/kg")]
    assert estimates[0] > estimates[1] > estimates[2]
    # Monte Carlo intervals bracket the estimate
    assert np.all((power["power_low"] <= power["power"]) & (power["power"] <= power["power_high"]))


@pytest.mark.models("ketamine_mg_pain")
def test_power_table_columns(power):
    assert list(power.columns[:8]) == ["comparison", "n_total", "power", "power_low", "power_high",
                                       "mean_estimate", "sd_estimate", "mean_ci_width"]
    assert set(power["n_total"]) == {20, 40, 80}


def test_trial_section_validation(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(NULL.replace('dropout = 0.1', 'dropout = 1.5'))
    with pytest.raises(Exception, match=r"bad.toml: trial.dropout: must be a probability in \[0, 1\); got 1.5"):
        designs_of(load_scenario(path))
    path.write_text(NULL.replace('n = [20]', 'n = [20]\nreplicate = 5'))
    with pytest.raises(Exception, match=r"trial.replicate: unknown key; did you mean 'replicates'\?"):
        designs_of(load_scenario(path))
    path.write_text(NULL.replace('name = "saline B"', 'name = "saline B"\nparameters = { ALPHA = 1 }'))
    with pytest.raises(Exception, match=r"bad.toml: arm 'saline B': a trial arm cannot set model parameters"):
        designs_of(load_scenario(path))


def test_inter_occasion_variability_has_the_declared_variance():
    from scipy import stats as st

    import pkpd
    from pkpd._simulate import individual_inputs, occasion_inputs

    model = pkpd.load_model("ketamine_mg_pain")
    population = pkpd.Population(20_000, seed=4)
    inputs, _ = individual_inputs(model, population)
    table = occasion_inputs(model, population, inputs, [0.0, 840.0, 1680.0]).reshape(20_000, 3, -1)
    column = model.inputs.index("PAIN_OCC")
    kappa = np.log(table[:, :, column] / model.parameters["PAIN_OCC"].value)
    omega = model.variability["iov"]["omega"][1][1]
    n = kappa.size
    low, high = st.chi2.ppf([0.0005, 0.9995], n - 1) / (n - 1) * omega
    assert low <= kappa.var(ddof=1) <= high
    # occasions are independent: correlation between periods within its 99.9 % band
    r = np.corrcoef(kappa[:, 0], kappa[:, 1])[0, 1]
    assert abs(np.arctanh(r)) <= st.norm.ppf(0.9995) / np.sqrt(20_000 - 3)
    # parameters without IOV are the same on every occasion
    cl = model.inputs.index("CL")
    assert np.all(table[:, 0, cl] == table[:, 2, cl])


@pytest.mark.models("ketamine_mg_pain")
def test_parallel_trial_runs_end_to_end(tmp_path):
    path = tmp_path / "parallel.toml"
    text = NULL.replace('design = "crossover"', 'design = "parallel"').replace("replicates = 20", "replicates = 50")
    text = text.replace('name = "saline B"\ndoses = []', 'name = "ketamine 2 mg/kg"\ndoses = [{ drug = "ketamine", amount = "2 mg/kg", duration = "2 h" }]')
    path.write_text(text)
    scenario = load_scenario(path)
    design = parse_trial(scenario)
    assert design.sequences == [[0], [1]] and design.n_periods == 1
    table = trial(scenario)
    assert len(table) == 1 and table.iloc[0]["replicates"] == 50
    assert table.iloc[0]["mean_estimate"] < 0  # ketamine lowers the pain AUC on average


@pytest.mark.models("ketamine_mg_pain")
def test_an_executor_runs_chunks_of_replicates_and_gives_the_in_process_table(tmp_path):
    path = tmp_path / "null.toml"
    path.write_text(NULL)
    scenario = load_scenario(path)
    executor = PicklingExecutor()
    table = trial(scenario, replicates=8, executor=executor, chunk_replicates=3)
    assert executor.tasks == 3  # replicates 0-2, 3-5, 6-7
    assert table.equals(trial(scenario, replicates=8))
